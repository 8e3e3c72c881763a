/*
 * The certificate messages (edgetel/cert_wire.h): what goes out comes back
 * whole, and what a hostile peer could send is refused with its reason
 * before anything reads it: oversized parts, an empty CSR, an issued
 * answer without a certificate, a result that is neither, a reason that
 * is not UTF-8.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/cert_wire.h"

static void a_request_comes_back_whole(void **state)
{
    uint8_t csr[300], sig[70];
    struct et_cert_request r = { .csr = csr, .csr_len = sizeof(csr), .request_id = 77,
                                 .claim_sig = sig, .claim_sig_len = sizeof(sig) };
    Edgetel__V1__CertRequest *m;
    uint8_t *buf;
    size_t len;
    char err[160];

    (void)state;
    memset(csr, 0x30, sizeof(csr));
    memset(sig, 0x02, sizeof(sig));
    assert_int_equal(et_cert_request_encode(&r, &buf, &len), 0);
    assert_int_equal(et_cert_request_decode(buf, len, &m, err, sizeof(err)), 0);
    assert_int_equal(m->csr.len, sizeof(csr));
    assert_memory_equal(m->csr.data, csr, sizeof(csr));
    assert_int_equal(m->request_id, 77);
    assert_int_equal(m->claim_signature.len, sizeof(sig));
    edgetel__v1__cert_request__free_unpacked(m, NULL);
    free(buf);
}

static void a_reply_comes_back_whole(void **state)
{
    struct et_cert_reply ok = { .request_id = 5, .issued = true,
                                .certificate = "-----BEGIN CERTIFICATE-----\nx\n" };
    struct et_cert_reply no = { .request_id = 6, .reason = "the claim for pi was used",
                                .retry_after_ms = 1000 };
    Edgetel__V1__CertReply *m;
    uint8_t *buf;
    size_t len;
    char err[160];

    (void)state;
    assert_int_equal(et_cert_reply_encode(&ok, &buf, &len), 0);
    assert_int_equal(et_cert_reply_decode(buf, len, &m, err, sizeof(err)), 0);
    assert_int_equal(m->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_ISSUED);
    assert_int_equal(m->certificate.len, strlen(ok.certificate));
    edgetel__v1__cert_reply__free_unpacked(m, NULL);
    free(buf);
    assert_int_equal(et_cert_reply_encode(&no, &buf, &len), 0);
    assert_int_equal(et_cert_reply_decode(buf, len, &m, err, sizeof(err)), 0);
    assert_int_equal(m->result, EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED);
    assert_string_equal(m->reason, no.reason);
    assert_int_equal(m->retry_after_ms, 1000);
    edgetel__v1__cert_reply__free_unpacked(m, NULL);
    free(buf);
}

/* Encode m as it stands, with whatever a hostile sender put in it. */
static size_t pack(const ProtobufCMessage *m, uint8_t *buf)
{
    assert_true(protobuf_c_message_get_packed_size(m) < 20000);
    return protobuf_c_message_pack(m, buf);
}

static void what_a_hostile_peer_sends_is_refused(void **state)
{
    static uint8_t big[ET_CERT_CHAIN_MAX + 10], buf[20000];
    Edgetel__V1__CertRequest req = EDGETEL__V1__CERT_REQUEST__INIT;
    Edgetel__V1__CertReply rep = EDGETEL__V1__CERT_REPLY__INIT;
    Edgetel__V1__CertRequest *rq;
    Edgetel__V1__CertReply *rp;
    char err[160], bad[] = "bad \xff utf-8";
    size_t len;

    (void)state;
    memset(big, 'A', sizeof(big));
    /* Requests: no CSR, a CSR past the bound, a signature past the bound, garbage. */
    len = pack(&req.base, buf);
    assert_int_equal(et_cert_request_decode(buf, len, &rq, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "CSR of 0 bytes"));
    req.csr.data = big;
    req.csr.len = ET_CERT_CSR_MAX + 1;
    len = pack(&req.base, buf);
    assert_int_equal(et_cert_request_decode(buf, len, &rq, err, sizeof(err)), -EBADMSG);
    req.csr.len = 100;
    req.claim_signature.data = big;
    req.claim_signature.len = ET_CERT_SIG_MAX + 1;
    len = pack(&req.base, buf);
    assert_int_equal(et_cert_request_decode(buf, len, &rq, err, sizeof(err)), -EBADMSG);
    assert_int_equal(et_cert_request_decode((const uint8_t *)"\xff\xff\xff", 3, &rq, err,
                                            sizeof(err)), -EBADMSG);
    assert_null(rq);

    /* Replies: no result, issued without a certificate, oversized, a reason not UTF-8. */
    len = pack(&rep.base, buf);
    assert_int_equal(et_cert_reply_decode(buf, len, &rp, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "neither issued nor refused"));
    rep.result = EDGETEL__V1__CERT_RESULT__CERT_RESULT_ISSUED;
    len = pack(&rep.base, buf);
    assert_int_equal(et_cert_reply_decode(buf, len, &rp, err, sizeof(err)), -EBADMSG);
    rep.certificate.data = big;
    rep.certificate.len = sizeof(big);
    len = pack(&rep.base, buf);
    assert_int_equal(et_cert_reply_decode(buf, len, &rp, err, sizeof(err)), -EBADMSG);
    rep.certificate.data = (uint8_t *)"pem\0with a NUL";
    rep.certificate.len = 14;
    len = pack(&rep.base, buf);
    assert_int_equal(et_cert_reply_decode(buf, len, &rp, err, sizeof(err)), -EBADMSG);
    rep.result = EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED;
    rep.certificate.len = 0;
    rep.reason = bad;
    len = pack(&rep.base, buf);
    assert_int_equal(et_cert_reply_decode(buf, len, &rp, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "UTF-8"));
    assert_null(rp);

    /* And the encoders keep to the bounds themselves. */
    struct et_cert_request r = { .csr = big, .csr_len = ET_CERT_CSR_MAX + 1 };
    uint8_t *out;

    assert_int_equal(et_cert_request_encode(&r, &out, &len), -EINVAL);
    r.csr_len = 0;
    assert_int_equal(et_cert_request_encode(&r, &out, &len), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_request_comes_back_whole),
        cmocka_unit_test(a_reply_comes_back_whole),
        cmocka_unit_test(what_a_hostile_peer_sends_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
