/*
 * The log line's prefix (common/base/log.c): the daemons start every line
 * with the local time unless journald reads their stderr, which it tells
 * by $JOURNAL_STREAM naming stderr's own device and inode (systemd.exec(5)).
 * stderr is pointed at a file while a line is logged, and read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgetel/log.h"

/*
 * stderr goes to a file between capture_begin() and capture_end(), which
 * puts stderr back (so cmocka's own messages are seen) and returns the
 * last line written.
 */
struct captured {
    FILE *file;
    int saved_stderr;
};

static void capture_begin(struct captured *c)
{
    c->file = tmpfile();
    assert_non_null(c->file);
    fflush(stderr);
    c->saved_stderr = dup(STDERR_FILENO);
    assert_true(c->saved_stderr >= 0);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

static const char *capture_end(struct captured *c, char *buf, size_t size)
{
    fflush(stderr);
    dup2(c->saved_stderr, STDERR_FILENO);
    close(c->saved_stderr);
    buf[0] = '\0';
    rewind(c->file);
    while (fgets(buf, (int)size, c->file))
        ;
    fclose(c->file);
    return buf;
}

static int reset_log(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM");
    et_log_init("edgetel-test", ET_LOG_INFO);
    et_log_set_timestamps(false);
    return 0;
}

static void set_journal_stream(dev_t dev, ino_t ino)
{
    char v[64];

    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)dev, (unsigned long long)ino);
    assert_int_equal(setenv("JOURNAL_STREAM", v, 1), 0);
}

static void journald_is_told_by_stderrs_device_and_inode(void **state)
{
    struct captured c;
    struct stat st;
    bool unset, same, other, garbage, extra;
    char line[256];

    /* Judged with stderr on a file of ours, whose device and inode we know. */
    capture_begin(&c);
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    unset = et_log_under_journald();
    set_journal_stream(st.st_dev, st.st_ino);
    same = et_log_under_journald();
    /* Inherited from a service whose child sent stderr elsewhere: not ours. */
    set_journal_stream(st.st_dev, st.st_ino + 1);
    other = et_log_under_journald();
    setenv("JOURNAL_STREAM", "garbage", 1);
    garbage = et_log_under_journald();
    setenv("JOURNAL_STREAM", "1:2:3", 1);
    extra = et_log_under_journald();
    capture_end(&c, line, sizeof(line));

    assert_false(unset);
    assert_true(same);
    assert_false(other);
    assert_false(garbage);
    assert_false(extra);
}

static void a_stamped_line_starts_with_the_local_time(void **state)
{
    struct captured c;
    char line[2048];
    regex_t re;

    et_log_set_timestamps(true);
    capture_begin(&c);
    et_warn("uplink", "lost connection to %s", "broker");
    capture_end(&c, line, sizeof(line));
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}"
                             "[+-][0-9]{2}:[0-9]{2} edgetel-test\\[warn\\] uplink: "
                             "lost connection to broker\n$",
                             REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, line, 0, NULL, 0) != 0)
        fail_msg("not a stamped line: \"%s\"", line);
    regfree(&re);
}

static void under_journald_the_line_is_as_before(void **state)
{
    struct captured c;
    struct stat st;
    char line[2048];

    et_log_set_timestamps(true);
    capture_begin(&c);
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    set_journal_stream(st.st_dev, st.st_ino);
    /* What the daemons do at start. */
    et_log_set_timestamps(!et_log_under_journald());
    et_info("mqtt", "connected");
    capture_end(&c, line, sizeof(line));
    assert_string_equal(line, "edgetel-test[info] mqtt: connected\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(journald_is_told_by_stderrs_device_and_inode, reset_log),
        cmocka_unit_test_setup(a_stamped_line_starts_with_the_local_time, reset_log),
        cmocka_unit_test_setup(under_journald_the_line_is_as_before, reset_log),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
