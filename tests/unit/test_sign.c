/*
 * Operator keys and signatures (common/sign/): the files keygen writes and
 * their modes, a too-open private key refused, sign and verify, and every
 * way a signature must fail: a flipped bit in body or signature, an
 * untrusted key, a removed key.
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

#include "edgetel/sign.h"

struct fx {
    char dir[64];
    char priv[128], pub[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/et-sign-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->priv, sizeof(f->priv), "%s/op.key", f->dir);
    snprintf(f->pub, sizeof(f->pub), "%s/op.pub", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    unlink(f->priv);
    unlink(f->pub);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void keygen_writes_private_0600_and_public(void **state)
{
    struct fx *f = *state;
    struct et_sign_key *k = NULL, *kp = NULL, *kq = NULL;
    uint8_t id[ET_SIGN_KEY_ID_LEN], idp[ET_SIGN_KEY_ID_LEN], idq[ET_SIGN_KEY_ID_LEN];
    char err[256];
    struct stat st;
    mode_t old = umask(0);   /* the most permissive umask: the mode must still be 0600 */

    assert_int_equal(et_sign_keygen(f->priv, f->pub, &k, err, sizeof(err)), 0);
    umask(old);
    assert_int_equal(stat(f->priv, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->pub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_true(et_sign_key_is_private(k));

    /* The files hold the same key: the same id from either half. */
    assert_int_equal(et_sign_key_load_private(f->priv, &kp, err, sizeof(err)), 0);
    assert_int_equal(et_sign_key_load_public(f->pub, &kq, err, sizeof(err)), 0);
    assert_false(et_sign_key_is_private(kq));
    et_sign_key_id(k, id);
    et_sign_key_id(kp, idp);
    et_sign_key_id(kq, idq);
    assert_memory_equal(id, idp, sizeof(id));
    assert_memory_equal(id, idq, sizeof(id));
    et_sign_key_destroy(k);
    et_sign_key_destroy(kp);
    et_sign_key_destroy(kq);
}

static void keygen_refuses_to_overwrite(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct stat before, after;

    assert_int_equal(et_sign_keygen(f->priv, f->pub, NULL, err, sizeof(err)), 0);
    assert_int_equal(stat(f->priv, &before), 0);
    assert_int_equal(et_sign_keygen(f->priv, f->pub, NULL, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "refusing to overwrite"));
    assert_int_equal(stat(f->priv, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);

    /* Only the public half there: still nothing written. */
    unlink(f->priv);
    assert_int_equal(et_sign_keygen(f->priv, f->pub, NULL, err, sizeof(err)), -EEXIST);
    assert_int_equal(access(f->priv, F_OK), -1);
}

static void too_open_private_key_refused(void **state)
{
    struct fx *f = *state;
    struct et_sign_key *k = NULL;
    char err[512], expect[512];

    assert_int_equal(et_sign_keygen(f->priv, f->pub, NULL, err, sizeof(err)), 0);
    assert_int_equal(chmod(f->priv, 0640), 0);
    assert_int_equal(et_sign_key_load_private(f->priv, &k, err, sizeof(err)), -EACCES);
    assert_null(k);
    snprintf(expect, sizeof(expect), "key %s is mode 0640: readable by group or others; "
             "chmod 600 %s", f->priv, f->priv);
    assert_non_null(strstr(err, expect));
    assert_int_equal(chmod(f->priv, 0604), 0);
    assert_int_equal(et_sign_key_load_private(f->priv, &k, err, sizeof(err)), -EACCES);
    assert_int_equal(chmod(f->priv, 0400), 0);
    assert_int_equal(et_sign_key_load_private(f->priv, &k, err, sizeof(err)), 0);
    et_sign_key_destroy(k);
}

static void junk_and_missing_keys_refused(void **state)
{
    struct fx *f = *state;
    struct et_sign_key *k = NULL;
    char err[256];
    FILE *fp;

    assert_int_equal(et_sign_key_load_public(f->pub, &k, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, f->pub));
    fp = fopen(f->pub, "w");
    assert_non_null(fp);
    fputs("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n", fp);
    fclose(fp);
    assert_int_equal(et_sign_key_load_public(f->pub, &k, err, sizeof(err)), -EINVAL);
    assert_null(k);
    assert_non_null(strstr(err, "not a public key"));
    assert_int_equal(et_sign_key_parse_public((const uint8_t *)"\x30\x03\x02\x01\x01", 5, "x",
                                              &k, err, sizeof(err)), -EINVAL);
}

/* A key pair in f, the public half trusted by *t. */
static struct et_sign_key *trusted_pair(struct fx *f, struct et_sign_trust **t)
{
    struct et_sign_key *k = NULL, *pub = NULL;
    char err[256];

    assert_int_equal(et_sign_keygen(f->priv, f->pub, &k, err, sizeof(err)), 0);
    assert_int_equal(et_sign_key_load_public(f->pub, &pub, err, sizeof(err)), 0);
    assert_int_equal(et_sign_trust_create(t), 0);
    assert_int_equal(et_sign_trust_add(*t, pub), 0);
    return k;
}

static void sign_verify_round_trip_and_flipped_bits(void **state)
{
    struct fx *f = *state;
    struct et_sign_trust *t = NULL;
    struct et_sign_key *k = trusted_pair(f, &t);
    uint8_t body[] = "the bytes of a ConfigBody";
    uint8_t sig[ET_SIGN_SIG_MAX], id[ET_SIGN_KEY_ID_LEN];
    size_t sig_len = 0;
    char err[256];

    et_sign_key_id(k, id);
    assert_int_equal(et_sign_sign(k, body, sizeof(body), sig, &sig_len, err, sizeof(err)), 0);
    assert_in_range(sig_len, 8, ET_SIGN_SIG_MAX);
    assert_int_equal(et_sign_verify(t, id, sizeof(id), body, sizeof(body), sig, sig_len, err,
                                    sizeof(err)), 0);

    /* Every bit of the body, and every bit of the signature, matters. */
    for (size_t i = 0; i < sizeof(body) * 8; i += 7) {
        body[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(et_sign_verify(t, id, sizeof(id), body, sizeof(body), sig, sig_len,
                                        err, sizeof(err)), -EBADMSG);
        body[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    for (size_t i = 0; i < sig_len * 8; i++) {
        sig[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_not_equal(et_sign_verify(t, id, sizeof(id), body, sizeof(body), sig, sig_len,
                                            err, sizeof(err)), 0);
        sig[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(et_sign_verify(t, id, sizeof(id), body, sizeof(body), sig, sig_len - 1,
                                    err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "does not verify"));
    /* Still good after all that. */
    assert_int_equal(et_sign_verify(t, id, sizeof(id), body, sizeof(body), sig, sig_len, err,
                                    sizeof(err)), 0);
    et_sign_key_destroy(k);
    et_sign_trust_destroy(t);
}

static void untrusted_and_removed_keys_refused(void **state)
{
    struct fx *f = *state;
    struct et_sign_trust *t = NULL;
    struct et_sign_key *k = trusted_pair(f, &t), *other = NULL;
    uint8_t body[] = "body", sig[ET_SIGN_SIG_MAX];
    uint8_t id[ET_SIGN_KEY_ID_LEN], other_id[ET_SIGN_KEY_ID_LEN];
    char err[256], hex[ET_SIGN_KEY_ID_TEXT];
    size_t sig_len;

    /* A second operator key that t does not trust. */
    unlink(f->priv);
    unlink(f->pub);
    assert_int_equal(et_sign_keygen(f->priv, f->pub, &other, err, sizeof(err)), 0);
    et_sign_key_id(other, other_id);
    assert_int_equal(et_sign_sign(other, body, sizeof(body), sig, &sig_len, err, sizeof(err)),
                     0);
    assert_int_equal(et_sign_verify(t, other_id, sizeof(other_id), body, sizeof(body), sig,
                                    sig_len, err, sizeof(err)), -ENOKEY);
    assert_non_null(strstr(err, et_sign_key_id_text(other_id, hex)));
    /* Claiming the trusted key's id does not make another key's signature good. */
    et_sign_key_id(k, id);
    assert_int_equal(et_sign_verify(t, id, sizeof(id), body, sizeof(body), sig, sig_len, err,
                                    sizeof(err)), -EBADMSG);
    /* A short key id is no id. */
    assert_int_equal(et_sign_verify(t, id, 4, body, sizeof(body), sig, sig_len, err,
                                    sizeof(err)), -ENOKEY);

    /* Removed: the trusted key's own signature is refused from then on. */
    assert_int_equal(et_sign_sign(k, body, sizeof(body), sig, &sig_len, err, sizeof(err)), 0);
    assert_int_equal(et_sign_trust_remove(t, id), 0);
    assert_int_equal(et_sign_trust_count(t), 0);
    assert_int_equal(et_sign_trust_remove(t, id), -ENOENT);
    assert_int_equal(et_sign_verify(t, id, sizeof(id), body, sizeof(body), sig, sig_len, err,
                                    sizeof(err)), -ENOKEY);
    et_sign_key_destroy(k);
    et_sign_key_destroy(other);
    et_sign_trust_destroy(t);
}

static void public_key_cannot_sign_and_der_round_trips(void **state)
{
    struct fx *f = *state;
    struct et_sign_trust *t = NULL;
    struct et_sign_key *k = trusted_pair(f, &t), *again = NULL;
    uint8_t id[ET_SIGN_KEY_ID_LEN], id2[ET_SIGN_KEY_ID_LEN], sig[ET_SIGN_SIG_MAX], *der = NULL;
    size_t der_len = 0, sig_len;
    char err[256];

    et_sign_key_id(k, id);
    assert_int_equal(et_sign_sign(et_sign_trust_find(t, id), id, sizeof(id), sig, &sig_len, err,
                                  sizeof(err)), -EINVAL);
    assert_int_equal(et_sign_key_public_der(k, &der, &der_len), 0);
    assert_int_equal(et_sign_key_parse_public(der, der_len, "der", &again, err, sizeof(err)), 0);
    et_sign_key_id(again, id2);
    assert_memory_equal(id, id2, sizeof(id));
    /* Trusting the same key twice is refused, and the caller keeps it. */
    assert_int_equal(et_sign_trust_add(t, again), -EEXIST);
    et_sign_key_destroy(again);
    free(der);
    et_sign_key_destroy(k);
    et_sign_trust_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(keygen_writes_private_0600_and_public, setup, teardown),
        cmocka_unit_test_setup_teardown(keygen_refuses_to_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(too_open_private_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(junk_and_missing_keys_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(sign_verify_round_trip_and_flipped_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(untrusted_and_removed_keys_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(public_key_cannot_sign_and_der_round_trips, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
