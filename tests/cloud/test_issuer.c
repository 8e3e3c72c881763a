/*
 * The cloud issuer's rules (ctl/src/issuer.c) without a broker: a request
 * on a topic in, the answer and its topic out. Enrollment by claim and
 * renewal are answered with a certificate; every refusal with its reason,
 * logged at most once a minute per id; an id that asks too often is held
 * off before the CA is touched; bytes that are no request are answered as
 * such; topics that are not a CSR's are ignored.
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
#include <time.h>
#include <unistd.h>

#include "edgetel/ca.h"
#include "edgetel/ca_claim.h"
#include "edgetel/ca_device.h"
#include "edgetel/cert_wire.h"
#include "edgetel/log.h"
#include "edgetel/sign.h"
#include "cloud_test.h"
#include "issuer.h"
#include "log_capture.h"

#define LIFETIME_S 3600

struct fx {
    struct cloud_tmpdir *tmp;
    const char *dir;
    char ca_dir[512];
    struct et_issuer *is;
    int64_t now, mono;
    char err[512];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct et_issuer_cfg cfg = { .topic_root = "edgetel", .lifetime_s = LIFETIME_S };

    if (cloud_tmpdir_setup((void **)&f->tmp) != 0)
        return -1;
    f->dir = f->tmp->dir;
    snprintf(f->ca_dir, sizeof(f->ca_dir), "%s/ca", f->dir);
    f->now = (int64_t)time(NULL);
    f->mono = 1000000;
    if (et_ca_init(f->ca_dir, NULL, f->now, f->err, sizeof(f->err)) != 0)
        return -1;
    cfg.ca_dir = f->ca_dir;
    if (et_issuer_create(&f->is, &cfg) != 0)
        return -1;
    et_log_init("test", ET_LOG_INFO);
    log_capture_start();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    log_capture_stop();
    et_issuer_destroy(f->is);
    cloud_tmpdir_teardown((void **)&f->tmp);
    free(f);
    return 0;
}

static const char *path(struct fx *f, const char *name)
{
    static char buf[2][600];
    static int i;

    i ^= 1;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->dir, name);
    return buf[i];
}

/* Register device's claim, its key at DIR/claim-<device>.key. */
static void claim(struct fx *f, const char *device)
{
    struct et_ca *ca;
    char *pem = NULL, key[64];

    snprintf(key, sizeof(key), "claim-%s.key", device);
    assert_int_equal(et_ca_open(&ca, f->ca_dir, f->err, sizeof(f->err)), 0);
    assert_int_equal(et_ca_claim_issue(ca, device, 86400, f->now, path(f, key), &pem, NULL,
                                       f->err, sizeof(f->err)), 0);
    et_ca_close(ca);
    free(pem);
}

/* A CertRequest from a board key (made if missing) for cn, signed with a claim key or not. */
static void request(struct fx *f, const char *key, const char *cn, const char *claim_key,
                    uint64_t id, uint8_t **out, size_t *len)
{
    struct et_cert_request r = { .request_id = id };
    uint8_t sig[ET_SIGN_SIG_MAX], *csr = NULL;
    struct et_sign_key *k = NULL;

    if (access(path(f, key), F_OK) != 0)
        assert_int_equal(et_ca_key_make(path(f, key), f->err, sizeof(f->err)), 0);
    assert_int_equal(et_ca_csr_make(path(f, key), cn, &csr, &r.csr_len, f->err,
                                    sizeof(f->err)), 0);
    r.csr = csr;
    if (claim_key) {
        assert_int_equal(et_sign_key_load_private(path(f, claim_key), &k, f->err,
                                                  sizeof(f->err)), 0);
        assert_int_equal(et_sign_sign(k, csr, r.csr_len, sig, &r.claim_sig_len, f->err,
                                      sizeof(f->err)), 0);
        r.claim_sig = sig;
        et_sign_key_destroy(k);
    }
    assert_int_equal(et_cert_request_encode(&r, out, len), 0);
    free(csr);
}

/* Hand a message to the issuer; the decoded answer, which must be on want_topic. */
static Edgetel__V1__CertReply *ask(struct fx *f, const char *topic, const uint8_t *buf,
                                   size_t len, const char *want_topic)
{
    struct et_issuer_answer ans;
    Edgetel__V1__CertReply *r = NULL;

    f->mono += 20000;     /* a fresh token for the id each time, unless a test says */
    assert_int_equal(et_issuer_handle(f->is, topic, buf, len, f->now, f->mono, &ans), 0);
    assert_string_equal(ans.topic, want_topic);
    assert_int_equal(et_cert_reply_decode(ans.reply, ans.len, &r, f->err, sizeof(f->err)), 0);
    free(ans.reply);
    return r;
}

static void a_claim_enrolls_then_the_device_renews(void **state)
{
    struct fx *f = *state;
    Edgetel__V1__CertReply *r;
    struct et_ca_leaf leaf;
    uint8_t *buf;
    size_t len;

    claim(f, "pi-1");
    request(f, "pi-1.key", "pi-1", "claim-pi-1.key", 42, &buf, &len);
    r = ask(f, "edgetel/v1/claim-pi-1/cert/csr", buf, len, "edgetel/v1/claim-pi-1/cert/issued");
    assert_int_equal(r->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_ISSUED);
    assert_int_equal(r->request_id, 42);
    assert_int_equal(et_ca_leaf_check((char *)r->certificate.data, r->certificate.len, "pi-1",
                                      path(f, "pi-1.key"), path(f, "ca/ca.crt"), &leaf, f->err,
                                      sizeof(f->err)), 0);
    assert_int_equal(leaf.not_after, f->now + LIFETIME_S);
    edgetel__v1__cert_reply__free_unpacked(r, NULL);
    free(buf);
    assert_int_equal(log_capture_count("enrolled pi-1 by its claim", NULL), 1);

    /* Renewal: on its own topic, a new key, no claim; a tenth of a lifetime later. */
    f->now += LIFETIME_S / 10 + 1;
    request(f, "pi-1-next.key", "pi-1", NULL, 43, &buf, &len);
    r = ask(f, "edgetel/v1/pi-1/cert/csr", buf, len, "edgetel/v1/pi-1/cert/issued");
    assert_int_equal(r->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_ISSUED);
    edgetel__v1__cert_reply__free_unpacked(r, NULL);
    free(buf);
    assert_int_equal(log_capture_count("renewed pi-1: serial", NULL), 1);
    assert_int_equal(et_issuer_stats(f->is)->enrolled, 1);
    assert_int_equal(et_issuer_stats(f->is)->renewed, 1);
}

static void refusals_are_answered_with_their_reason(void **state)
{
    struct fx *f = *state;
    Edgetel__V1__CertReply *r;
    uint8_t *buf;
    size_t len;

    claim(f, "pi-2");
    /* pi-2's claim asking for another id. */
    request(f, "x.key", "victim", "claim-pi-2.key", 1, &buf, &len);
    r = ask(f, "edgetel/v1/claim-pi-2/cert/csr", buf, len, "edgetel/v1/claim-pi-2/cert/issued");
    assert_int_equal(r->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED);
    assert_non_null(strstr(r->reason, "asks for another name"));
    assert_int_equal(r->request_id, 1);
    edgetel__v1__cert_reply__free_unpacked(r, NULL);
    free(buf);
    /* A device asking for another's certificate on its own topic. */
    request(f, "y.key", "victim", NULL, 2, &buf, &len);
    r = ask(f, "edgetel/v1/evil/cert/csr", buf, len, "edgetel/v1/evil/cert/issued");
    assert_int_equal(r->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED);
    assert_non_null(strstr(r->reason, "asks for another name"));
    edgetel__v1__cert_reply__free_unpacked(r, NULL);
    free(buf);
    /* Renewing itself with no certificate of this CA. */
    request(f, "y2.key", "evil", NULL, 3, &buf, &len);
    r = ask(f, "edgetel/v1/evil/cert/csr", buf, len, "edgetel/v1/evil/cert/issued");
    assert_int_equal(r->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED);
    assert_non_null(strstr(r->reason, "never issued evil a certificate"));
    edgetel__v1__cert_reply__free_unpacked(r, NULL);
    free(buf);
    /* Bytes that are no request. */
    r = ask(f, "edgetel/v1/evil/cert/csr", (const uint8_t *)"\xff\x01", 2,
            "edgetel/v1/evil/cert/issued");
    assert_int_equal(r->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED);
    assert_non_null(strstr(r->reason, "not an edgetel.v1.CertRequest"));
    edgetel__v1__cert_reply__free_unpacked(r, NULL);
    assert_int_equal(et_issuer_stats(f->is)->refused, 3);
    assert_int_equal(et_issuer_stats(f->is)->malformed, 1);
    assert_int_equal(log_capture_count("refused claim-pi-2:", "asks for another name", NULL), 1);
    /* evil's second refusal within the minute is not logged. */
    assert_int_equal(log_capture_count("refused evil:", NULL), 1);
}

static void an_id_that_asks_too_often_is_held_off(void **state)
{
    struct fx *f = *state;
    struct et_issuer_answer ans;
    Edgetel__V1__CertReply *r;
    uint8_t *buf;
    size_t len;
    int held = 0;

    request(f, "z.key", "noisy", NULL, 9, &buf, &len);
    for (int i = 0; i < ISSUER_BURST + 3; i++) {
        assert_int_equal(et_issuer_handle(f->is, "edgetel/v1/noisy/cert/csr", buf, len,
                                          f->now, f->mono + i, &ans), 0);
        assert_int_equal(et_cert_reply_decode(ans.reply, ans.len, &r, f->err, sizeof(f->err)),
                         0);
        if (r->retry_after_ms > 0) {
            held++;
            assert_non_null(strstr(r->reason, "asked too often"));
            assert_true(r->retry_after_ms <= ISSUER_REFILL_MS);
        }
        edgetel__v1__cert_reply__free_unpacked(r, NULL);
        free(ans.reply);
    }
    assert_int_equal(held, 3);
    assert_int_equal(et_issuer_stats(f->is)->limited, 3);
    /* Another id is not held off for it. */
    assert_int_equal(et_issuer_handle(f->is, "edgetel/v1/quiet/cert/csr", buf, len, f->now,
                                      f->mono + 10, &ans), 0);
    assert_int_equal(et_cert_reply_decode(ans.reply, ans.len, &r, f->err, sizeof(f->err)), 0);
    assert_int_equal(r->retry_after_ms, 0);
    edgetel__v1__cert_reply__free_unpacked(r, NULL);
    free(ans.reply);
    free(buf);
}

static void other_topics_are_ignored(void **state)
{
    struct fx *f = *state;
    struct et_issuer_answer ans;
    static const char *const topics[] = {
        "edgetel/v1/pi/telemetry", "other/v1/pi/cert/csr", "edgetel/v1/pi/cert/csr/more",
        "edgetel/v1//cert/csr", "edgetel/v1/.hidden/cert/csr", "edgetel/v2/pi/cert/csr",
    };

    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        assert_int_equal(et_issuer_handle(f->is, topics[i], (const uint8_t *)"x", 1, f->now,
                                          f->mono, &ans), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_claim_enrolls_then_the_device_renews, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refusals_are_answered_with_their_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_id_that_asks_too_often_is_held_off, setup, teardown),
        cmocka_unit_test_setup_teardown(other_topics_are_ignored, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
