/*
 * Cost of one collection round of the default system set, in instructions.
 *
 *   valgrind --tool=callgrind --toggle-collect=bench_round \
 *       --callgrind-out-file=/dev/null ./collect_bench 100 2>&1 | grep refs
 * prints the instructions of 100 rounds (bench/run.sh divides). Run alone,
 * it prints the values a round makes, so the per-value cost can be worked
 * out. Reads this machine's real /proc and /sys (et_platform_linux).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../agent/src/collect.h"
#include "edgetel/config.h"
#include "edgetel/platform.h"

static int count_value(void *ctx, const char *metric, const char *unit, const struct et_value *v)
{
    (*(size_t *)ctx)++;
    return 0;
}

/* One round of every collector; the function callgrind measures. */
__attribute__((noinline)) static size_t bench_round(struct et_collector *cs, size_t n, int64_t now)
{
    size_t values = 0;

    for (size_t i = 0; i < n; i++)
        et_collector_round(&cs[i], now, count_value, &values);
    return values;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    struct et_config cfg;
    char err[256];
    size_t values = 0;

    /* No [collector] section: the default system set. */
    if (et_config_parse("[agent]\ndevice_id = bench\n", "bench.conf", &cfg, err, sizeof(err))) {
        fprintf(stderr, "collect_bench: %s\n", err);
        return 1;
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
        values = bench_round(cs, cfg.n_collectors, et_time_mono_ms());
    }
    printf("collectors %zu values_per_round %zu rounds %d\n", cfg.n_collectors, values, rounds);
    for (size_t i = 0; i < cfg.n_collectors; i++)
        et_collector_fini(&cs[i]);
    free(cs);
    et_config_free(&cfg);
    return 0;
}
