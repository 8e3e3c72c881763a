/*
 * Fill an agent outbox with a backlog, as an agent offline for a long time
 * would have made it: N samples of ten sim-like metrics in batches of B
 * samples, with real encoded Batch messages. bench/drain.sh then measures
 * how long the agent takes to get it acknowledged.
 *
 *   outbox_fill PATH DEVICE SAMPLES BATCH_SAMPLES
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/outbox.h"
#include "edgetel/platform.h"

int main(int argc, char **argv)
{
    struct et_outbox *ob;
    struct et_batch *b;
    char err[256], name[32];
    uint8_t boot[ET_BOOT_ID_LEN];

    if (argc != 5) {
        fprintf(stderr, "usage: outbox_fill PATH DEVICE SAMPLES BATCH_SAMPLES\n");
        return 2;
    }
    long total = atol(argv[3]), per = atol(argv[4]);

    if (total <= 0 || per <= 0 || per > 50000) {
        fprintf(stderr, "outbox_fill: SAMPLES and BATCH_SAMPLES must be positive\n");
        return 2;
    }
    if (et_outbox_open(&ob, argv[1], err, sizeof(err)) != 0) {
        fprintf(stderr, "outbox_fill: %s\n", err);
        return 1;
    }
    et_time_boot_id(boot);
    et_batch_create(&b);
    int64_t mono = et_time_mono_ms() - total / 10 * 1000;   /* ten metrics a second */
    int64_t wall_offset = et_time_wall_ms() - et_time_mono_ms();
    long made = 0, counter = 0;

    et_outbox_begin(ob);
    while (made < total) {
        long n = total - made < per ? total - made : per;
        struct et_batch_meta meta = { .device_id = argv[2], .time_quality = ET_TQ_SYNCED };
        uint8_t *blob;
        size_t len;

        for (long i = 0; i < n; i++) {
            struct et_value v;
            int k = (int)(made + i) % 10;

            if (k == 0) {
                v = et_value_i64(counter++);
                et_batch_add(b, "sim.counter", "1", mono, &v, ET_TQ_SYNCED);
            } else {
                snprintf(name, sizeof(name), "bench.metric%d", k);
                v = et_value_f64((double)((made + i) % 997) / 10.0);
                et_batch_add(b, name, "1", mono, &v, ET_TQ_SYNCED);
            }
            if (k == 9)
                mono += 1000;
        }
        meta.seq = et_outbox_next_seq(ob);
        meta.oldest_seq = 1;
        /* Every batch names its outbox's stream, as the agent's do: the
         * aggregator acks per stream, and the agent takes only its own. */
        meta.stream_id = et_outbox_stream_id(ob);
        memcpy(meta.boot_id, boot, sizeof(boot));
        meta.base_mono_ms = et_batch_first_mono_ms(b);
        meta.base_wall_ms = wall_offset + meta.base_mono_ms;
        if (et_batch_encode(b, &meta, &blob, &len) != 0 ||
            et_outbox_append(ob, meta.seq, blob, len, (uint32_t)n, meta.base_mono_ms) != 0) {
            fprintf(stderr, "outbox_fill: cannot store batch %" PRIu64 "\n", meta.seq);
            return 1;
        }
        free(blob);
        et_batch_reset(b);
        made += n;
    }
    et_outbox_commit(ob);
    et_batch_destroy(b);
    et_outbox_close(ob);
    printf("%ld samples in %ld batches\n", made, (made + per - 1) / per);
    return 0;
}
