/*
 * The store's part for pushed configuration (issue 9): the fleet's desired
 * configs as the operator signed them, what each device says it runs and
 * which groups its file puts it in, and the outcomes the boards report.
 *
 * Like the writer and the reader it is storage only. Which config a device
 * should run, when one is sent and what a report means are the cloud
 * library's rules (config_relay.h), written once in C over these calls.
 * Who calls what:
 *   edgetelctl config push    desired_top, desired_add (one write transaction)
 *   ingest, on a Status       device_set (inside the Status's transaction)
 *   the relay (aggregator)    desired_*, devices, group_members, report_record
 *   edgetelctl config status  devices, report_history (a read-only store)
 *
 * Data model (SQLite: cloud/store/store_sqlite_open.c, schema 5):
 *   desired_configs  one row per pushed config: its version (the key: one
 *                    counter for the whole fleet, never per target, since
 *                    a board compares versions across its device and its
 *                    groups), whom it is for (a device or a group), the
 *                    SignedConfig bytes exactly as signed, the key id, the
 *                    commit deadline, when, by whom and from which file.
 *   devices          gain the groups of the device's last online Status
 *                    (canonical: sorted, no repeats, comma-separated) and
 *                    the config version it last said it runs.
 *   config_reports   each device's latest ConfigReport.
 *   config_report_history  its last reports, at most `keep` per device.
 *
 * Transactions: the config part shares its store's connection. Its calls
 * join the transaction the store's writer has open (et_store_begin() on
 * et_store_writer() of the same store), so a push takes its version and
 * inserts its row atomically, and ingest records a Status whole; outside
 * one each call stands alone. report_record is all or nothing either way.
 *
 * A store opened ET_STORE_READONLY answers the calls that write with
 * -EROFS; a store whose schema predates configs (4 or older, which
 * edgetelctl may read before any aggregator migrated it) answers every
 * call with -EPROTO.
 *
 * Rows come out through callbacks, as store.h's do: strings and bytes are
 * valid during the callback only, a non-zero return stops the rows and
 * becomes the call's result, and a callback must not call the store.
 *
 * Errors: 0 or -errno as store.h says; -ENOENT where a call says so.
 * The vtable only grows at the end; every member is required unless it
 * says otherwise.
 */
#ifndef EDGETEL_STORE_CONFIG_H
#define EDGETEL_STORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/store.h"

/*
 * Largest SignedConfig a store keeps and a relay sends. Equal to
 * ET_CONFIG_SIGNED_MAX (agent/include/edgetel/config_wire.h), which the
 * cloud library cannot include; edgetelctl, which links both, checks at
 * compile time that they agree.
 */
#define ET_STORE_CONFIG_SIGNED_MAX (1024 * 1024 + 4096)
/* Groups a device may claim, and the longest canonical list of them. */
#define ET_STORE_CONFIG_GROUPS_MAX 32
#define ET_STORE_CONFIG_GROUPS_TEXT_MAX (ET_STORE_CONFIG_GROUPS_MAX * 65)

/* Whom a desired config is for; values match ConfigBody's target field numbers. */
enum et_config_target {
    ET_CONFIG_TARGET_DEVICE = 1,
    ET_CONFIG_TARGET_GROUP = 2,
};

/* One desired config. */
struct et_store_desired {
    uint64_t version;               /* ConfigBody.version: the fleet's counter, from 1 */
    enum et_config_target kind;
    const char *target;             /* a device id or a group name */
    const uint8_t *signed_config;   /* the SignedConfig bytes exactly as signed */
    size_t signed_len;              /* 1 to ET_STORE_CONFIG_SIGNED_MAX */
    const char *key_id;             /* the signing key's id, 16 hex digits */
    uint64_t deadline_ms;           /* ConfigBody.commit_deadline_ms; 0: the board's default */
    int64_t created_ms;             /* when it was pushed (the operator's clock) */
    const char *pushed_by;          /* who pushed it, "user@host"; "" unknown */
    const char *source;             /* the file it was made from; "" unknown */
};

/* One ConfigReport as the store keeps it. */
struct et_store_config_report {
    const char *device;
    uint64_t version;               /* the version it is about; 0: the board read none */
    int result;                     /* enum et_config_result (codec.h) */
    const char *reason;             /* for a person; "" none */
    int64_t device_ms;              /* ConfigReport.time_ms: the device's clock */
    bool clock_synced;              /* whether that clock was synchronised */
    uint64_t running_version;       /* what the board runs after it */
    int64_t received_ms;            /* the aggregator's clock when it arrived */
};

/* What the store holds of one device's configuration. */
struct et_store_device_config {
    const char *device;
    bool known;                     /* heard from: it has a devices row */
    const char *groups;             /* canonical "a,b" from its last online Status; "" none */
    uint64_t running_version;       /* from its last online Status or report; 0 unknown */
    bool has_report;
    struct et_store_config_report report;   /* its latest, when has_report */
};

typedef int (*et_store_desired_cb)(void *ctx, const struct et_store_desired *d);
typedef int (*et_store_device_config_cb)(void *ctx, const struct et_store_device_config *dc);
typedef int (*et_store_config_report_cb)(void *ctx, const struct et_store_config_report *rep);

struct et_store_config;

struct et_store_config_ops {
    int (*desired_top)(struct et_store_config *sc, uint64_t *version);
    int (*desired_add)(struct et_store_config *sc, const struct et_store_desired *d);
    int (*desired_get)(struct et_store_config *sc, uint64_t version, et_store_desired_cb cb,
                       void *ctx);
    int (*desired_latest)(struct et_store_config *sc, enum et_config_target kind,
                          const char *target, et_store_desired_cb cb, void *ctx);
    int (*desired_after)(struct et_store_config *sc, uint64_t after, et_store_desired_cb cb,
                         void *ctx);
    int (*device_set)(struct et_store_config *sc, const char *device, const char *groups,
                      uint64_t running_version);
    int (*devices)(struct et_store_config *sc, const char *only, et_store_device_config_cb cb,
                   void *ctx);
    int (*group_members)(struct et_store_config *sc, const char *group, const char *after,
                         unsigned limit, et_store_device_config_cb cb, void *ctx);
    int (*report_record)(struct et_store_config *sc, const struct et_store_config_report *rep,
                         unsigned keep, bool *added, bool *latest);
    int (*report_history)(struct et_store_config *sc, const char *device, unsigned limit,
                          et_store_config_report_cb cb, void *ctx);
    /* Optional (NULL: none kept): the last failure in the backend's words. */
    const char *(*last_error)(struct et_store_config *sc);
};

/* A backend's config part starts with this; et_store_config() hands it out. */
struct et_store_config {
    const struct et_store_config_ops *ops;
};

/* ---- desired configs -------------------------------------------------------- */

/** The highest desired version in *version; 0 when there is none. */
static inline int et_store_desired_top(struct et_store_config *sc, uint64_t *version)
{
    return sc->ops->desired_top(sc, version);
}

/**
 * Add a desired config, every field of d as given (created_ms, pushed_by
 * and source included). -EEXIST when its version is taken: versions are
 * the fleet's one counter, so a caller takes max + 1 (desired_top) in the
 * same write transaction.
 */
static inline int et_store_desired_add(struct et_store_config *sc,
                                       const struct et_store_desired *d)
{
    return sc->ops->desired_add(sc, d);
}

/** The desired config of that version, bytes included, to cb; -ENOENT when none. */
static inline int et_store_desired_get(struct et_store_config *sc, uint64_t version,
                                       et_store_desired_cb cb, void *ctx)
{
    return sc->ops->desired_get(sc, version, cb, ctx);
}

/**
 * The newest (highest version) desired config for this device or group to
 * cb, without its bytes (signed_config NULL, signed_len 0: desired_get
 * gives them); -ENOENT when there is none.
 */
static inline int et_store_desired_latest(struct et_store_config *sc,
                                          enum et_config_target kind, const char *target,
                                          et_store_desired_cb cb, void *ctx)
{
    return sc->ops->desired_latest(sc, kind, target, cb, ctx);
}

/**
 * For every target whose newest desired config has a version above after,
 * that config, in increasing version, without its bytes. (A target's
 * older configs are left out: nobody is to run them any more.)
 */
static inline int et_store_desired_after(struct et_store_config *sc, uint64_t after,
                                         et_store_desired_cb cb, void *ctx)
{
    return sc->ops->desired_after(sc, after, cb, ctx);
}

/* ---- devices ---------------------------------------------------------------- */

/**
 * Record what a device's Status says of its configuration: groups (a
 * canonical list; NULL keeps the recorded one) and the version it runs.
 * -ENOENT when the device has no devices row.
 */
static inline int et_store_config_device_set(struct et_store_config *sc, const char *device,
                                             const char *groups, uint64_t running_version)
{
    return sc->ops->device_set(sc, device, groups, running_version);
}

/**
 * Devices with what the store holds of their configuration, ordered by
 * id: every device heard from, every device a desired config names, and
 * every device that sent a report. only != NULL: exactly one row, for
 * that id, whether the store knows it or not (known, has_report and a
 * desired config of its own then say which).
 */
static inline int et_store_config_devices(struct et_store_config *sc, const char *only,
                                          et_store_device_config_cb cb, void *ctx)
{
    return sc->ops->devices(sc, only, cb, ctx);
}

/**
 * Devices heard from whose recorded groups hold group, with id above after
 * ("" from the first), ordered by id, at most limit of them. Fewer than
 * limit means there are no more.
 */
static inline int et_store_config_group_members(struct et_store_config *sc, const char *group,
                                                const char *after, unsigned limit,
                                                et_store_device_config_cb cb, void *ctx)
{
    return sc->ops->group_members(sc, group, after, limit, cb, ctx);
}

/* ---- reports ---------------------------------------------------------------- */

/**
 * Record a report, all or nothing. It joins the device's history unless
 * the history holds it already (the same version, result and device time:
 * a retained report replayed, or the same report recorded by another
 * aggregator); the history keeps the newest keep reports of the device.
 * It becomes the device's latest report when there is none, or when it is
 * later than the recorded one: a higher version, or the same version at
 * the same or a later device time with another result or time.
 * @param added  (may be NULL) whether the history did not hold it: news.
 * @param latest (may be NULL) whether it is now the latest report.
 */
static inline int et_store_config_report_record(struct et_store_config *sc,
                                                const struct et_store_config_report *rep,
                                                unsigned keep, bool *added, bool *latest)
{
    return sc->ops->report_record(sc, rep, keep, added, latest);
}

/** The device's recorded reports, newest first, at most limit, to cb. */
static inline int et_store_config_report_history(struct et_store_config *sc,
                                                 const char *device, unsigned limit,
                                                 et_store_config_report_cb cb, void *ctx)
{
    return sc->ops->report_history(sc, device, limit, cb, ctx);
}

/** The backend's words for its last failure, "" when it keeps none. */
static inline const char *et_store_config_last_error(struct et_store_config *sc)
{
    const char *e = sc->ops->last_error ? sc->ops->last_error(sc) : NULL;

    return e ? e : "";
}

#endif
