/*
 * The config relay: the aggregator's part in pushed configuration
 * (issue 9), without MQTT. The operator's edgetelctl signs a config and
 * queues it in the store as a desired config (store_config.h); the relay
 * sends it to the boards it is for, retained at QoS 1 on
 * {root}/v1/{device}/config, and records what the boards report on
 * {root}/v1/{device}/config/report.
 *
 * What the relay can and cannot do: it sends the bytes exactly as the
 * operator signed them, and only those; it has no key, so it can neither
 * make a config nor change one (a board verifies the signature, the
 * target and the version). It can withhold one, or send an older one,
 * which a board refuses as not newer than what it runs.
 *
 * The rules (also et_config_desired_for() and et_config_behind() below,
 * which edgetelctl's config status shares):
 *   - A device's desired config is the newest (highest version) desired
 *     config whose target is the device or one of the groups its last
 *     online Status named. Versions are one counter for the whole fleet,
 *     so "newest" compares a device's own configs with its groups'.
 *   - A device is sent its desired config when it runs an older version,
 *     unless its latest report says it rejected or reverted that very
 *     version: sending the same bytes again cannot change the outcome, and
 *     a board that reported would only report again. A new version is
 *     the way on.
 *   - On a device's online Status (et_config_relay_status): if it is
 *     behind, it is sent its desired config. So a board that was away, or
 *     whose retained message a broker without persistence lost, catches up
 *     when it connects (its birth Status).
 *   - Every second (et_config_relay_poll): each target's newest desired
 *     config above the last one dealt with goes to the device it names
 *     (known to the store or not: the retained message waits for it), or
 *     to every device heard from whose groups hold the group, each that
 *     is behind and for which it is the desired config. A relay starts
 *     from 0, so at start every target's newest desired config is offered
 *     once (only to the devices behind it).
 *   - A report (et_config_relay_message): at most ET_WIRE_CONFIG_REPORT_MAX
 *     bytes, checked by the codec (UTF-8, no NUL, a valid device id, a
 *     known result), naming the device of its topic (the topic is the
 *     identity the broker vouches for), at most ET_CONFIG_REPORTS_PER_S a
 *     second per device (burst ET_CONFIG_REPORT_BURST). A refused report
 *     is logged with its device at most once a minute per device. A
 *     recorded one is logged for a person once, by the aggregator that
 *     recorded it first: "config v7 on greenhouse-3: committed".
 *
 * Nothing a device says can make the relay publish to another device's
 * topic: it publishes to a device named by the operator's desired config,
 * to the device of a Status's topic, or to a device heard from (a topic's
 * device) whose own Status claimed the group. A board may claim any
 * group; that gets it that group's configs (not secrets: configs carry
 * no keys, only paths to them) on its own topic, which it then verifies.
 *
 * Many aggregators: the relay keeps no state another instance needs. Two
 * relays sending the same retained bytes is harmless (a board ignores a
 * version it runs), and recording a report is idempotent (store_config.h).
 *
 * One thread: the caller's. The store is the caller's too: the relay's
 * calls join a transaction the caller has open on its writer.
 */
#ifndef EDGETEL_CONFIG_RELAY_H
#define EDGETEL_CONFIG_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/ingest.h"
#include "edgetel/store_config.h"

/* Reports a device's history keeps in the store. */
#define ET_CONFIG_HISTORY_KEEP 100
/* Reports a second one device may send, and how many at once. */
#define ET_CONFIG_REPORTS_PER_S 1
#define ET_CONFIG_REPORT_BURST 20
/* A device whose reports are refused, or a failing store, is said at most this often. */
#define ET_CONFIG_LOG_EVERY_MS 60000

/* A device's desired config as the rule finds it. */
struct et_config_desired {
    uint64_t version;                   /* 0: none */
    enum et_config_target kind;
    char target[ET_DEVICE_ID_MAX + 1];  /* the device itself or one of its groups */
};

/**
 * The desired config of device whose recorded groups are groups (a
 * canonical list, "" none): the newest desired config for the device or
 * one of the groups, into *out (version 0 when there is none).
 * @return 0 or the store's error.
 */
int et_config_desired_for(struct et_store_config *sc, const char *device, const char *groups,
                          struct et_config_desired *out);

/**
 * Whether a device that runs running, and whose latest report is rep
 * (NULL: none), is to be sent the desired version desired (see the rules
 * above). False when desired is 0.
 */
bool et_config_behind(uint64_t desired, uint64_t running,
                      const struct et_store_config_report *rep);

/**
 * Where a device that runs running stands with its desired version
 * desired, for a person: "-" (no desired config), "up to date",
 * "pending" (to be sent, or on its way) or "refused" (its latest report
 * rejected or reverted that very version). edgetelctl config status and
 * the web view say the same.
 */
const char *et_config_state(uint64_t desired, uint64_t running,
                            const struct et_store_config_report *rep);

/**
 * A device's groups as the store keeps them: each a name as a device id
 * is (et_device_id_valid), at most ET_STORE_CONFIG_GROUPS_MAX, sorted,
 * repeats dropped, joined with ',' into out (ET_STORE_CONFIG_GROUPS_TEXT_MAX
 * bytes is always enough); "" for none.
 * @return 0, or -EINVAL with why saying which group is wrong.
 */
int et_config_groups_canonical(const char *const *groups, size_t n, char *out, size_t outlen,
                               char *why, size_t whylen);

/** A result for a person: "applied", "committed", "rejected", "reverted"; "-" else. */
const char *et_config_result_name(int result);

/**
 * Publishes payload, retained at QoS 1, on topic. Returns >= 0 when the
 * MQTT client took it, -errno when not (-EAGAIN: too many in flight;
 * -ENOTCONN): the relay offers it again at its next poll or Status.
 */
typedef int (*et_config_publish_fn)(void *ctx, const char *topic, const uint8_t *payload,
                                    size_t len);

/* What et_config_relay_message() did with a message. */
enum et_config_relay_kind {
    ET_CONFIG_RELAY_IGNORED = 0,  /* not a report topic, or a cleared retained report */
    ET_CONFIG_RELAY_RECORDED,     /* a report recorded (news or not) */
    ET_CONFIG_RELAY_REFUSED,      /* malformed, for another device, or over the rate */
};

/* Counters since et_config_relay_create(). */
struct et_config_relay_stats {
    uint64_t sent;            /* configs the MQTT client took */
    uint64_t not_sent;        /* configs it did not take (offered again later) */
    uint64_t reports;         /* reports recorded */
    uint64_t refused;         /* reports refused */
    uint64_t store_errors;    /* calls that failed because the store did */
};

struct et_config_relay;

/**
 * @param sc      borrowed; must outlive the relay.
 * @param topic_root copied; as et_ingest_create() takes it.
 * @param publish called with ctx for every config sent.
 * @return 0, -EINVAL for a bad root or a missing argument, -ENOMEM.
 */
int et_config_relay_create(struct et_config_relay **out, struct et_store_config *sc,
                           const char *topic_root, et_config_publish_fn publish, void *ctx);

/** Destroy; NULL is a no-op. */
void et_config_relay_destroy(struct et_config_relay *r);

/**
 * A device's online Status said it runs running_version (its groups are
 * recorded already, by ingest): send it its desired config if it is behind.
 * @return 0 (also when the MQTT client did not take it), or the store's error.
 */
int et_config_relay_status(struct et_config_relay *r, const char *device,
                           uint64_t running_version, int64_t now_ms);

/**
 * Send desired configs pushed since the last poll (see the rules above).
 * A config the MQTT client does not take stops the poll; the next one
 * goes on from that device.
 * @return 0, or the store's error (logged at most once a minute).
 */
int et_config_relay_poll(struct et_config_relay *r, int64_t now_ms);

/**
 * Handle one message: a report on {root}/v1/{device}/config/report is
 * checked and recorded (see the rules above); anything else is ignored.
 * @param kind (may be NULL) gets what was done.
 * @return 0 when dealt with (recorded, refused or ignored), or the
 *         store's error.
 */
int et_config_relay_message(struct et_config_relay *r, const char *topic, const void *payload,
                            size_t len, int64_t now_ms, enum et_config_relay_kind *kind);

/** Counters since et_config_relay_create(). */
const struct et_config_relay_stats *et_config_relay_stats(const struct et_config_relay *r);

#endif
