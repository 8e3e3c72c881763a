/*
 * Per-device budget: how many samples and bytes a second one device may
 * have stored, so that one device (hostile, or broken and looping) cannot
 * flood the store and delay every other device's acks. A valid
 * certificate proves who a device is, not how much it should send.
 *
 * Two token buckets per device, one for samples and one for bytes,
 * filled at the configured rate up to the burst, on the clock the caller
 * gives (the aggregator's wall clock; a step back refills nothing). A
 * batch within both is charged to both; a batch over either is refused
 * and charges nothing: ingest neither stores nor acknowledges it, so the
 * device keeps it and sends it again after its ack timeout. An honest
 * device that bursts (a backlog after an outage) loses nothing, it is
 * only paced. A batch larger than a burst passes when the bucket is
 * full, and leaves it in debt until the rate has paid for it, so no
 * batch the codec accepts is refused for ever.
 *
 * Memory is bounded: a table of ET_BUDGET_DEVICES slots (devtable.h: a
 * 64-bit hash of the device id, the two buckets, the time of the last
 * charge and of the last log line; 56 bytes each, 896 KiB in all), open
 * addressing within a window of 16 slots. A fleet larger than the table, or an
 * unlucky window, loses the state of the device heard from longest ago
 * in the window: its buckets start full again, the generous side.
 *
 * One thread: the caller's.
 */
#ifndef EDGETEL_BUDGET_H
#define EDGETEL_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Defaults, generous for a real board: a Pi with every collector at its
 * default interval sends tens of samples a second, a few KiB; draining a
 * day's backlog at 5000 samples/s takes minutes. The bursts hold one
 * largest batch (ET_WIRE_MAX_SAMPLES samples, ET_WIRE_MAX_MESSAGE bytes)
 * twice over for bytes.
 */
#define ET_BUDGET_SAMPLES_PER_S 5000
#define ET_BUDGET_SAMPLE_BURST 200000
#define ET_BUDGET_BYTES_PER_S (256 * 1024)
#define ET_BUDGET_BYTE_BURST (2 * 1024 * 1024)
/* Devices whose state is kept at once (a power of two). */
#define ET_BUDGET_DEVICES 16384
/* A device over its budget is logged at most this often. */
#define ET_BUDGET_LOG_EVERY_MS 60000

struct et_budget_cfg {
    uint64_t samples_per_s;    /* 0: samples are not budgeted */
    uint64_t sample_burst;     /* bucket size; at least samples_per_s */
    uint64_t bytes_per_s;      /* 0: bytes are not budgeted */
    uint64_t byte_burst;       /* bucket size; at least bytes_per_s */
};

/* What et_budget_charge() decided. */
struct et_budget_verdict {
    bool over;                 /* refused: nothing stored, nothing acknowledged */
    const char *which;         /* over: "samples" or "bytes" */
    /* over, and this device's line is due (its first refusal, or the
     * first one ET_BUDGET_LOG_EVERY_MS after its last line): log one. */
    bool log;
    uint64_t refused;          /* log: refusals since its last line, this one included */
};

struct et_budget;

/**
 * @param cfg copied. -EINVAL when a burst is below its rate.
 * @return 0, -EINVAL or -ENOMEM.
 */
int et_budget_create(struct et_budget **out, const struct et_budget_cfg *cfg);

/** NULL is a no-op. */
void et_budget_destroy(struct et_budget *b);

/**
 * Charge a batch of samples and bytes to device at now_ms, or refuse it
 * (see the top of this file); *v says which.
 */
void et_budget_charge(struct et_budget *b, const char *device, uint64_t samples, uint64_t bytes,
                      int64_t now_ms, struct et_budget_verdict *v);

/** Devices whose state is kept now (for tests and the summary). */
size_t et_budget_devices(const struct et_budget *b);

#endif
