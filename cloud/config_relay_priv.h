/*
 * The config relay's handle and what its files share. Private to et_cloud:
 *   config_relay.c   the handle, sending, a Status, the poll
 *   config_report.c  a board's reports
 *   config_rules.c   the rules edgetelctl shares (config_relay.h)
 */
#ifndef EDGETEL_CONFIG_RELAY_PRIV_H
#define EDGETEL_CONFIG_RELAY_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/budget.h"
#include "edgetel/config_relay.h"

/* {root}/v1/{device}/config */
#define RELAY_TOPIC_MAX (ET_TOPIC_ROOT_MAX + ET_DEVICE_ID_MAX + 16)
/* A group's devices read at once. */
#define RELAY_PAGE 128
/* Devices whose refused reports are counted for the log (a power of two);
 * two that share a slot only make each other's next line come sooner. */
#define RELAY_LOG_SLOTS 1024
/* Devices whose Status found the MQTT client full, offered again at the next poll. */
#define RELAY_RETRY_MAX 1024

/* What the relay needs of one device, copied out of a row. */
struct relay_device {
    char id[ET_DEVICE_ID_MAX + 1];
    char groups[ET_STORE_CONFIG_GROUPS_TEXT_MAX];
    uint64_t running;
    bool has_report;
    struct et_store_config_report report;   /* version and result only */
};

/* A desired config to offer: a target's newest. */
struct relay_row {
    uint64_t version;
    enum et_config_target kind;
    char target[ET_DEVICE_ID_MAX + 1];
};

/* A device's refused reports since its last log line. */
struct relay_log_slot {
    uint64_t key;
    int64_t next_ms;
    uint64_t quiet;
};

struct et_config_relay {
    struct et_store_config *sc;            /* borrowed */
    char root[ET_TOPIC_ROOT_MAX + 1];
    et_config_publish_fn publish;
    void *ctx;
    struct et_config_relay_stats stats;
    /* Every desired config up to seen has been dealt with; a poll stopped
     * by the MQTT client goes on in resume_version after resume_after. */
    uint64_t seen;
    uint64_t resume_version;
    char resume_after[ET_DEVICE_ID_MAX + 1];
    /* The bytes of one desired config, kept while its devices are sent it. */
    uint64_t bytes_version;
    uint8_t *bytes;
    size_t bytes_len;
    int bytes_err;
    struct relay_device *page;              /* RELAY_PAGE of them */
    size_t page_n;
    struct relay_row *rows;
    size_t n_rows, cap_rows;
    char (*retry)[ET_DEVICE_ID_MAX + 1];    /* RELAY_RETRY_MAX of them */
    size_t n_retry;
    struct et_budget *budget;               /* reports a second per device */
    struct relay_log_slot *log_slots;       /* RELAY_LOG_SLOTS of them */
    int64_t store_next_log_ms;
    uint64_t store_quiet;
};

/* The store failed: count it, say it at most once a minute, hand ret on. */
int relay_store_failed(struct et_config_relay *r, int ret, const char *what, int64_t now_ms);

#endif
