/*
 * A bench for the agent's unit tests: an agent with its own data directory,
 * the real outbox and the sim driver, on the fake platform's clock
 * (platform/fake) and the in-process fake broker (tests/fake/fake_mqtt.h),
 * driven step by step with et_agent_step(). Only the agent's public API is
 * used. Library et_agent_bench; failures are cmocka failures.
 *
 * One bench per test by default (bench_setup/bench_teardown: device
 * "unit-dev" on a broker of its own, which starts down so the test says
 * when the agent connects). A test with several agents makes each with
 * bench_init() on one shared broker and one clock.
 */
#ifndef EDGETEL_AGENT_BENCH_H
#define EDGETEL_AGENT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/codec.h"
#include "edgetel/config.h"
#include "fake_mqtt.h"

#define BENCH_DEVICE "unit-dev"
#define BENCH_TOPIC_MAX 96

/* Times of the fake clock: the truth is wall TRUE_WALL0 at mono 1000000. */
#define YEAR_MS (365LL * 24 * 3600 * 1000)
#define TRUE_WALL0 1795000000000LL
#define TRUE_OFFSET (TRUE_WALL0 - 1000000)

struct bench {
    char device[32];
    char dir[64];
    char telemetry[BENCH_TOPIC_MAX];    /* the agent's topics */
    char ack[BENCH_TOPIC_MAX];
    char status[BENCH_TOPIC_MAX];
    struct et_fake_broker *broker;
    bool own_broker;
    struct et_config cfg;
    const char *agent_extra;    /* more lines of the [agent] section, or NULL */
    const char *ack_timeout;    /* [mqtt] ack_timeout; NULL: 2s */
    struct et_agent *agent;
    int stop[2];
    size_t seen;            /* published messages already looked at */
    struct et_wire_reader *reader;  /* the dictionaries of what was read (made at need) */
};

/** cmocka setup: fake platform reset, clock synced at TRUE_WALL0, a bench for BENCH_DEVICE. */
int bench_setup(void **state);
int bench_teardown(void **state);

/**
 * A bench for device on broker (borrowed), or on a broker of its own that
 * starts down when broker is NULL: a temporary data directory, a stop pipe.
 */
void bench_init(struct bench *b, const char *device, struct et_fake_broker *broker);
/** Stop the agent if running, remove the directory, free the broker if its own. */
void bench_fini(struct bench *b);

/**
 * Create and start the agent: batches every 200 ms, a window of 4, acks
 * due within 2 s, the sim collector every 100 ms, b->agent_extra in the
 * [agent] section, and extra lines of the [mqtt] section (NULL:
 * "insecure = true"; more sections may follow). Checks that the agent's client
 * subscribed to its ack topic alone and has a retained will on its status
 * topic.
 */
void bench_start(struct bench *b, const char *extra);
/** et_agent_stop() and et_agent_destroy(), as a power-off after a clean stop. */
void bench_stop(struct bench *b);

/** The agent's client on the fake broker. */
struct et_fake_client *bench_client(struct bench *b);

/** Advance the fake clock by ms in 50 ms steps, running the loop at each. */
void bench_run_for(struct bench *b, int64_t ms);
/** Bring the broker up and run one step: the agent handles CONNECTED. */
void bench_connect_now(struct bench *b);
/**
 * Publish an Ack for the agent's device and stream on its ack topic, as the
 * aggregator would; one step. The stream is the one its newest published
 * batch or Status names (fails the test before there is one).
 */
void bench_send_ack(struct bench *b, uint64_t through, const uint64_t *seqs, size_t n);
/** The same for stream stream_id (NULL: the legacy stream, no stream id). */
void bench_send_ack_in(struct bench *b, const uint8_t *stream_id, uint64_t through,
                       const uint64_t *seqs, size_t n);
/** The stream the agent's newest published batch or Status names; false before one. */
bool bench_stream(struct bench *b, uint8_t out[ET_STREAM_ID_LEN]);
/** Batches in the agent's outbox. */
uint64_t bench_outbox_batches(struct bench *b);

/**
 * Decode the agent's telemetry published since the last call (of this or
 * bench_timed_samples) into seqs/historical, and with counters the values
 * of sim.counter.
 */
size_t bench_new_batches(struct bench *b, uint64_t *seqs, bool *historical, size_t cap,
                         int64_t *counters, size_t *n_counters, size_t counter_cap);

/**
 * The agent's next batch in the broker's log from index *i on, decoded
 * (free it with et_wire_free_batch), *i moved past it; NULL at the end.
 */
Edgetel__V1__Batch *bench_next_batch(struct bench *b, size_t *i);

/** Connect, and ack every batch published until the outbox is empty. */
void bench_drain_all(struct bench *b);

struct timed {
    int64_t counter;
    int64_t mono;
    int64_t wall;
    int tq;                 /* effective: the sample's own, else the batch's */
    uint8_t boot0;          /* first byte of the boot id */
};

/**
 * The next telemetry message from *i on (moving *i past it): decoded into
 * *d (et_wire_free_batch() it) and its samples read by name into *named
 * (*n of them; free() it), as an aggregator that saw every batch reads
 * them. false when there is none.
 */
bool bench_next_read_at(struct bench *b, size_t *i, Edgetel__V1__Batch **d,
                        struct et_wire_named **named, size_t *n);

/** Every sim.counter sample published since the last call, with its times. */
size_t bench_timed_samples(struct bench *b, struct timed *out, size_t cap);

#endif
