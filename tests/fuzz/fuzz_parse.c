/*
 * libFuzzer target for the text helpers every driver parses with
 * (drivers/common.c): scanners, durations, comma lists, line splitting.
 *   clang, -DET_FUZZ=ON; run: ./fuzz_parse -max_len=256
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    const char *cursor;
    const char *line;
    size_t len, total = 0;
    int64_t ms, i64;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cursor = text;
    while ((line = et_next_line(&cursor, &len)) != NULL) {
        const char *q = line;
        uint64_t u;
        double f;
        char word[16];

        total += len;
        /* Every scanner must stay inside the line's string and move forward. */
        if (et_scan_u64(&q, &u) && q <= line)
            abort();   /* check: a scanner that succeeds moves forward */
        q = line;
        if (et_scan_f64(&q, &f) && q <= line)
            abort();
        q = line;
        if (et_scan_word(&q, word, sizeof(word)) && strlen(word) >= sizeof(word))
            abort();
    }
    if (total > size)
        abort();
    if (et_parse_duration_ms(text, &ms) == 0 && ms < 0)
        abort();
    et_parse_i64_text(text, &i64);
    et_list_has(text, "eth0");
    free(text);
    return 0;
}
