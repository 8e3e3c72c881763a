/*
 * The aggregator's configuration: one INI file, read through the shared
 * table-driven loader (edgetel/ini.h). Unknown sections and keys, bad
 * values and missing required keys are errors naming file and line:
 *   aggregator.conf:9: [mqtt] port "88x3": expected a whole number
 *
 * File layout (defaults in brackets):
 *   [aggregator] instance_id [host name-pid], log_level [info],
 *                stats_interval [60s]
 *   [mqtt]       host (required), port [8883], ca, cert, key (required
 *                unless insecure), insecure [false], topic_root [edgetel],
 *                share_group [edgetel], keepalive [10s], backoff_min [250ms],
 *                backoff_max [1s], backoff_max_refused [2m], max_inflight [1024],
 *                max_packet [1M]
 *   [store]      type [sqlite], path [ET_STORE_DEFAULT_PATH], conninfo (postgresql),
 *                retention [0: keep all] (postgresql)
 *   [budget]     per device (edgetel/budget.h): samples_per_s [5000],
 *                sample_burst [200000], bytes_per_s [256k], byte_burst [2M]
 *   [http]       the web view and /metrics (aggregator/src/http.h): enabled
 *                [false], address [127.0.0.1], port [8080], tls_cert,
 *                tls_key, token_file (all three required on an address
 *                that is not loopback), max_connections [32], max_points
 *                [5000], dygraphs_dir [/usr/share/javascript/dygraphs]
 */
#ifndef EDGETEL_AGG_CONFIG_H
#define EDGETEL_AGG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "edgetel/budget.h"
#include "edgetel/log.h"
#include "edgetel/mqtt.h"

/* Largest config file read, in bytes. */
#define ET_AGG_CONFIG_MAX_BYTES (64 * 1024)

struct et_agg_config {
    char *path;               /* the file it came from, for messages */

    /* [aggregator] */
    char *instance_id;        /* the client id without TLS; NULL: host name and pid */
    enum et_log_level log_level;
    int64_t stats_interval_ms; /* how often the summary line is logged */

    /* [mqtt]: the connection (host required), then the aggregator's own keys */
    struct et_mqtt_settings mqtt;
    char *topic_root;
    char *share_group;        /* $share/<group>/...: instances of one group split the load */
    uint32_t max_inflight;    /* acks published and not yet PUBACKed */
    uint64_t max_packet;      /* largest message taken from the broker, bytes */

    /* [store] */
    int store_type;           /* index into et_agg_store_types */
    char *store_path;
    char *store_conninfo;     /* postgresql; NULL: path is the connection string */
    int64_t store_retention_ms; /* postgresql: samples of older days dropped; 0 keep */

    /* [budget]: each device's, for et_ingest_set_budget() */
    struct et_budget_cfg budget;

    /* [http]: the web view and Prometheus /metrics (http.h) */
    struct et_agg_http_cfg {
        bool enabled;
        char *address;        /* numeric IPv4 or IPv6 */
        int port;             /* 0: any free port, said in the log */
        char *tls_cert;       /* PEM files; both or neither */
        char *tls_key;
        char *token_file;     /* the operator token: Authorization: Bearer */
        uint32_t max_connections;
        uint32_t max_points;  /* buckets of one plotted series */
        char *dygraphs_dir;
    } http;
};

/** Whether a numeric address is loopback (127.0.0.0/8, ::1). */
bool et_agg_http_loopback(const char *address);

/* The [store] type names, NULL-terminated; store_type indexes it. */
extern const char *const et_agg_store_types[];

/** What the store is opened with: conninfo when set, else path. */
static inline const char *et_agg_store_target(const struct et_agg_config *c)
{
    return c->store_conninfo ? c->store_conninfo : c->store_path;
}

/**
 * Parse text (name stands for the file in messages) into *out, zeroed
 * first, defaults applied, the whole checked.
 * @return 0, -EINVAL with "NAME:LINE: what is wrong" (or "NAME: ..." for a
 *         problem of the whole, such as a missing key) in err, -ENOMEM.
 *         On failure *out is empty.
 */
int et_agg_config_parse(const char *text, const char *name, struct et_agg_config *out,
                        char *err, size_t errlen);

/** The same from a file; -errno with "PATH: cannot open: ..." when unreadable. */
int et_agg_config_load(const char *path, struct et_agg_config *out, char *err, size_t errlen);

void et_agg_config_free(struct et_agg_config *c);

/** Write the keys with their defaults and help, as a commented example file. */
void et_agg_config_print_help(FILE *out);

#endif
