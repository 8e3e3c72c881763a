/*
 * web_fill STORE [HOURS [INTERVAL_MS [METRICS]]]: fill a SQLite store
 * (made if new) with one device, "bench-device", sampled every
 * INTERVAL_MS (default 1000) for the HOURS (default 24) up to now, with
 * an offline hour in the middle and a corrected and an uncorrectable
 * stretch; and the hostile device of web_data.h. For bench/web_page.sh
 * and by hand:
 *   build/tests/web_fill /tmp/web.db && edgetel-aggregator --config ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgetel/store_open.h"
#include "web_data.h"

int main(int argc, char **argv)
{
    struct timespec ts;
    struct et_store *s;
    struct web_data d = { .device = "bench-device" };
    double hours = argc > 2 ? atof(argv[2]) : 24;
    char err[256];
    int64_t now, span;
    int rc;

    if (argc < 2 || argc > 5 || hours <= 0) {
        fprintf(stderr, "usage: web_fill STORE [HOURS [INTERVAL_MS [METRICS]]]\n");
        return 2;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (int64_t)ts.tv_sec * 1000;
    span = (int64_t)(hours * 3600 * 1000);
    d.interval_ms = argc > 3 ? atoll(argv[3]) : 1000;
    d.metrics = argc > 4 ? atoi(argv[4]) : 3;
    d.from_ms = now - span;
    d.to_ms = now;
    d.gap_from_ms = d.from_ms + span / 2;
    d.gap_to_ms = d.gap_from_ms + span / 24;
    d.corrected_from_ms = d.from_ms + span / 8;
    d.corrected_to_ms = d.corrected_from_ms + span / 48;
    d.uncorrectable_from_ms = d.from_ms + span * 3 / 4;
    d.uncorrectable_to_ms = d.uncorrectable_from_ms + span / 96;
    d.outbox_batches = 3;
    d.now_ms = now;
    if (d.interval_ms <= 0 || d.metrics <= 0) {
        fprintf(stderr, "web_fill: INTERVAL_MS and METRICS must be positive\n");
        return 2;
    }
    rc = et_store_open(&s, "sqlite", argv[1], 0, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "web_fill: %s: %s\n", argv[1], err);
        return 1;
    }
    rc = web_data_fill(et_store_writer(s), &d);
    if (rc == 0)
        rc = web_data_hostile(et_store_writer(s), now, true);
    et_store_close(s);
    if (rc < 0) {
        fprintf(stderr, "web_fill: writing %s failed: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    printf("web_fill: %s: bench-device, %d metrics every %lld ms for %.1f h\n", argv[1],
           d.metrics, (long long)d.interval_ms, hours);
    return 0;
}
