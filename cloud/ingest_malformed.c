/*
 * A malformed message: counted, and said at most once a minute per device
 * (ingest.h). A device that sends garbage, broken or hostile, sends it
 * with every message: a line each would flood the log and hide everything
 * else in it. So the first of a device's malformed messages is said in
 * full, with its cause; those that follow are counted and the last cause
 * kept, and once a minute is up one line says how many there were and the
 * last cause (et_ingest_tick(), or the device's next malformed message,
 * whichever comes first). A device quiet for a minute after such a line
 * has its next malformed message said in full again.
 *
 * The state is a bounded table (devtable.h) of INGEST_MALFORMED_DEVICES
 * slots (432 bytes each, 432 KiB in all), made at the first malformed
 * message: a fleet of hostile ids cannot grow it. A device whose slot is
 * taken over by another has what it had not said yet said at once, so no
 * count is lost from the log (and every malformed message is in the
 * counters regardless).
 */
#include "ingest_priv.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "edgetel/log.h"

struct malformed_slot {
    struct et_devtable_slot head;
    int64_t next_log_ms;       /* before it, another malformed message is only counted */
    int64_t quiet_since_ms;    /* the first of those counted */
    uint64_t quiet;            /* counted, not said yet */
    char device[ET_DEVICE_ID_MAX + 1];
    char cause[INGEST_MALFORMED_CAUSE_MAX];  /* the last of them, as said, cut to fit */
};

static const char *device_name(const char *device)
{
    return device[0] ? device : "(no valid device id)";
}

/* The count and the last of what was not said yet, in one line. */
static void say_quiet(struct et_ingest *ig, struct malformed_slot *s, int64_t now_ms)
{
    if (s->quiet == 0)
        return;
    et_warn("ingest", "device %s: %" PRIu64 " more malformed %s in the last %" PRId64 " s; "
            "the last: %s", device_name(s->device), s->quiet,
            s->quiet == 1 ? "message" : "messages",
            now_ms - s->quiet_since_ms > 1000 ? (now_ms - s->quiet_since_ms + 999) / 1000 : 1,
            s->cause);
    s->quiet = 0;
    ig->malformed_pending--;
    s->next_log_ms = now_ms + INGEST_MALFORMED_LOG_EVERY_MS;
}

/* The table forgets a device: say what it had not said. */
static void forget_slot(void *ctx, void *slot)
{
    struct et_ingest *ig = ctx;

    say_quiet(ig, slot, ig->now_ms);
}

void ingest_say_malformed(struct et_ingest *ig, const char *device, const char *fmt, ...)
{
    struct malformed_slot *s;
    char text[INGEST_MALFORMED_CAUSE_MAX];
    bool fresh;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (!ig->malformed.slots &&
        et_devtable_init(&ig->malformed, INGEST_MALFORMED_DEVICES, sizeof(*s), forget_slot,
                         ig) < 0) {
        /* No memory for the table: say it plainly, as before it. */
        et_warn("ingest", "device %s: %s", device_name(device), text);
        return;
    }
    s = et_devtable_get(&ig->malformed, device, ig->now_ms, &fresh);
    if (fresh)
        snprintf(s->device, sizeof(s->device), "%s", device);
    /* Within the minute after a line, or while a count waits: counted,
     * and the count said once its minute is up. */
    if (ig->now_ms < s->next_log_ms || s->quiet > 0) {
        if (s->quiet++ == 0) {
            s->quiet_since_ms = ig->now_ms;
            ig->malformed_pending++;
        }
        memcpy(s->cause, text, sizeof(s->cause));
        if (ig->now_ms >= s->next_log_ms)
            say_quiet(ig, s, ig->now_ms);
        return;
    }
    et_warn("ingest", "device %s: %s (more from it are counted and said once a minute)",
            device_name(device), text);
    s->next_log_ms = ig->now_ms + INGEST_MALFORMED_LOG_EVERY_MS;
}

int ingest_malformed(struct et_ingest *ig, struct et_ingest_reply *reply,
                     const char *topic, const char *what, const char *why)
{
    ig->stats.malformed++;
    reply->kind = ET_INGEST_MALFORMED;
    ingest_say_malformed(ig, reply->device, "dropped a malformed %s on %s, neither stored nor "
                         "acknowledged: %s", what, topic, why);
    return 0;
}

/* Say what waits: of every device whose minute is up, or with all, of every device. */
static int64_t say_due(struct et_ingest *ig, int64_t now_ms, bool all)
{
    int64_t next = INT64_MAX;

    for (size_t i = 0; i < ig->malformed.n_slots && ig->malformed_pending > 0; i++) {
        struct malformed_slot *s = et_devtable_at(&ig->malformed, i);

        if (!s || s->quiet == 0)
            continue;
        if (all || now_ms >= s->next_log_ms)
            say_quiet(ig, s, now_ms);
        else if (s->next_log_ms - now_ms < next)
            next = s->next_log_ms - now_ms;
    }
    return next;
}

int64_t et_ingest_tick(struct et_ingest *ig, int64_t now_ms)
{
    return ig->malformed_pending ? say_due(ig, now_ms, false) : INT64_MAX;
}

void ingest_malformed_free(struct et_ingest *ig)
{
    say_due(ig, ig->now_ms, true);
    et_devtable_fini(&ig->malformed);
}

size_t et_ingest_malformed_devices(const struct et_ingest *ig)
{
    return ig->malformed.used;
}
