/* The certificate messages (edgetel/cert_wire.h). */
#include "edgetel/cert_wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/text.h"

static int pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);

    *out = malloc(n ? n : 1);
    if (!*out)
        return -ENOMEM;
    *len = protobuf_c_message_pack(m, *out);
    return 0;
}

int et_cert_request_encode(const struct et_cert_request *r, uint8_t **out, size_t *len)
{
    Edgetel__V1__CertRequest m = EDGETEL__V1__CERT_REQUEST__INIT;

    if (!r->csr_len || r->csr_len > ET_CERT_CSR_MAX || r->claim_sig_len > ET_CERT_SIG_MAX)
        return -EINVAL;
    m.csr.data = (uint8_t *)r->csr;
    m.csr.len = r->csr_len;
    m.request_id = r->request_id;
    m.claim_signature.data = (uint8_t *)r->claim_sig;
    m.claim_signature.len = r->claim_sig ? r->claim_sig_len : 0;
    return pack(&m.base, out, len);
}

int et_cert_reply_encode(const struct et_cert_reply *r, uint8_t **out, size_t *len)
{
    Edgetel__V1__CertReply m = EDGETEL__V1__CERT_REPLY__INIT;
    size_t cert_len = r->certificate ? strlen(r->certificate) : 0;

    if (cert_len > ET_CERT_CHAIN_MAX || (r->reason && strlen(r->reason) > ET_CERT_REASON_MAX) ||
        (r->issued && !cert_len))
        return -EINVAL;
    m.request_id = r->request_id;
    m.result = r->issued ? EDGETEL__V1__CERT_RESULT__CERT_RESULT_ISSUED
                         : EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED;
    m.certificate.data = (uint8_t *)r->certificate;
    m.certificate.len = cert_len;
    m.reason = (char *)(r->reason ? r->reason : "");
    m.retry_after_ms = r->retry_after_ms;
    return pack(&m.base, out, len);
}

/* What is wrong with a message from the network: -EBADMSG and the reason. */
#define BAD(...) et_text_reason(err, errlen, -EBADMSG, __VA_ARGS__)

int et_cert_request_decode(const uint8_t *buf, size_t len, Edgetel__V1__CertRequest **out,
                           char *err, size_t errlen)
{
    Edgetel__V1__CertRequest *m;
    int rc = 0;

    *out = NULL;
    if (len > ET_CERT_REQUEST_MAX)
        return BAD("a certificate request of %zu bytes: at most %d", len, ET_CERT_REQUEST_MAX);
    m = edgetel__v1__cert_request__unpack(NULL, len, buf);
    if (!m)
        return BAD("%zu bytes are not an edgetel.v1.CertRequest", len);
    if (!m->csr.len || m->csr.len > ET_CERT_CSR_MAX)
        rc = BAD("a CSR of %zu bytes: expected 1 to %d", m->csr.len, ET_CERT_CSR_MAX);
    else if (m->claim_signature.len > ET_CERT_SIG_MAX)
        rc = BAD("a claim signature of %zu bytes: at most %d", m->claim_signature.len,
                 ET_CERT_SIG_MAX);
    if (rc) {
        edgetel__v1__cert_request__free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return 0;
}

/* The reasons a decoded reply is not to be trusted; 0 when it is sound. */
static int reply_check(const Edgetel__V1__CertReply *m, char *err, size_t errlen)
{
    bool issued = m->result == EDGETEL__V1__CERT_RESULT__CERT_RESULT_ISSUED;
    size_t reason_len = strlen(m->reason), at = 0;
    enum et_text_problem p;

    if (!issued && m->result != EDGETEL__V1__CERT_RESULT__CERT_RESULT_REFUSED)
        return BAD("a certificate reply with result %d: neither issued nor refused",
                   (int)m->result);
    if (m->certificate.len > ET_CERT_CHAIN_MAX)
        return BAD("a certificate of %zu bytes: at most %d", m->certificate.len,
                   ET_CERT_CHAIN_MAX);
    if (issued && !m->certificate.len)
        return BAD("an issued reply without a certificate");
    if (issued && et_text_check((const char *)m->certificate.data, m->certificate.len, true,
                                &at) != ET_TEXT_OK)
        return BAD("an issued reply whose certificate is not text (at byte %zu)", at);
    if (reason_len > ET_CERT_REASON_MAX)
        return BAD("a reason of %zu bytes: at most %d", reason_len, ET_CERT_REASON_MAX);
    p = et_text_check(m->reason, reason_len, true, &at);
    if (p != ET_TEXT_OK)
        return BAD("the reason %s (at byte %zu)", et_text_problem_name(p), at);
    return 0;
}

int et_cert_reply_decode(const uint8_t *buf, size_t len, Edgetel__V1__CertReply **out,
                         char *err, size_t errlen)
{
    Edgetel__V1__CertReply *m;
    int rc;

    *out = NULL;
    if (len > ET_CERT_REPLY_MAX)
        return BAD("a certificate reply of %zu bytes: at most %d", len, ET_CERT_REPLY_MAX);
    m = edgetel__v1__cert_reply__unpack(NULL, len, buf);
    if (!m)
        return BAD("%zu bytes are not an edgetel.v1.CertReply", len);
    rc = reply_check(m, err, errlen);
    if (rc) {
        edgetel__v1__cert_reply__free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return 0;
}
