/*
 * stderr into a temporary file while a test runs. See log_capture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log_capture.h"

/* One capture per process: stderr is one. */
static FILE *captured;
static int saved_stderr = -1;

void log_capture_start(void)
{
    log_capture_stop();
    fflush(stderr);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    captured = tmpfile();
    assert_non_null(captured);
    assert_true(dup2(fileno(captured), 2) >= 0);
}

int log_capture_count(const char *needle, const char *needle2)
{
    char line[1024];
    int n = 0;

    assert_non_null(captured);
    fflush(stderr);
    rewind(captured);
    while (fgets(line, sizeof(line), captured))
        n += strstr(line, needle) && (!needle2 || strstr(line, needle2));
    fseek(captured, 0, SEEK_END);
    return n;
}

void log_capture_stop(void)
{
    char line[1024];

    if (!captured)
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
    fclose(captured);
    captured = NULL;
}
