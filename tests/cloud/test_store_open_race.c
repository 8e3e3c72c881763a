/*
 * Two aggregators starting together on a store that does not exist yet
 * (the shared-aggregators end-to-end test does this): both must open it.
 * SQLite answers one of two simultaneous switches to WAL SQLITE_BUSY at
 * once instead of through the busy handler; the store waits and tries
 * again. Each round forks two processes that open the same new file at
 * the same moment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edgetel/log.h"
#include "edgetel/store.h"
#include "edgetel/store_open.h"

#define ROUNDS 25

/* In a child: wait for the go byte, open for writing, exit 0 when it worked. */
static int open_when_told(const char *path, int go_fd)
{
    struct et_store *s = NULL;
    char err[256] = "", go;
    int rc;

    if (read(go_fd, &go, 1) != 1)
        return 2;
    rc = et_store_open(&s, "sqlite", path, 0, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "open %s: %s\n", path, err);
        return 1;
    }
    et_store_close(s);
    return 0;
}

static void two_opens_of_a_new_store_both_succeed(void **state)
{
    char dir[] = "/tmp/et-store-race-XXXXXX";

    assert_non_null(mkdtemp(dir));
    for (int round = 0; round < ROUNDS; round++) {
        char path[128];
        int go[2];
        pid_t kids[2];
        int failed = 0;

        snprintf(path, sizeof(path), "%s/store-%d.db", dir, round);
        assert_int_equal(pipe(go), 0);
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            assert_true(kids[k] >= 0);
            if (kids[k] == 0) {
                close(go[1]);
                _exit(open_when_told(path, go[0]));
            }
        }
        close(go[0]);
        assert_int_equal(write(go[1], "gg", 2), 2);   /* both at once */
        close(go[1]);
        for (int k = 0; k < 2; k++) {
            int status;

            assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
            failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        if (failed)
            fail_msg("round %d: %d of 2 opens of a new store failed", round, failed);
        for (const char *suffix = ""; suffix; suffix = *suffix ? NULL : "-wal") {
            char p[160];

            snprintf(p, sizeof(p), "%s%s", path, suffix);
            unlink(p);
        }
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "-shm");
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_opens_of_a_new_store_both_succeed),
    };

    et_log_init("test_store_open_race", ET_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
