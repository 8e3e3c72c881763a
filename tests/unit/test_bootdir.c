/*
 * First boot from the boot partition (agent/src/bootdir.h): the files of
 * a provisioned folder land where its agent.conf says, with their modes;
 * the folder keeps only a note of what went where, the claim's key gone;
 * a folder with a claim alone uses the config the board has; and a folder
 * that is not right (half a claim, a config that does not parse) imports
 * nothing and says why, its files left as they were.
 */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootdir.h"

struct fx {
    char dir[64];
    char boot[96], etc[96], data[96], conf[128];
    char err[512];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/et-boot-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    snprintf(f->boot, sizeof(f->boot), "%s/boot", f->dir);
    snprintf(f->etc, sizeof(f->etc), "%s/etc/edgetel", f->dir);
    snprintf(f->data, sizeof(f->data), "%s/var/lib/edgetel", f->dir);
    snprintf(f->conf, sizeof(f->conf), "%s/agent.conf", f->etc);
    mkdir(f->boot, 0755);
    *state = f;
    return 0;
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    int rc = nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);

    free(f);
    return rc;
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[256];
    FILE *out;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    out = fopen(path, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
}

static mode_t mode_of(const char *dir, const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (stat(path, &st) != 0)
        fail_msg("%s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static bool there(const char *dir, const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void write_conf(struct fx *f, const char *dir)
{
    char text[1024];

    snprintf(text, sizeof(text), "[agent]\ndevice_id = pi-1\ndata_dir = %s\n"
             "trusted_keys = %s/operator.pub\n[mqtt]\nhost = broker\nca = %s/ca.crt\n",
             f->data, f->etc, f->etc);
    put(dir, "agent.conf", text);
}

static int import(struct fx *f, const char *user)
{
    struct et_boot_import o = { .boot_dir = f->boot, .config_path = f->conf, .user = user };

    return et_boot_import(&o, f->err, sizeof(f->err));
}

static void an_empty_or_missing_folder_imports_nothing(void **state)
{
    struct fx *f = *state;

    assert_int_equal(import(f, NULL), 0);
    rmdir(f->boot);
    assert_int_equal(import(f, NULL), 0);
}

static void a_provisioned_folder_lands_in_place(void **state)
{
    struct fx *f = *state;
    char identity[160];

    write_conf(f, f->boot);
    put(f->boot, "ca.crt", "CA\n");
    put(f->boot, "operator.pub", "PUB\n");
    put(f->boot, "claim.crt", "CLAIM CERT\n");
    put(f->boot, "claim.key", "CLAIM KEY\n");
    assert_int_equal(import(f, NULL), 1);

    snprintf(identity, sizeof(identity), "%s/identity", f->data);
    assert_int_equal(mode_of(f->etc, "agent.conf"), 0644);
    assert_int_equal(mode_of(f->etc, "ca.crt"), 0644);
    assert_int_equal(mode_of(f->etc, "operator.pub"), 0644);
    assert_int_equal(mode_of(f->data, "."), 0700);
    assert_int_equal(mode_of(identity, "."), 0700);
    assert_int_equal(mode_of(identity, "claim.key"), 0600);
    assert_int_equal(mode_of(identity, "claim.crt"), 0644);
    /* Only the note is left on the card. */
    assert_false(there(f->boot, "claim.key"));
    assert_false(there(f->boot, "claim.crt"));
    assert_false(there(f->boot, "agent.conf"));
    assert_false(there(f->boot, "ca.crt"));
    assert_false(there(f->boot, "operator.pub"));
    assert_true(there(f->boot, "imported.txt"));
    /* The next start finds nothing to take. */
    assert_int_equal(import(f, NULL), 0);
}

static void a_claim_alone_uses_the_config_the_board_has(void **state)
{
    struct fx *f = *state;
    char identity[160];

    mkdir(f->dir, 0700);
    snprintf(identity, sizeof(identity), "%s/etc", f->dir);
    mkdir(identity, 0755);
    mkdir(f->etc, 0755);
    write_conf(f, f->etc);
    put(f->boot, "claim.crt", "CLAIM CERT\n");
    put(f->boot, "claim.key", "CLAIM KEY\n");
    assert_int_equal(import(f, NULL), 1);
    snprintf(identity, sizeof(identity), "%s/identity", f->data);
    assert_int_equal(mode_of(identity, "claim.key"), 0600);
    assert_false(there(f->boot, "claim.key"));
}

static void a_folder_that_is_not_right_imports_nothing(void **state)
{
    struct fx *f = *state;

    /* Half a claim. */
    write_conf(f, f->boot);
    put(f->boot, "claim.crt", "CLAIM CERT\n");
    assert_int_equal(import(f, NULL), -EINVAL);
    assert_non_null(strstr(f->err, "claim.crt and claim.key go together"));
    assert_true(there(f->boot, "claim.crt"));
    assert_false(there(f->etc, "agent.conf"));
    /* A config that does not parse: said with its line; nothing moves. */
    put(f->boot, "claim.key", "CLAIM KEY\n");
    put(f->boot, "agent.conf", "[agent]\ndevice_id = pi-1\nbatch_interval = soon\n");
    assert_int_equal(import(f, NULL), -EINVAL);
    assert_non_null(strstr(f->err, ":3:"));
    assert_non_null(strstr(f->err, "the files stay"));
    assert_true(there(f->boot, "claim.key"));
    assert_false(there(f->etc, "agent.conf"));
}

/* As root, the data directory and the claim go to the agent's user; otherwise refused. */
static void only_root_gives_files_away(void **state)
{
    struct fx *f = *state;
    struct passwd *pw = getpwnam("nobody");
    char path[256];
    struct stat st;

    if (!pw)
        skip();
    write_conf(f, f->boot);
    put(f->boot, "claim.crt", "CLAIM CERT\n");
    put(f->boot, "claim.key", "CLAIM KEY\n");
    if (geteuid() != 0) {
        assert_int_equal(import(f, "nobody"), -EPERM);
        assert_non_null(strstr(f->err, "only root"));
        assert_true(there(f->boot, "claim.key"));
        return;
    }
    assert_int_equal(import(f, "nobody"), 1);
    snprintf(path, sizeof(path), "%s/identity/claim.key", f->data);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, pw->pw_uid);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(f->data, &st), 0);
    assert_int_equal(st.st_uid, pw->pw_uid);
    /* The config stays root's: the agent reads it, never writes it. */
    assert_int_equal(stat(f->conf, &st), 0);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(import(f, "no-such-user-here"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(an_empty_or_missing_folder_imports_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_provisioned_folder_lands_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(a_claim_alone_uses_the_config_the_board_has, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_folder_that_is_not_right_imports_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(only_root_gives_files_away, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
