/*
 * libFuzzer target for what a board takes from the config topic: the
 * SignedConfig decoder and verifier, and the turn of a verified
 * AgentConfig back into a struct et_config.
 *
 * Random bytes almost never carry a good signature, so each input is used
 * twice: as a SignedConfig as it arrives (decode, key lookup, signature
 * check), and, when its first byte is odd, as the body of one signed here
 * with the trusted key, so the body's decoder, the target, version and
 * key-change checks, the INI rendering (as a board does it, over its own
 * anchors, and plain) and the comparison of configs are fuzzed too (ECDSA makes
 * those inputs slow; half of them is enough).
 *   clang, -DET_FUZZ=ON; run: ./fuzz_signed_config -max_len=4096
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/config_wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct et_sign_key *key;
static struct et_sign_trust *trust;
/* The board's own file, whose anchors a push runs over (et_config_from_push). */
static struct et_config base;

#define FUZZ_CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/et-fuzz-sign-XXXXXX", priv[64], pub[64], err[256];
    struct et_sign_key *p = NULL;

    (void)argc;
    (void)argv;
    if (!mkdtemp(dir))
        abort();
    snprintf(priv, sizeof(priv), "%s/k", dir);
    snprintf(pub, sizeof(pub), "%s/k.pub", dir);
    if (et_sign_keygen(priv, pub, &key, err, sizeof(err)) ||
        et_sign_key_load_public(pub, &p, err, sizeof(err)) || et_sign_trust_create(&trust) ||
        et_sign_trust_add(trust, p)) {
        fprintf(stderr, "fuzz_signed_config: %s\n", err);
        abort();
    }
    unlink(priv);
    unlink(pub);
    rmdir(dir);
    if (et_config_parse("[agent]\ndevice_id = pi-1\ndata_dir = /var/lib/edgetel-fuzz\n"
                        "groups = lab\n", "base.conf", &base, err, sizeof(err))) {
        fprintf(stderr, "fuzz_signed_config: %s\n", err);
        abort();
    }
    return 0;
}

static void check(const uint8_t *buf, size_t len)
{
    static const char *const groups[] = { "lab" };
    struct et_config_verify_ctx ctx = { .trust = trust, .device_id = "pi-1", .groups = groups,
                                        .n_groups = 1, .running_version = 2 };
    Edgetel__V1__ConfigBody *b = NULL;
    struct et_config c;
    char err[512];
    int rc;

    err[0] = '\0';
    rc = et_config_verify(buf, len, &ctx, &b, err, sizeof(err));
    FUZZ_CHECK((rc == 0) == (b != NULL));
    FUZZ_CHECK(rc == 0 || err[0]);
    if (rc)
        return;
    /* What the verifier promises. */
    FUZZ_CHECK(b->version > 2 && b->config);
    FUZZ_CHECK((b->target_case == EDGETEL__V1__CONFIG_BODY__TARGET_DEVICE_ID &&
                strcmp(b->device_id, "pi-1") == 0) ||
               (b->target_case == EDGETEL__V1__CONFIG_BODY__TARGET_GROUP &&
                strcmp(b->group, "lab") == 0));
    /* As a board takes it: its anchors kept whatever the push says. */
    rc = et_config_from_push(b->config, &base, "fuzzed", &c, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || err[0]);
    if (rc == 0) {
        FUZZ_CHECK(strcmp(c.data_dir, base.data_dir) == 0 && c.n_groups == 1);
        FUZZ_CHECK(et_config_equal(&c, &c));
        et_config_free(&c);
    }
    rc = et_config_from_wire(b->config, "pi-1", "fuzzed", &c, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || err[0]);
    if (rc == 0) {
        FUZZ_CHECK(strcmp(c.device_id, "pi-1") == 0);
        et_config_free(&c);
    }
    edgetel__v1__config_body__free_unpacked(b, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Edgetel__V1__SignedConfig sc = EDGETEL__V1__SIGNED_CONFIG__INIT;
    uint8_t sig[ET_SIGN_SIG_MAX], id[ET_SIGN_KEY_ID_LEN], *buf;
    size_t sig_len = 0, len;
    char err[256];

    check(data, size);
    if (size == 0 || !(data[0] & 1))
        return 0;
    if (et_sign_sign(key, data + 1, size - 1, sig, &sig_len, err, sizeof(err)))
        abort();
    et_sign_key_id(key, id);
    sc.body.data = (uint8_t *)data + 1;
    sc.body.len = size - 1;
    sc.key_id.data = id;
    sc.key_id.len = sizeof(id);
    sc.signature.data = sig;
    sc.signature.len = sig_len;
    len = edgetel__v1__signed_config__get_packed_size(&sc);
    buf = malloc(len);
    if (!buf)
        return 0;
    edgetel__v1__signed_config__pack(&sc, buf);
    check(buf, len);
    free(buf);
    return 0;
}
