/*
 * Running the real edgetelctl from a cloud test. See ctl_run.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctl_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define CTL ET_BINARY_DIR "/ctl/edgetelctl"

int ctl_fx_setup(void **state)
{
    struct ctl_fx *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/et-ctl-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

int ctl_fx_teardown(void **state)
{
    struct ctl_fx *f = *state;
    char cmd[160];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

int ctl_run(struct ctl_fx *f, char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[1024], args[800];
    va_list ap;
    FILE *p;
    size_t n;
    int st;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "cd '%s' && " CTL " %s 2>&1", f->dir, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *ctl_path(struct ctl_fx *f, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", f->dir, name);
    return buf;
}

void ctl_write_file(struct ctl_fx *f, const char *name, const char *text)
{
    char path[160];
    FILE *fp = fopen(ctl_path(f, name, path, sizeof(path)), "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

uint8_t *ctl_read_file(struct ctl_fx *f, const char *name, size_t max, size_t *len)
{
    char path[160];
    uint8_t *buf = malloc(max);
    FILE *fp = fopen(ctl_path(f, name, path, sizeof(path)), "rb");

    assert_non_null(fp);
    assert_non_null(buf);
    *len = fread(buf, 1, max, fp);
    fclose(fp);
    return buf;
}
