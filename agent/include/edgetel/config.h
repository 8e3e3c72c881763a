/*
 * The agent's configuration: one INI file (libinih), parsed by a table of
 * keys (type, default, offset, help) into a struct et_config. Unknown
 * sections and keys are errors that name file and line:
 *   config: /etc/edgetel/agent.conf:14: [mqtt] interval "5x": expected a duration like 10s
 *
 * File layout:
 *   [agent]   device_id, data_dir, batch_interval, batch_max_samples, log_level,
 *             trusted_keys, groups (the board's own: never taken from a push)
 *   [mqtt]    host, port, ca, cert, key, insecure, topic_root, keepalive,
 *             ack_timeout, max_inflight, backoff_min, backoff_max,
 *             backoff_max_refused, clock_wait, drain_rate, renew_at
 *             (cert and key unset with a host and TLS: the board's own
 *             identity, agent/src/identity.h: a key born on the board, a
 *             certificate by claim, renewed at renew_at)
 *   [outbox]  quota, reserve, policy, durability_window
 *   [collector NAME]   type = DRIVER, interval = DURATION, enabled = BOOL,
 *             tags = key=value, ... (carried with every metric of the collector),
 *             plus the keys of the driver's params table (driver.h), parsed
 *             and checked here, with the line of a bad one, so that probe()
 *             gets typed values and no bad value reaches the hardware.
 */
#ifndef EDGETEL_CONFIG_H
#define EDGETEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/ini.h"
#include "edgetel/log.h"
#include "edgetel/mqtt.h"
#include "driver.h"

/* One driver key of a [collector NAME] section as the file wrote it. */
struct et_kv {
    const char *key;
    const char *value;
    int line;
};

struct et_collector_cfg {
    char *name;              /* [collector NAME]: 1-32 of [a-z0-9_-] */
    char *type;              /* driver name; et_driver_find() knows it */
    int64_t interval_ms;     /* default 10 s, at least 100 ms */
    bool enabled;            /* default true */
    int line;                /* line of the section header; 0 for a default collector */
    struct et_kv *keys;      /* driver keys as written, in file order, each one the driver lists */
    size_t n_keys;
    void *params;            /* the same parsed by the driver's table, defaults for the keys
                              * not given: what probe() gets; NULL for a driver without params */
    char *tags;              /* "k=v,k2=v2" (canonical, see et_tags_canonical) or NULL */
};

struct et_config {
    char *path;              /* the file it came from, for messages */

    /* [agent] */
    char *device_id;         /* default: the host name */
    char *data_dir;          /* default: /var/lib/edgetel */
    int64_t batch_interval_ms;   /* default 2 s: how long samples gather before a batch is made */
    uint32_t batch_max_samples;  /* default 1000 */
    enum et_log_level log_level;
    /* The board's anchors for pushed config (edgetel/config_wire.h): the
     * operator public keys it trusts, and the groups it is in. Only the
     * local file sets them; a push may add or remove trusted keys, which
     * the agent keeps in its data directory. */
    char *trusted_keys;      /* as written: "PATH, PATH" */
    char *groups;            /* as written: "NAME, NAME" */
    char **trusted_key_files;    /* trusted_keys split */
    size_t n_trusted_key_files;
    char **group_names;      /* groups split, each et_device_id_valid() */
    size_t n_groups;

    /* [mqtt]: the connection (host unset: collect and store only; keepalive
     * 10 s; backoff from 1 s, capped at 5 s, or 2 min once the broker
     * refused us), then the agent's own keys */
    struct et_mqtt_settings mqtt;
    char *topic_root;        /* default "edgetel" */
    int64_t ack_timeout_ms;  /* default 30 s: re-send a batch with no Ack by then */
    uint32_t max_inflight;   /* default 16 batches */
    int64_t clock_wait_ms;   /* default 2 min: wait for clock sync before TLS; 0: no wait */
    uint32_t drain_rate;     /* backlog batches a second; 0: as fast as acks allow */
    char *renew_at;          /* as written: "67%" (of the lifetime) or "30d" (before the end) */
    uint32_t renew_at_pct;   /* renew_at as a share of the lifetime, 1-99; 0: renew_before_ms */
    int64_t renew_before_ms; /* renew_at as the time left before the certificate ends */

    /* [outbox] */
    uint64_t outbox_quota;   /* default 256 MiB of batches; 0: no quota */
    uint64_t outbox_reserve; /* default 64 MiB left free on the data dir's filesystem */
    int outbox_policy;       /* enum et_outbox_policy: 0 drop-oldest (default), 1 drop-newest */
    int64_t durability_window_ms; /* default 10 s: batches commit together this often */

    struct et_collector_cfg *collectors;
    size_t n_collectors;
};

/* Largest config file et_config_load() reads. */
#define ET_CONFIG_MAX_BYTES (1024 * 1024)
/* Most [collector] sections, and most driver keys in one: far above any real
 * board, low enough that a runaway file cannot make parsing slow. */
#define ET_CONFIG_MAX_COLLECTORS 256
#define ET_CONFIG_MAX_PARAMS 64
/* Most [agent] groups and trusted_keys. */
#define ET_CONFIG_MAX_GROUPS 32
#define ET_CONFIG_MAX_TRUSTED_KEYS 16

/**
 * Parse a config file into *out (zeroed first, defaults applied). On error
 * returns -EINVAL (or -errno when the file cannot be read), leaves *out
 * empty, and writes "PATH:LINE: what is wrong" into err.
 *
 * The whole result is validated before it is returned, so a caller can
 * parse a new config into a fresh struct and swap it in only on success.
 * Checks of the whole name the key and, where it has one, its line:
 * a CA file is required when host is set unless insecure = true,
 * cert and key go together (both unset: the board's own identity),
 * renew_at is a share (1%-99%) or a duration, backoff_min <= backoff_max and
 * backoff_max_refused, keepalive is whole
 * seconds, topic_root is one topic level, device_id (or the host name it
 * defaults to) passes et_device_id_valid(), every collector has a type
 * that names a built-in driver, only keys that driver's table lists, and
 * values of the key's type and range.
 * A file without any [collector] section gets the default system set:
 * cpu, memory, disk, diskio, net, load, uptime, procs, thermal, throttle and
 * self (those built in) every 10 s.
 */
int et_config_load(const char *path, struct et_config *out, char *err, size_t errlen);

/** The same from a string; name stands for the path in messages. */
int et_config_parse(const char *text, const char *name, struct et_config *out,
                    char *err, size_t errlen);

/** Free what *c holds and zero it; NULL is a no-op. */
void et_config_free(struct et_config *c);

/**
 * The table of [agent] and [mqtt] keys with their defaults and help (the
 * tests check the example config against it). [collector NAME] keys are
 * et_config_collector_keys().
 */
const struct et_ini_schema *et_config_schema(void);

/** The keys every [collector NAME] takes besides its driver's params. */
const struct et_key *et_config_collector_keys(size_t *n);

/**
 * Whether c connects with the board's own identity: a broker over TLS and
 * no [mqtt] cert and key. The agent then makes its key, enrolls by claim
 * and renews (agent/src/identity.h).
 */
bool et_config_own_identity(const struct et_config *c);

/* Value parsers (durations, sizes, booleans) live in edgetel/parse.h. */

#endif
