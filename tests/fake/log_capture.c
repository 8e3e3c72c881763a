/*
 * stderr into a temporary file while a test runs. See log_capture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log_capture.h"

/* One capture per process: stderr is one. The file stays readable after
 * log_capture_stop() until the next log_capture_start(). */
static FILE *captured;
static int saved_stderr = -1;

void log_capture_start(void)
{
    log_capture_stop();
    if (captured)
        fclose(captured);
    fflush(stderr);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    captured = tmpfile();
    assert_non_null(captured);
    assert_true(dup2(fileno(captured), 2) >= 0);
}

int log_capture_count(const char *needle, ...)
{
    char line[2048];
    int n = 0;

    assert_non_null(captured);
    fflush(stderr);
    fflush(captured);
    rewind(captured);
    while (fgets(line, sizeof(line), captured)) {
        bool all = true;
        va_list ap;

        va_start(ap, needle);
        for (const char *w = needle; w && all; w = va_arg(ap, const char *))
            all = strstr(line, w) != NULL;
        va_end(ap);
        n += all;
    }
    fseek(captured, 0, SEEK_END);
    return n;
}

size_t log_capture_text(char *buf, size_t cap)
{
    size_t n;

    assert_non_null(captured);
    assert_true(cap > 0);
    fflush(stderr);
    fflush(captured);
    rewind(captured);
    n = fread(buf, 1, cap - 1, captured);
    buf[n] = '\0';
    fseek(captured, 0, SEEK_END);
    return n;
}

void log_capture_stop(void)
{
    char line[1024];

    if (!captured || saved_stderr < 0)
        return;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
    /* cmocka reports a failure on stderr too, as "[  ERROR   ] ...", and a
     * failing test still runs its teardown: hand those lines back. */
    rewind(captured);
    while (fgets(line, sizeof(line), captured))
        if (line[0] == '[')
            fputs(line, stderr);
    fseek(captured, 0, SEEK_END);
}
