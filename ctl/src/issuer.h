/*
 * The cloud issuer's rules: a CertRequest from ROOT/v1/<id>/cert/csr in,
 * the CertReply for ROOT/v1/<id>/cert/issued out. The MQTT loop around it
 * is ca_serve.c (edgetelctl ca serve).
 *
 * Who asks is the topic's <id>: the broker lets only the certificate of
 * that name publish there (broker/edgetel_acl.c).
 *   claim-<device>  enrollment: et_ca_enroll() for <device> (a registered,
 *                   unused, unexpired claim, signed by its key, a CSR for
 *                   <device>);
 *   <device>        renewal: et_ca_renew() for <device> (a certificate of
 *                   it neither revoked nor expired, at most every tenth of
 *                   a lifetime).
 * Every request is answered: issued, or refused with the reason, which is
 * also logged (warn; a refusal of one id at most once a minute, with how
 * many were not logged). Every device is taken as hostile: a request over
 * the size the codec allows is refused unread; an id may ask
 * ISSUER_BURST times at once and then once every ISSUER_REFILL_MS (more
 * is refused, with when to ask again, and never reaches the CA); a CSR
 * for another id than the topic's is refused by et_ca. The CA directory
 * is opened (and locked) for each request, so edgetelctl provision and
 * ca revoke run beside a serving issuer.
 *
 * One thread: the caller's.
 */
#ifndef EDGETEL_CTL_ISSUER_H
#define EDGETEL_CTL_ISSUER_H

#include <stddef.h>
#include <stdint.h>

/* Requests an id may make at once, and then one more every this long. */
#define ISSUER_BURST 4
#define ISSUER_REFILL_MS (15 * 1000)
/* Ids whose rate is kept at once; past that an old one starts afresh. */
#define ISSUER_IDS 4096
/* A refusal of one id is logged at most this often. */
#define ISSUER_LOG_EVERY_MS (60 * 1000)

struct et_issuer_cfg {
    const char *ca_dir;          /* the fleet CA (copied) */
    const char *topic_root;      /* e.g. "edgetel" (copied) */
    int64_t lifetime_s;          /* of the device certificates it signs */
};

struct et_issuer_stats {
    uint64_t enrolled, renewed, refused, limited, malformed;
};

/* What to publish in answer: reply (malloc'd, len bytes) on topic. */
struct et_issuer_answer {
    char topic[320];
    uint8_t *reply;
    size_t len;
};

struct et_issuer;

int et_issuer_create(struct et_issuer **out, const struct et_issuer_cfg *cfg);
void et_issuer_destroy(struct et_issuer *is);

/**
 * Handle a message that arrived on topic at wall time now_s and monotonic
 * mono_ms. A topic that is not ROOT/v1/<id>/cert/csr is ignored (returns
 * -ENOENT, nothing to publish); otherwise *ans is filled (free ans->reply)
 * and 0 returned.
 */
int et_issuer_handle(struct et_issuer *is, const char *topic, const uint8_t *payload,
                     size_t len, int64_t now_s, int64_t mono_ms, struct et_issuer_answer *ans);

const struct et_issuer_stats *et_issuer_stats(const struct et_issuer *is);

#endif
