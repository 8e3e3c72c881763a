/* The outbox tests' shared fixture: see outbox_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "et_fake.h"
#include "outbox_fixture.h"


int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/et-outbox-XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/outbox.db", fx->dir);
    et_fake_reset();
    *state = fx;
    return 0;
}

int teardown(void **state)
{
    struct fixture *fx = *state;
    DIR *d = opendir(fx->dir);
    struct dirent *de;
    char p[512];

    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

struct et_outbox *open_ok(const struct fixture *fx)
{
    struct et_outbox *ob = NULL;
    char err[256] = "";
    int ret = et_outbox_open(&ob, fx->path, err, sizeof(err));

    if (ret != 0)
        fail_msg("open %s: %d %s", fx->path, ret, err);
    return ob;
}

/* A blob whose bytes say which seq it belongs to. */
void make_blob(uint8_t *buf, size_t len, uint64_t seq)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seq * 31 + i * 7);
}

int append_n(struct et_outbox *ob, size_t len, uint32_t samples)
{
    uint8_t buf[4096];
    uint64_t seq = et_outbox_next_seq(ob);

    assert_true(len <= sizeof(buf));
    make_blob(buf, len, seq);
    return et_outbox_append(ob, seq, buf, len, samples, 1700000000000 + (int64_t)seq);
}

void expect_batch(struct et_outbox *ob, uint64_t after, uint64_t want_seq, size_t want_len)
{
    uint8_t want[4096];
    uint8_t *blob = NULL;
    uint64_t seq = 0;
    size_t len = 0;

    assert_int_equal(et_outbox_next(ob, after, &seq, &blob, &len), 0);
    assert_int_equal(seq, want_seq);
    assert_int_equal(len, want_len);
    make_blob(want, want_len, want_seq);
    assert_memory_equal(blob, want, want_len);
    /* The spare bytes are there and zeroed (ASan checks they are ours). */
    for (size_t i = 0; i < ET_OUTBOX_BLOB_SPARE; i++)
        assert_int_equal(blob[len + i], 0);
    free(blob);
}

void expect_seqs(struct et_outbox *ob, const uint64_t *want, size_t n, size_t len)
{
    uint64_t after = 0, seq;
    uint8_t *blob;
    size_t blen;

    for (size_t i = 0; i < n; i++) {
        expect_batch(ob, after, want[i], len);
        after = want[i];
    }
    assert_int_equal(et_outbox_next(ob, after, &seq, &blob, &blen), -ENOENT);
    assert_null(blob);
}

int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

void write_file(const char *path, const void *data, size_t len, off_t at)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, at), (ssize_t)len);
    close(fd);
}

void write_junk(const char *path, uint8_t *junk, size_t len)
{
    memset(junk, 0xA5, len);
    assert_int_equal(truncate(path, 0), 0);
    write_file(path, junk, len, 0);
}
