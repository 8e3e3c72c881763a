/*
 * Running the real edgetelctl from a cloud test (test_ctl_sign.c,
 * test_ctl_config.c): a fresh folder per test, the program run there
 * through the shell with its output caught, files written and read there.
 * Such tests run in the native build only (tests/CMakeLists.txt).
 */
#ifndef EDGETEL_TESTS_CTL_RUN_H
#define EDGETEL_TESTS_CTL_RUN_H

#include <stddef.h>
#include <stdint.h>

struct ctl_fx {
    char dir[64];
};

/** cmocka setup and teardown with a struct ctl_fx in *state (the folder removed after). */
int ctl_fx_setup(void **state);
int ctl_fx_teardown(void **state);

/**
 * Run "edgetelctl ARGS" (fmt and the rest make ARGS, shell words) in f's
 * folder; its output and errors into out. Returns its exit status.
 */
int ctl_run(struct ctl_fx *f, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Write text to the file name in f's folder. */
void ctl_write_file(struct ctl_fx *f, const char *name, const char *text);

/** The file name in f's folder, at most max bytes, malloc'd; *len its size. */
uint8_t *ctl_read_file(struct ctl_fx *f, const char *name, size_t max, size_t *len);

/** The path of name in f's folder, in buf. */
const char *ctl_path(struct ctl_fx *f, const char *name, char *buf, size_t len);

#endif
