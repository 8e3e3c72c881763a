/*
 * Cost of collection rounds of the default system set, in instructions.
 *
 *   valgrind --tool=callgrind --toggle-collect=bench_round \
 *       --callgrind-out-file=/dev/null ./collect_bench 100 2>&1 | grep refs
 * prints the instructions of 100 rounds (bench/run.sh divides). Run alone,
 * it prints the values a round makes, so the per-value cost can be worked
 * out. Reads this machine's real /proc and /sys (et_platform_linux).
 *
 *   ./collect_bench 100 --batch DIR
 * takes the agent's whole path for each value instead: the round's values
 * go through the batcher into an outbox in DIR (made; it must not exist),
 * a batch is made every 2 rounds (rounds 1 s apart, batch_interval 2 s)
 * and the group commits every 10 (durability_window 10 s); bench_round
 * then counts the lookups, the encoding and SQLite too. What this leaves
 * out is the MQTT client's threads (bench/compare.sh measures the whole
 * process).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../agent/src/batcher.h"
#include "../agent/src/collect.h"
#include "edgetel/config.h"
#include "edgetel/log.h"
#include "edgetel/outbox.h"
#include "edgetel/platform.h"

struct bench {
    size_t values;
    struct et_batcher *batcher;   /* NULL: values are only counted */
    int64_t now;
};

static int take_value(void *ctx, const char *metric, const char *unit, const struct et_value *v)
{
    struct bench *b = ctx;

    b->values++;
    if (!b->batcher)
        return 0;
    return et_batcher_add(b->batcher, metric, unit, NULL, b->now, v, ET_TQ_SYNCED);
}

/* One round of every collector (and, with a batcher, its share of the
 * batching); the function callgrind measures. */
__attribute__((noinline)) static size_t bench_round(struct et_collector *cs, size_t n,
                                                    struct bench *b, int round)
{
    b->values = 0;
    for (size_t i = 0; i < n; i++)
        et_collector_round(&cs[i], b->now, take_value, b);
    if (b->batcher && round % 2 == 1)
        et_batcher_flush(b->batcher, b->now);
    if (b->batcher && round % 10 == 9)
        et_batcher_commit(b->batcher);
    return b->values;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    const char *dir = argc > 3 && strcmp(argv[2], "--batch") == 0 ? argv[3] : NULL;
    struct bench b = { 0 };
    struct et_outbox *outbox = NULL;
    struct et_config cfg;
    uint8_t boot[ET_BOOT_ID_LEN] = { 0 };
    char err[256], path[4096];
    size_t values = 0, total = 0;

    et_log_set_level(ET_LOG_WARN);
    /* No [collector] section: the default system set. */
    if (et_config_parse("[agent]\ndevice_id = bench\n", "bench.conf", &cfg, err, sizeof(err))) {
        fprintf(stderr, "collect_bench: %s\n", err);
        return 1;
    }
    if (dir) {
        snprintf(path, sizeof(path), "%s/outbox.db", dir);
        if (mkdir(dir, 0700) != 0 || et_outbox_open(&outbox, path, err, sizeof(err)) != 0 ||
            et_batcher_create(&b.batcher, outbox, "bench", boot, 1000) != 0) {
            fprintf(stderr, "collect_bench: %s: cannot make an outbox there: %s\n", dir, err);
            return 1;
        }
    }
    struct et_collector *cs = calloc(cfg.n_collectors, sizeof(*cs));

    for (size_t i = 0; i < cfg.n_collectors; i++) {
        et_collector_init(&cs[i], &cfg.collectors[i]);
        et_collector_probe(&cs[i], et_time_mono_ms());
    }
    for (int r = 0; r < rounds; r++) {
        /* Let the CPU counters move between rounds (they tick at 100 Hz),
         * as they do between the real rounds seconds apart. */
        const struct timespec tick = { .tv_sec = 0, .tv_nsec = 20 * 1000 * 1000 };

        nanosleep(&tick, NULL);
        b.now = et_time_mono_ms();
        values = bench_round(cs, cfg.n_collectors, &b, r);
        total += values;
    }
    /* Rounds differ a little (procs counts processes every 10 s): the mean. */
    printf("collectors %zu values_per_round %zu rounds %d values %zu\n", cfg.n_collectors,
           rounds ? (total + (size_t)rounds / 2) / (size_t)rounds : 0, rounds, total);
    for (size_t i = 0; i < cfg.n_collectors; i++)
        et_collector_fini(&cs[i]);
    free(cs);
    if (b.batcher) {
        et_batcher_commit(b.batcher);
        et_batcher_destroy(b.batcher);
        et_outbox_close(outbox);
    }
    et_config_free(&cfg);
    return 0;
}
