/*
 * The cloud issuer's rules: a CertRequest in, a CertReply out (issuer.h).
 */
#include "issuer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/ca.h"
#include "edgetel/ca_claim.h"
#include "edgetel/cert_wire.h"
#include "edgetel/codec.h"
#include "edgetel/log.h"
#include "edgetel/timefmt.h"

/* One id's rate and log state; the slot is the id's hash's, taken over by another id's. */
struct id_slot {
    uint64_t key;              /* hash of the id; 0: empty */
    int tokens;                /* requests it may make now */
    int64_t refill_ms;         /* when the last token was added */
    int64_t logged_ms;         /* its last refusal logged; 0: never */
    uint64_t unlogged;         /* refusals since */
};

struct et_issuer {
    char ca_dir[4096];
    char root[256];
    int64_t lifetime_s;
    struct id_slot *slots;     /* ISSUER_IDS */
    struct et_issuer_stats stats;
};

_Static_assert((ISSUER_IDS & (ISSUER_IDS - 1)) == 0, "ISSUER_IDS is a power of two");

int et_issuer_create(struct et_issuer **out, const struct et_issuer_cfg *cfg)
{
    struct et_issuer *is;

    *out = NULL;
    if (!cfg->ca_dir || !cfg->topic_root || cfg->lifetime_s <= 0 ||
        strlen(cfg->ca_dir) >= sizeof(is->ca_dir) || strlen(cfg->topic_root) >= sizeof(is->root))
        return -EINVAL;
    is = calloc(1, sizeof(*is));
    if (!is)
        return -ENOMEM;
    is->slots = calloc(ISSUER_IDS, sizeof(*is->slots));
    if (!is->slots) {
        free(is);
        return -ENOMEM;
    }
    snprintf(is->ca_dir, sizeof(is->ca_dir), "%s", cfg->ca_dir);
    snprintf(is->root, sizeof(is->root), "%s", cfg->topic_root);
    is->lifetime_s = cfg->lifetime_s;
    *out = is;
    return 0;
}

void et_issuer_destroy(struct et_issuer *is)
{
    if (!is)
        return;
    free(is->slots);
    free(is);
}

const struct et_issuer_stats *et_issuer_stats(const struct et_issuer *is)
{
    return &is->stats;
}

/* ---- who asks, and how often ------------------------------------------------------ */

/* The <id> of ROOT/v1/<id>/cert/csr into id; false for any other topic. */
static bool topic_id(const struct et_issuer *is, const char *topic, char *id, size_t cap)
{
    size_t rlen = strlen(is->root), n;
    const char *p, *slash;

    if (strncmp(topic, is->root, rlen) != 0 || strncmp(topic + rlen, "/v1/", 4) != 0)
        return false;
    p = topic + rlen + 4;
    slash = strchr(p, '/');
    if (!slash || strcmp(slash, "/cert/csr") != 0)
        return false;
    n = (size_t)(slash - p);
    if (n == 0 || n >= cap)
        return false;
    memcpy(id, p, n);
    id[n] = '\0';
    return et_device_id_valid(id);
}

static struct id_slot *slot_of(struct et_issuer *is, const char *id, int64_t mono_ms)
{
    uint64_t h = 0xcbf29ce484222325ULL;    /* FNV-1a */
    struct id_slot *s;

    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    h |= 1;
    s = &is->slots[h & (ISSUER_IDS - 1)];
    if (s->key != h)
        *s = (struct id_slot){ .key = h, .tokens = ISSUER_BURST, .refill_ms = mono_ms };
    return s;
}

/* Take one request's token: 0, or the ms until one is there. */
static int64_t take_token(struct id_slot *s, int64_t mono_ms)
{
    int64_t added = (mono_ms - s->refill_ms) / ISSUER_REFILL_MS;

    if (added > 0) {
        s->tokens = s->tokens + added > ISSUER_BURST ? ISSUER_BURST : s->tokens + (int)added;
        s->refill_ms += added * ISSUER_REFILL_MS;
    }
    if (s->tokens > 0) {
        s->tokens--;
        return 0;
    }
    return ISSUER_REFILL_MS - (mono_ms - s->refill_ms);
}

/* A refusal of id, logged when its line is due (issuer.h). */
static void log_refusal(struct id_slot *s, const char *id, int64_t mono_ms, const char *why)
{
    if (s->logged_ms && mono_ms - s->logged_ms < ISSUER_LOG_EVERY_MS) {
        s->unlogged++;
        return;
    }
    if (s->unlogged)
        et_warn("issuer", "refused %s: %s (and %" PRIu64 " more refusals of it not logged in "
                "the last minute)", id, why, s->unlogged);
    else
        et_warn("issuer", "refused %s: %s", id, why);
    s->logged_ms = mono_ms;
    s->unlogged = 0;
}

/* ---- answering ------------------------------------------------------------------- */

static int answer(struct et_issuer_answer *ans, uint64_t request_id, const char *pem,
                  const char *reason, int64_t retry_after_ms)
{
    struct et_cert_reply r = {
        .request_id = request_id,
        .issued = pem != NULL,
        .certificate = pem,
        .reason = reason,
        .retry_after_ms = retry_after_ms > 0 ? (uint64_t)retry_after_ms : 0,
    };

    return et_cert_reply_encode(&r, &ans->reply, &ans->len);
}

/* Open the CA and enroll or renew as the id says; 0 with *pem, or -errno with why. */
static int sign(struct et_issuer *is, const char *id, const Edgetel__V1__CertRequest *req,
                int64_t now_s, char **pem, struct et_ca_cert *info, bool *enrolled, char *why,
                size_t whylen)
{
    size_t plen = strlen(ET_CA_CLAIM_PREFIX);
    struct et_ca *ca = NULL;
    int rc;

    *enrolled = strncmp(id, ET_CA_CLAIM_PREFIX, plen) == 0;
    rc = et_ca_open(&ca, is->ca_dir, why, whylen);
    if (rc) {
        et_error("issuer", "cannot open the CA: %s", why);
        snprintf(why, whylen, "the issuer cannot open its CA; ask again later");
        return -EIO;
    }
    if (*enrolled)
        rc = et_ca_enroll(ca, id + plen, req->csr.data, req->csr.len, req->claim_signature.data,
                          req->claim_signature.len, is->lifetime_s, now_s, pem, info, why,
                          whylen);
    else
        rc = et_ca_renew(ca, id, req->csr.data, req->csr.len, is->lifetime_s, now_s, pem, info,
                         why, whylen);
    et_ca_close(ca);
    return rc;
}

int et_issuer_handle(struct et_issuer *is, const char *topic, const uint8_t *payload,
                     size_t len, int64_t now_s, int64_t mono_ms, struct et_issuer_answer *ans)
{
    Edgetel__V1__CertRequest *req = NULL;
    char id[ET_CA_NAME_MAX + 1], why[512], until[48];
    struct et_ca_cert info;
    struct id_slot *s;
    char *pem = NULL;
    bool enrolled;
    int64_t wait;
    int rc;

    memset(ans, 0, sizeof(*ans));
    if (!topic_id(is, topic, id, sizeof(id)))
        return -ENOENT;
    snprintf(ans->topic, sizeof(ans->topic), "%s/v1/%s/cert/issued", is->root, id);
    s = slot_of(is, id, mono_ms);
    if ((wait = take_token(s, mono_ms)) > 0) {
        is->stats.limited++;
        snprintf(why, sizeof(why), "asked too often (%d requests at once, then one every "
                 "%d s); ask again in %" PRId64 " s", ISSUER_BURST, ISSUER_REFILL_MS / 1000,
                 (wait + 999) / 1000);
        log_refusal(s, id, mono_ms, why);
        return answer(ans, 0, NULL, why, wait);
    }
    if (et_cert_request_decode(payload, len, &req, why, sizeof(why)) != 0) {
        is->stats.malformed++;
        log_refusal(s, id, mono_ms, why);
        return answer(ans, 0, NULL, why, 0);
    }
    rc = sign(is, id, req, now_s, &pem, &info, &enrolled, why, sizeof(why));
    if (rc) {
        is->stats.refused++;
        log_refusal(s, id, mono_ms, why);
        rc = answer(ans, req->request_id, NULL, why,
                    rc == -EAGAIN ? is->lifetime_s * 100 : rc == -EIO ? 60000 : 0);
        goto out;
    }
    et_time_format_iso(info.not_after * 1000, until, sizeof(until));
    if (enrolled) {
        is->stats.enrolled++;
        et_info("issuer", "enrolled %s by its claim: serial %s, valid until %s", info.name,
                info.serial, until);
    } else {
        is->stats.renewed++;
        et_info("issuer", "renewed %s: serial %s, valid until %s", info.name, info.serial,
                until);
    }
    rc = answer(ans, req->request_id, pem, NULL, 0);
out:
    free(pem);
    edgetel__v1__cert_request__free_unpacked(req, NULL);
    return rc;
}
