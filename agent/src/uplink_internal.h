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
    bool again;                /* sent before: its Ack says nothing about the round trip */
};

/*
 * The resend timer (RFC 6298's, for batches): a batch with no Ack after
 * rto_ms goes again. rto follows the measured Ack round trips (srtt +
 * 4 rttvar, at least UPLINK_RTO_MIN_MS) and doubles after each timeout, and
 * never exceeds [mqtt] ack_timeout. Why not a fixed 30 s: after a broker
 * restart an agent may be back before any aggregator has subscribed again,
 * and the broker then drops the batches of its first window; on a link
 * whose Acks come in 50 ms they go again after 2 s, not 30.
 * Round trips of batches sent more than once are not measured (Karn).
 */
#define UPLINK_RTO_MIN_MS 2000
#define UPLINK_RTO_INITIAL_MS 5000
#define UPLINK_RESENT_RING 256
#define UPLINK_INITIAL_RTO(cfg) \
    ((cfg)->ack_timeout_ms < UPLINK_RTO_INITIAL_MS ? (cfg)->ack_timeout_ms : UPLINK_RTO_INITIAL_MS)

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
    char topic_config[TOPIC_MAX];
    char topic_report[TOPIC_MAX];
    char topic_csr[TOPIC_MAX];
    char topic_issued[TOPIC_MAX];
    et_uplink_config_fn on_config;   /* a SignedConfig arrived; NULL: ignored */
    void *config_ctx;
    et_uplink_cert_fn on_cert;       /* a CertReply arrived; NULL: not subscribed */
    void *cert_ctx;
    uint64_t connects;

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
    /* The outbox had nothing after either cursor when its next seq was
     * outbox_idle_seq: until a batch is appended or a cursor goes back
     * (rewind, connect) there is nothing to look for there, and each loop
     * pass skips the two queries (issue 13's profile: SQLite was 13 % of
     * the main thread, mostly these read transactions). */
    bool outbox_idle;
    uint64_t outbox_idle_seq;

    /* Backlog drain pacing and progress. */
    double drain_tokens;       /* historical batches that may go now */
    int64_t drain_refill_ms;
    int64_t drain_report_ms;   /* the last report, or the connect */
    uint64_t drain_left_at_report;
    uint64_t drain_left;       /* backlog rows at the last report, for the agent's metrics */
    double drain_eta_s;        /* -1 when unknown */

    int64_t rto_ms;
    int64_t srtt_ms;           /* 0: no round trip measured yet */
    int64_t rttvar_ms;
    uint64_t resent[UPLINK_RESENT_RING];   /* seqs sent more than once, lately */
    size_t resent_next;

    uint64_t batches_sent;
    uint64_t batches_acked;
    uint64_t resends;
    /* The aggregator asked for this metric dictionary (Ack.dict_wanted):
     * batches go with it inline until one is stored. 0: none asked. */
    uint64_t dict_wanted;
    bool dict_lost_said;       /* a batch whose dictionary is gone: said once */

    /* Ignored Acks are said once: those without a stream id, and those of
     * the last other stream seen. */
    bool ack_delete_failing;   /* et_outbox_ack failed: said once until it works */
    bool legacy_said;
    bool foreign_said;
    uint8_t foreign_stream[ET_STREAM_ID_LEN];
};

_Static_assert(ET_OUTBOX_STREAM_ID_LEN == ET_STREAM_ID_LEN, "one stream id on disk and wire");

/* A round trip of ms for a batch sent once: the resend timer follows it. */
void uplink_rtt_sample(struct et_uplink *u, int64_t ms);

/* seq will go again (a timeout, a lost connection): its Ack is no sample. */
void uplink_note_resent(struct et_uplink *u, uint64_t seq);

/* Take the window's entry i out (its batch was acknowledged). */
void uplink_inflight_remove_at(struct et_uplink *u, size_t i);

/* The aggregator does not know dictionary dict_id: send seq again at once,
 * and batches from now on, with it inline (uplink_send.c). */
void uplink_dict_wanted(struct et_uplink *u, uint64_t dict_id, uint64_t seq);

/* Backlog rows: stored batches made before this connection, counted. 0 or -errno. */
int uplink_backlog_rows(struct et_uplink *u, uint64_t *left);

#endif
