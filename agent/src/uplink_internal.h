/*
 * The uplink's handle, shared by its two files. Private to the agent core:
 *   uplink.c       life cycle, Status, the seam's events, Acks
 *   uplink_send.c  the window, choosing what goes next (memory, live,
 *                  backlog), resends, backlog pacing and progress
 * The contract is in uplink.h.
 */
#ifndef EDGETEL_UPLINK_INTERNAL_H
#define EDGETEL_UPLINK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uplink.h"

#define TOPIC_MAX 256
#define SHUTDOWN_TIMEOUT_MS 2000
/* A refused reconnect with an unchanged reason is logged at most this often. */
#define DISCONNECT_LOG_MS (60 * 1000)
#define DRAIN_REPORT_MS (10 * 1000)

struct inflight {
    uint64_t seq;
    int64_t sent_ms;
    int token;                 /* the seam's, to find it by its PUBLISHED event */
};

/* A batch the broker had nobody to give to (no aggregator subscribed yet,
 * e.g. right after a broker restart) goes again after this, not after
 * ack_timeout. */
#define UPLINK_NO_SUBSCRIBER_RETRY_MS 1000

struct et_uplink {
    const struct et_config *cfg;
    struct et_outbox *outbox;
    struct et_batcher *batcher;   /* batches not stored; NULL: the outbox holds all */
    const struct et_clock *clock;
    et_uplink_status_fill fill;
    void *fill_ctx;
    struct et_mqtt *mqtt;
    char topic_telemetry[TOPIC_MAX];
    char topic_ack[TOPIC_MAX];
    char topic_status[TOPIC_MAX];

    bool started;
    bool connected;
    char connect_note[160];    /* said in the birth Status: why connecting was late */
    char last_disconnect[160];
    int64_t last_disconnect_log_ms;

    /* The window. */
    struct inflight *inflight;
    size_t n_inflight;
    uint64_t live_from;        /* seqs >= this were made during this connection */
    uint64_t memory_cursor;    /* highest unstored seq handed to MQTT */
    uint64_t live_cursor;      /* highest live seq of the outbox handed to MQTT */
    uint64_t backlog_cursor;   /* highest backlog seq handed to MQTT */

    /* Backlog drain pacing and progress. */
    double drain_tokens;       /* historical batches that may go now */
    int64_t drain_refill_ms;
    int64_t drain_report_ms;   /* the last report, or the connect */
    uint64_t drain_left_at_report;
    uint64_t drain_left;       /* backlog rows at the last report, for the agent's metrics */
    double drain_eta_s;        /* -1 when unknown */

    uint64_t batches_sent;
    uint64_t batches_acked;
    uint64_t resends;

    /* Ignored Acks are said once: those without a stream id, and those of
     * the last other stream seen. */
    bool legacy_said;
    bool foreign_said;
    uint8_t foreign_stream[ET_STREAM_ID_LEN];
};

_Static_assert(ET_OUTBOX_STREAM_ID_LEN == ET_STREAM_ID_LEN, "one stream id on disk and wire");

/* Take the window's entry i out (its batch was acknowledged). */
void uplink_inflight_remove_at(struct et_uplink *u, size_t i);

/* Backlog rows: stored batches made before this connection, counted. 0 or -errno. */
int uplink_backlog_rows(struct et_uplink *u, uint64_t *left);

#endif
