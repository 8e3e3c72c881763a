/*
 * The log line (common/base/log.c): a line that quotes a device's words
 * holds no control byte but its own newline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/log.h"

static char *log_of(void (*emit)(void))
{
    FILE *f = tmpfile();
    int saved;
    long n;
    char *text;

    assert_non_null(f);
    fflush(stderr);
    saved = dup(2);
    dup2(fileno(f), 2);
    emit();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = ftell(f);
    text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    rewind(f);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return text;
}

static void emit_hostile(void)
{
    et_log_init("test", ET_LOG_INFO);
    /* What a device might put in a Status reason. */
    et_warn("ingest", "device %s offline: %s", "pi-1",
            "rebooting\nedgetel-aggregator[info] main: all devices healthy\x1b[2K\x1b[1A\xc2\x9b");
    et_info("main", "plain line");
}

static void test_log_escapes(void **state)
{
    char *text = log_of(emit_hostile);

    int lines = 0;

    /* (Matched as the end of each line: a line may start with a time stamp.) */
    assert_non_null(strstr(text,
        "test[warn] ingest: device pi-1 offline: rebooting\\nedgetel-aggregator[info] main: all "
        "devices healthy\\x1b[2K\\x1b[1A\\u009b\n"));
    assert_non_null(strstr(text, "test[info] main: plain line\n"));
    /* Nothing a terminal obeys: the only control bytes are the lines' own ends. */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        assert_true(*p == '\n' || (*p >= 0x20 && *p != 0x7f));
        lines += *p == '\n';
    }
    assert_int_equal(lines, 2);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_escapes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
