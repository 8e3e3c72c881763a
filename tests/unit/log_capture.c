/*
 * stderr to a file and back, for tests of log lines. See log_capture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log_capture.h"

/* The capture running, if any: a test process captures one at a time. */
static struct log_capture *active;

void log_capture_begin(struct log_capture *c, const char *dir)
{
    int fd;

    snprintf(c->path, sizeof(c->path), "%s/captured.log", dir);
    fflush(stderr);
    c->saved_fd = dup(STDERR_FILENO);
    fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(c->saved_fd >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    active = c;
}

void log_capture_end(struct log_capture *c)
{
    fflush(stderr);
    dup2(c->saved_fd, STDERR_FILENO);
    close(c->saved_fd);
    c->saved_fd = -1;
    active = NULL;
}

void log_capture_restore(void)
{
    if (active)
        log_capture_end(active);
}

int log_count(const struct log_capture *c, const char *needle)
{
    FILE *f = fopen(c->path, "r");
    char line[2048];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}
