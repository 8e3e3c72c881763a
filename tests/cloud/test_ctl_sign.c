/*
 * edgetelctl keys init and config sign, the program itself: the key pair
 * it makes (modes checked), a config file it signs that the agent's
 * verifier accepts and turns back into the file's config, and the
 * refusals an operator meets (a bad file with its line, an existing key,
 * a too-open key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_run.h"
#include "edgetel/config_wire.h"

static const char conf[] =
    "[agent]\ndevice_id = pi-1\n"
    "[collector room]\ntype = sim\ninterval = 5s\nperiod = 20s\n";

static void keys_init_then_sign_verifies_on_the_board(void **state)
{
    struct ctl_fx *f = *state;
    char out[2048], path[160], err[512], hex[ET_SIGN_KEY_ID_TEXT];
    struct et_sign_key *pub = NULL;
    struct et_sign_trust *trust = NULL;
    struct et_config direct, back;
    Edgetel__V1__ConfigBody *b = NULL;
    uint8_t id[ET_SIGN_KEY_ID_LEN], *buf;
    struct stat st;
    size_t len;

    assert_int_equal(ctl_run(f, out, sizeof(out), "keys init --dir keys"), 0);
    snprintf(path, sizeof(path), "%s/keys/operator.key", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    snprintf(path, sizeof(path), "%s/keys", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);
    snprintf(path, sizeof(path), "%s/keys/operator.pub", f->dir);
    assert_int_equal(et_sign_key_load_public(path, &pub, err, sizeof(err)), 0);
    et_sign_key_id(pub, id);
    /* It prints the key id and the public key's path. */
    assert_non_null(strstr(out, et_sign_key_id_text(id, hex)));
    assert_non_null(strstr(out, "keys/operator.pub"));

    ctl_write_file(f, "agent.conf", conf);
    assert_int_equal(ctl_run(f, out, sizeof(out), "config sign --key keys/operator.key "
                             "--device pi-1 --version 4 --deadline 90s agent.conf signed.bin"), 0);
    assert_non_null(strstr(out, "signed config v4 for device pi-1"));

    buf = ctl_read_file(f, "signed.bin", ET_CONFIG_SIGNED_MAX, &len);
    assert_int_equal(et_sign_trust_create(&trust), 0);
    assert_int_equal(et_sign_trust_add(trust, pub), 0);
    {
        struct et_config_verify_ctx ctx = { .trust = trust, .device_id = "pi-1",
                                            .running_version = 3 };

        assert_int_equal(et_config_verify(buf, len, &ctx, &b, err, sizeof(err)), 0);
        ctx.running_version = 4;
        assert_int_equal(et_config_verify(buf, len, &ctx, &(Edgetel__V1__ConfigBody *){ NULL },
                                          err, sizeof(err)), -ESTALE);
    }
    assert_int_equal(b->commit_deadline_ms, 90000);
    assert_int_equal(et_config_from_wire(b->config, "pi-1", "config v4", &back, err,
                                         sizeof(err)), 0);
    assert_int_equal(et_config_parse(conf, "agent.conf", &direct, err, sizeof(err)), 0);
    assert_int_equal(back.n_collectors, 1);
    assert_string_equal(back.collectors[0].name, "room");
    assert_int_equal(back.collectors[0].interval_ms, direct.collectors[0].interval_ms);
    assert_string_equal(back.collectors[0].keys[0].value, "20s");
    et_config_free(&direct);
    et_config_free(&back);
    edgetel__v1__config_body__free_unpacked(b, NULL);
    et_sign_trust_destroy(trust);
    free(buf);
}

static void operator_mistakes_refused(void **state)
{
    struct ctl_fx *f = *state;
    char out[2048], path[160];

    assert_int_equal(ctl_run(f, out, sizeof(out), "keys init --dir keys"), 0);
    /* A second init never replaces the key the fleet trusts. */
    assert_int_equal(ctl_run(f, out, sizeof(out), "keys init --dir keys"), 1);
    assert_non_null(strstr(out, "refusing to overwrite"));

    /* A file the agent would refuse is refused here, with its line. */
    ctl_write_file(f, "bad.conf", "[agent]\ndevice_id = pi-1\n[collector room]\ntype = sim\n"
                                  "interval = 5x\n");
    assert_int_equal(ctl_run(f, out, sizeof(out), "config sign --key keys/operator.key "
                             "--device pi-1 --version 1 bad.conf signed.bin"), 1);
    assert_non_null(strstr(out, "bad.conf:5: [collector room] interval \"5x\": expected a "
                                "duration like 10s"));
    snprintf(path, sizeof(path), "%s/signed.bin", f->dir);
    assert_int_equal(access(path, F_OK), -1);

    ctl_write_file(f, "agent.conf", conf);
    assert_int_equal(ctl_run(f, out, sizeof(out), "config sign --key keys/operator.key "
                             "--device pi-1 --group lab --version 1 agent.conf signed.bin"), 2);
    assert_int_equal(ctl_run(f, out, sizeof(out), "config sign --key keys/operator.key "
                             "--device pi-1 --version 0 agent.conf signed.bin"), 2);
    snprintf(path, sizeof(path), "%s/keys/operator.key", f->dir);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(ctl_run(f, out, sizeof(out), "config sign --key keys/operator.key "
                             "--device pi-1 --version 1 agent.conf signed.bin"), 1);
    assert_non_null(strstr(out, "is mode 0640: readable by group or others; chmod 600 "
                                "keys/operator.key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(keys_init_then_sign_verifies_on_the_board, ctl_fx_setup,
                                        ctl_fx_teardown),
        cmocka_unit_test_setup_teardown(operator_mistakes_refused, ctl_fx_setup, ctl_fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
