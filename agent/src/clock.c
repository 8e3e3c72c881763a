/*
 * The agent's time: see clock.h.
 */
#include "clock.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/log.h"
#include "edgetel/platform.h"

/* An offset that moved by more than this was a clock step: persist it. */
#define OFFSET_PERSIST_DELTA_MS 1000

static void hex16(const uint8_t id[ET_BOOT_ID_LEN], char out[33])
{
    for (int i = 0; i < ET_BOOT_ID_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static bool unhex16(const char *s, uint8_t id[ET_BOOT_ID_LEN])
{
    for (int i = 0; i < ET_BOOT_ID_LEN; i++) {
        unsigned v;

        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        id[i] = (uint8_t)v;
    }
    return s[2 * ET_BOOT_ID_LEN] == '\0' || s[2 * ET_BOOT_ID_LEN] == ' ';
}

int et_clock_init(struct et_clock *t, const char *path, const uint8_t boot_id[ET_BOOT_ID_LEN])
{
    FILE *f;
    char line[128];
    int lineno = 0;

    memset(t, 0, sizeof(*t));
    if (snprintf(t->path, sizeof(t->path), "%s", path) >= (int)sizeof(t->path))
        return -ENAMETOOLONG;
    memcpy(t->boot_id, boot_id, ET_BOOT_ID_LEN);
    f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    /* Lines "<boot id hex> <offset ms>", newest first. A bad line is
     * skipped with a warning: losing an offset costs only corrections. */
    while (fgets(line, sizeof(line), f) && t->n_boots < ET_CLOCK_BOOTS) {
        struct et_clock_boot *b = &t->boots[t->n_boots];
        char hex[40];
        long long off;

        lineno++;
        if (sscanf(line, "%39s %lld", hex, &off) != 2 || strlen(hex) != 32 ||
            !unhex16(hex, b->boot_id)) {
            et_warn("time", "%s:%d: not \"<boot id> <offset ms>\"; ignored", path, lineno);
            continue;
        }
        b->offset_ms = off;
        if (memcmp(b->boot_id, boot_id, ET_BOOT_ID_LEN) == 0)
            t->synced_this_boot = true;
        t->n_boots++;
    }
    fclose(f);
    return 0;
}

static void clock_save(const struct et_clock *t)
{
    char tmp[4200], hex[33];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", t->path);
    f = fopen(tmp, "w");
    if (!f) {
        et_warn("time", "cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    for (size_t i = 0; i < t->n_boots; i++) {
        hex16(t->boots[i].boot_id, hex);
        fprintf(f, "%s %" PRId64 "\n", hex, t->boots[i].offset_ms);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        et_warn("time", "cannot write %s: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return;
    }
    fclose(f);
    if (rename(tmp, t->path) != 0)
        et_warn("time", "cannot replace %s: %s", t->path, strerror(errno));
}

static const struct et_clock_boot *clock_find(const struct et_clock *t,
                                                  const uint8_t boot_id[ET_BOOT_ID_LEN])
{
    for (size_t i = 0; i < t->n_boots; i++)
        if (memcmp(t->boots[i].boot_id, boot_id, ET_BOOT_ID_LEN) == 0)
            return &t->boots[i];
    return NULL;
}

bool et_clock_learn(struct et_clock *t, bool synced, int64_t mono_ms, int64_t wall_ms)
{
    int64_t offset = wall_ms - mono_ms;
    bool first = false;

    if (!synced)
        return false;
    if (!t->synced_this_boot) {
        /* Put this boot first; the oldest falls off the end. */
        size_t n = t->n_boots < ET_CLOCK_BOOTS ? t->n_boots : ET_CLOCK_BOOTS - 1;

        memmove(&t->boots[1], &t->boots[0], n * sizeof(t->boots[0]));
        memcpy(t->boots[0].boot_id, t->boot_id, ET_BOOT_ID_LEN);
        t->boots[0].offset_ms = offset;
        t->n_boots = n + 1;
        t->synced_this_boot = true;
        first = true;
        clock_save(t);
        return first;
    }
    struct et_clock_boot *cur = (struct et_clock_boot *)clock_find(t, t->boot_id);

    if (cur && llabs(cur->offset_ms - offset) > OFFSET_PERSIST_DELTA_MS) {
        et_info("time", "wall clock stepped by %+" PRId64 " ms while synchronised",
                offset - cur->offset_ms);
        cur->offset_ms = offset;
        clock_save(t);
    }
    return first;
}

int et_clock_retime(const struct et_clock *t, const uint8_t *blob, size_t len,
                     uint8_t **out, size_t *out_len)
{
    uint8_t boot[ET_BOOT_ID_LEN];
    enum et_time_quality tq;
    Edgetel__V1__Batch *b;
    const struct et_clock_boot *known;
    enum et_time_quality fixed;
    char err[160];
    int rc;

    rc = et_wire_peek_batch(blob, len, boot, &tq);
    if (rc)
        return rc;
    if (tq != ET_TQ_UNSYNCED)
        return 0;      /* every sample was synced, or it was fixed already */
    known = clock_find(t, boot);
    if (!known && memcmp(boot, t->boot_id, ET_BOOT_ID_LEN) == 0)
        return 0;      /* this boot has not synced yet: send as measured */
    fixed = known ? ET_TQ_CORRECTED : ET_TQ_UNCORRECTABLE;

    rc = et_wire_decode_batch(blob, len, &b, err, sizeof(err));
    if (rc)
        return rc;
    if (known)
        b->base_wall_ms = known->offset_ms + b->base_mono_ms;
    b->time_quality = (Edgetel__V1__TimeQuality)fixed;
    for (size_t i = 0; i < b->n_samples; i++) {
        Edgetel__V1__Sample *s = b->samples[i];

        /* Unset means "as the batch": it now inherits the fixed quality.
         * Samples marked SYNCED keep it: the offset is right for them too. */
        if (s->time_quality == EDGETEL__V1__TIME_QUALITY__TIME_QUALITY_UNSYNCED)
            s->time_quality = EDGETEL__V1__TIME_QUALITY__TIME_QUALITY_UNSPECIFIED;
    }
    size_t n = edgetel__v1__batch__get_packed_size(b);

    *out = malloc(n + 16);
    if (!*out) {
        et_wire_free_batch(b);
        return -ENOMEM;
    }
    *out_len = edgetel__v1__batch__pack(b, *out);
    et_wire_free_batch(b);
    return 1;
}

void et_clock_observe(struct et_clock *t, int64_t now_mono_ms)
{
    t->synced = et_time_synced();
    if (et_clock_learn(t, t->synced, now_mono_ms, et_time_wall_ms()))
        et_info("time", "wall clock synchronised: samples of this boot taken before now "
                "will be sent with corrected times");
}

enum et_time_quality et_clock_quality(const struct et_clock *t)
{
    return t->synced ? ET_TQ_SYNCED : ET_TQ_UNSYNCED;
}

int64_t et_clock_wall_of(int64_t mono_ms)
{
    return et_time_wall_ms() - (et_time_mono_ms() - mono_ms);
}

bool et_clock_may_connect(struct et_clock *t, int64_t now_mono_ms, bool tls, int64_t wait_ms,
                          char *note, size_t notelen)
{
    note[0] = '\0';
    if (!tls || wait_ms <= 0)
        return true;
    if (t->synced) {
        if (t->wait_began_ms) {
            snprintf(note, notelen, "waited %" PRId64 " s for the wall clock to synchronise",
                     (now_mono_ms - t->wait_began_ms) / 1000);
            et_info("time", "wall clock synchronised: connecting now");
        }
        return true;
    }
    if (t->wait_began_ms == 0) {
        t->wait_began_ms = now_mono_ms;
        et_warn("time", "wall clock not synchronised (adjtimex reports unsynced): not connecting "
                "yet, as TLS certificate checks would fail with a wrong clock; collecting into "
                "the outbox; waiting up to %" PRId64 " s for NTP ([mqtt] clock_wait)",
                wait_ms / 1000);
    }
    if (now_mono_ms - t->wait_began_ms >= wait_ms) {
        snprintf(note, notelen, "wall clock still not synchronised after %" PRId64
                 " s; connecting anyway", wait_ms / 1000);
        et_warn("time", "%s", note);
        return true;
    }
    return false;
}
