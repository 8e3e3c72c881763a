/*
 * The uplink: the outbox over MQTT to the aggregator, and the aggregator's
 * Acks back into the outbox. The agent's one home for sending.
 *
 * What it sends, in which order:
 *   - On every connect: a retained birth Status (online, with the reason
 *     connecting was late, if it was) on {root}/v1/{device}/status, then
 *     batches. The last will, registered with each connect, is a retained
 *     offline Status ("connection lost (last will)").
 *   - Batches go QoS 1 to {root}/v1/{device}/telemetry through a window of
 *     at most max_inflight batches sent and not yet acknowledged, from two
 *     sources: the outbox, and the batcher's batches that could not be
 *     stored (a full disk, the card below the free-space reserve; see
 *     batcher.h), which are in memory only. In this order:
 *       1. batches in memory only: nothing else holds them, and they are
 *          the first to be dropped when memory runs out. Those made before
 *          this connection are marked historical; none is paced;
 *       2. live rows: batches made since this connection came up;
 *       3. the backlog (made while disconnected, or left from an earlier
 *          run), filling what the window leaves, each batch marked
 *          historical on the way out (et_batch_mark_historical), paced at
 *          drain_rate batches a second when that is set, with progress
 *          logged every 10 s and kept for the agent's metrics
 *          (et_uplink_stats): the batches left are the outbox's rows, and
 *          the ETA comes from how fast they went over the last 10 s, so
 *          there is none before a rate was measured.
 *     A batch's seq is used up before it is sent from memory
 *     (et_outbox_claim), so it never repeats whether or not it is stored.
 *   - A batch of samples taken before the clock synced is re-timed on the
 *     way out (et_clock_retime); the outbox keeps the bytes it was made with.
 *   - A Status every minute (et_uplink_status), and an offline one when the
 *     agent stops or reconnects with a new config (et_uplink_stop).
 *   - ConfigReports, retained, on {root}/v1/{device}/config/report, when
 *     the agent hands them over (et_uplink_publish_report).
 *
 * What it receives: Acks on {root}/v1/{device}/ack, and signed configs on
 * {root}/v1/{device}/config (retained), handed to the agent unread
 * (et_uplink_on_config): verifying them is the agent's (reconf.h). With
 * the board's own identity, the issuer's answers on
 * {root}/v1/{device}/cert/issued, handed over the same way
 * (et_uplink_on_cert; enroll.h), and CSRs go out on
 * {root}/v1/{device}/cert/csr (et_uplink_publish_csr).
 *
 * When a row may be deleted: only when the aggregator's Ack on
 * {root}/v1/{device}/ack names it, by its cumulative acked_through or its
 * list of selective seqs; the aggregator sends an Ack only after its store
 * committed the batch. The Ack releases the seqs it names from both
 * sources: rows leave the outbox, batches in memory leave the batcher
 * (counted as delivered without being stored: not persisted). A broker PUBACK means nothing here: a broker without
 * persistence or an aggregator that is down must not cost data. An Ack for
 * another device is ignored (and logged). So is an Ack for another stream
 * than the outbox's (logged once per stream): it was meant for an earlier
 * life of the device's data directory, and must never delete rows of this
 * one. An Ack without a stream id (the legacy stream) acts only on seqs
 * made before the outbox had a stream (below et_outbox_stream_first_seq()).
 * Every batch and Status carries the outbox's stream id.
 *
 * When no Ack comes in time the batch is sent again; the aggregator's
 * dedupe by (device, stream, seq) makes that harmless. "In time" follows the
 * measured round trips of the Acks (uplink_internal.h: at least 2 s,
 * doubling after a timeout) and is never longer than ack_timeout.
 *
 * On disconnect: the window is emptied (nothing in flight counts as
 * delivered), the seam reconnects with backoff, and on the next connect
 * sending starts over: what is in memory, then live batches of the new
 * connection, then the whole backlog. Meanwhile batches in memory stay
 * there, within the batcher's bound, past which the oldest are dropped
 * and counted. A lost connection is logged when it is lost, and the first
 * failed connect; after that a different reason is logged at most once a
 * minute and a repeated one only at debug level.
 *
 * Threads: none of its own. Everything runs on the agent's thread; the MQTT
 * seam's events arrive through et_uplink_fd() and et_uplink_dispatch().
 */
#ifndef EDGETEL_UPLINK_H
#define EDGETEL_UPLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batcher.h"
#include "clock.h"
#include "edgetel/codec.h"
#include "edgetel/config.h"
#include "edgetel/mqtt.h"
#include "edgetel/outbox.h"

struct et_uplink;

/*
 * The parts of a Status only the agent knows (boot id, drops of its own,
 * version). The uplink sets online and reason; fill sets the rest.
 */
typedef void (*et_uplink_status_fill)(void *ctx, struct et_status *st);

/* A SignedConfig arrived on {root}/v1/{device}/config (bytes valid during the call). */
typedef void (*et_uplink_config_fn)(void *ctx, const uint8_t *buf, size_t len);

/* A CertReply arrived on {root}/v1/{device}/cert/issued (bytes valid during the call). */
typedef void (*et_uplink_cert_fn)(void *ctx, const uint8_t *buf, size_t len);

/*
 * The client certificate and key to connect with when they are not the
 * config's [mqtt] cert and key: the board's own identity (identity.h).
 * Borrowed strings, for the uplink's life.
 */
struct et_uplink_tls {
    const char *cert_file;
    const char *key_file;
};

struct et_uplink_stats {
    bool connected;
    uint64_t connects;         /* connections made so far */
    const char *last_error;    /* why the last connect failed or was lost; "" none */
    size_t inflight;           /* batches sent and not yet acknowledged */
    uint64_t batches_sent;
    uint64_t batches_acked;
    uint64_t resends;
    uint64_t backlog_left;     /* backlog rows at the last report while one drains; 0 otherwise */
    double backlog_eta_s;      /* -1 when unknown (no rate measured yet) */
};

/**
 * Set up the uplink of cfg's device over transport (not connected yet),
 * with the client certificate of tls (NULL: cfg's [mqtt] cert and key).
 * Checks the TLS files first (readable; the key private to this user)
 * unless cfg->mqtt.insecure, which it warns about loudly. cfg, transport,
 * outbox, batcher (the batches not stored; NULL when the outbox holds all)
 * and clock are borrowed and must outlive the uplink. Without [mqtt] host
 * there is no uplink: *out is NULL, 0 is returned and the agent collects
 * into the outbox only.
 * @return 0, or -errno with err saying what and why.
 */
int et_uplink_create(struct et_uplink **out, const struct et_config *cfg,
                     const struct et_uplink_tls *tls,
                     const struct et_mqtt_transport *transport, struct et_outbox *outbox,
                     struct et_batcher *batcher, const struct et_clock *clock,
                     et_uplink_status_fill fill, void *fill_ctx, char *err, size_t errlen);

/** Begin connecting; note (may be NULL or "") goes into every birth Status. */
int et_uplink_start(struct et_uplink *u, const char *note);

/** Whether et_uplink_start() was called. */
bool et_uplink_started(const struct et_uplink *u);

/** Readable while the seam has events for et_uplink_dispatch(). */
int et_uplink_fd(const struct et_uplink *u);

/** Handle the seam's events: connects, disconnects, Acks. */
void et_uplink_dispatch(struct et_uplink *u);

/**
 * Resend what timed out and send what the window and the drain rate allow.
 * Call after new batches reach the outbox and once per loop pass.
 */
void et_uplink_pump(struct et_uplink *u, int64_t now_ms);

/** Publish a Status now (retained); a no-op while disconnected. */
void et_uplink_status(struct et_uplink *u, bool online, const char *reason);

/**
 * Publish the offline Status (why: "agent stopped", "reconnecting with a
 * new config") and disconnect cleanly, so the broker does not send the
 * will; then free. NULL is a no-op.
 */
void et_uplink_stop(struct et_uplink *u, const char *why);

/** Hand pushed configs to fn from now on (from et_uplink_dispatch()). */
void et_uplink_on_config(struct et_uplink *u, et_uplink_config_fn fn, void *ctx);

/**
 * Hand the issuer's answers to fn from now on (from et_uplink_dispatch()),
 * subscribing to {root}/v1/{device}/cert/issued.
 * @return 0, or the seam's -errno.
 */
int et_uplink_on_cert(struct et_uplink *u, et_uplink_cert_fn fn, void *ctx);

/**
 * Publish a CertRequest (QoS 1, not retained) on {root}/v1/{device}/cert/csr.
 * @return 0; -ENOTCONN while disconnected; the seam's -errno.
 */
int et_uplink_publish_csr(struct et_uplink *u, const uint8_t *buf, size_t len);

/**
 * Publish a ConfigReport retained on {root}/v1/{device}/config/report.
 * @return 0; -ENOTCONN while disconnected; the seam's -errno.
 */
int et_uplink_publish_report(struct et_uplink *u, const uint8_t *buf, size_t len);

/**
 * Run on cfg from now on, which connects alike (et_reconf_uplink_same()):
 * the window's size and the resend timer follow it, the connection stays.
 * cfg is borrowed like the one it replaces.
 */
void et_uplink_retarget(struct et_uplink *u, const struct et_config *cfg);

/** Free without a goodbye (the broker then sends the will). NULL is a no-op. */
void et_uplink_destroy(struct et_uplink *u);

/** Counters and state for the agent's metrics and log. u may be NULL (no uplink). */
void et_uplink_stats(const struct et_uplink *u, struct et_uplink_stats *out);

#endif
