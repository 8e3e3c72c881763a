/*
 * The agent's configuration: one INI file (libinih), parsed by a table of
 * keys (type, default, offset, help) into a struct et_config. Unknown
 * sections and keys are errors that name file and line:
 *   config: /etc/edgetel/agent.conf:14: [mqtt] interval "5x": expected a duration like 10s
 *
 * File layout:
 *   [agent]   device_id, data_dir, batch_interval, batch_max_samples, log_level
 *   [mqtt]    host, port, ca, cert, key, insecure, topic_root, keepalive,
 *             ack_timeout, max_inflight, backoff_min, backoff_max
 *   [collector NAME]   type = DRIVER, interval = DURATION, enabled = BOOL,
 *             plus the keys the driver lists in its params table.
 */
#ifndef EDGETEL_CONFIG_H
#define EDGETEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/log.h"
#include "driver.h"

struct et_collector_cfg {
    char *name;              /* [collector NAME] */
    char *type;              /* driver name */
    int64_t interval_ms;
    bool enabled;
    int line;                /* line of the section header */
    struct et_kv *params;    /* driver keys, in file order */
    size_t n_params;
};

struct et_config {
    char *path;              /* the file it came from, for messages */

    /* [agent] */
    char *device_id;         /* default: the host name */
    char *data_dir;          /* default: /var/lib/edgetel */
    int64_t batch_interval_ms;   /* default 5 s: how long samples gather before a batch is made */
    uint32_t batch_max_samples;  /* default 1000 */
    enum et_log_level log_level;

    /* [mqtt] */
    char *host;              /* required unless running --once */
    int port;                /* default 8883 */
    char *ca_file;
    char *cert_file;
    char *key_file;
    bool insecure;           /* plain TCP: only when set explicitly */
    char *topic_root;        /* default "edgetel" */
    int64_t keepalive_ms;    /* default 30 s */
    int64_t ack_timeout_ms;  /* default 30 s: re-send a batch with no Ack by then */
    uint32_t max_inflight;   /* default 16 batches */
    int64_t backoff_min_ms;  /* default 1 s */
    int64_t backoff_max_ms;  /* default 60 s */

    struct et_collector_cfg *collectors;
    size_t n_collectors;
};

/**
 * Parse a config file into *out (zeroed first, defaults applied). On error
 * returns -EINVAL (or -errno when the file cannot be read), leaves *out
 * empty, and writes "PATH:LINE: what is wrong" into err.
 */
int et_config_load(const char *path, struct et_config *out, char *err, size_t errlen);

/** The same from a string; name stands for the path in messages. */
int et_config_parse(const char *text, const char *name, struct et_config *out,
                    char *err, size_t errlen);

void et_config_free(struct et_config *c);

/* Value parsers (durations, sizes, booleans) live in edgetel/parse.h. */

#endif
