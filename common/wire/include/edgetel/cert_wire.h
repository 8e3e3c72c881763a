/*
 * The certificate messages of proto/edgetel/v1/cert.proto: a device's
 * CertRequest and the issuer's CertReply, encoded, and decoded with the
 * checks every receiver needs before it trusts them (sizes, the result,
 * text). What a CSR or a certificate says is et_ca's to judge.
 */
#ifndef EDGETEL_CERT_WIRE_H
#define EDGETEL_CERT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/v1/cert.pb-c.h"

/* A CSR in DER: a P-256 key and a name of 64 characters take about 300 bytes. */
#define ET_CERT_CSR_MAX 2048
/* An ECDSA P-256 signature in DER. */
#define ET_CERT_SIG_MAX 72
/* A certificate and the issuing CA's, PEM: under 2 KiB; room for more names. */
#define ET_CERT_CHAIN_MAX 8192
#define ET_CERT_REASON_MAX 512
/* The largest messages: what a receiver tells its broker it takes. */
#define ET_CERT_REQUEST_MAX (ET_CERT_CSR_MAX + ET_CERT_SIG_MAX + 64)
#define ET_CERT_REPLY_MAX (ET_CERT_CHAIN_MAX + ET_CERT_REASON_MAX + 64)

struct et_cert_request {
    const uint8_t *csr;          /* DER */
    size_t csr_len;
    uint64_t request_id;
    const uint8_t *claim_sig;    /* NULL: none (a renewal) */
    size_t claim_sig_len;
};

struct et_cert_reply {
    uint64_t request_id;
    bool issued;
    const char *certificate;     /* issued: PEM chain */
    const char *reason;          /* refused: for a person */
    uint64_t retry_after_ms;     /* refused: 0, or when asking again may help */
};

/** Encode into a malloc'd *out (*len bytes). 0, -EINVAL (over a limit), -ENOMEM. */
int et_cert_request_encode(const struct et_cert_request *r, uint8_t **out, size_t *len);
int et_cert_reply_encode(const struct et_cert_reply *r, uint8_t **out, size_t *len);

/**
 * Decode a CertRequest: -EBADMSG with a reason in err for bytes that do not
 * parse, an empty or oversized CSR, or an oversized signature. Free with
 * edgetel__v1__cert_request__free_unpacked(r, NULL).
 */
int et_cert_request_decode(const uint8_t *buf, size_t len, Edgetel__V1__CertRequest **out,
                           char *err, size_t errlen);

/**
 * Decode a CertReply: -EBADMSG for bytes that do not parse, a result that
 * is neither issued nor refused, an issued reply without a certificate or
 * with one that is not text, an oversized part, or a reason that is not
 * UTF-8 (a reason may hold control characters: escape it to show it).
 * Free with edgetel__v1__cert_reply__free_unpacked(r, NULL).
 */
int et_cert_reply_decode(const uint8_t *buf, size_t len, Edgetel__V1__CertReply **out,
                         char *err, size_t errlen);

#endif
