/*
 * What edgetelctl prints from a store: the fleet table, metric lists,
 * query results as text or CSV, and tail lines. A library of edgetelctl so
 * the tests can check the exact output against a store they build.
 *
 * All functions return 0 or -errno (a store error, or -EIO when writing
 * to out failed).
 */
#ifndef EDGETEL_REPORT_H
#define EDGETEL_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "edgetel/store_config.h"
#include "edgetel/store_reader.h"

/**
 * One line per device: id, online, last seen (ISO 8601 UTC and age at
 * now_ms), samples stored, its current stream (the first 8 hex digits,
 * "legacy" for agents from before streams, and since when: "3f9a1c2e since
 * 2026-11-22T16:05:30Z"; "-" before any), that stream's acked seq, outbox
 * and dropped (from the device's last Status; "-" before any). Prints "no
 * devices yet" when the store has none.
 */
int et_report_devices(struct et_store_reader *r, FILE *out, int64_t now_ms);

/**
 * Quarantined batches (store.h), oldest first, of every device or of
 * device when not NULL: when kept (UTC), device, stream (8 hex digits or
 * "legacy"), seq, samples, bytes and the reason. Prints "no quarantined
 * batches" when there are none.
 */
int et_report_quarantine(struct et_store_reader *r, FILE *out, const char *device);

/**
 * Metrics with unit, sample count, first and last sample time; of one
 * device, or of every device (with a device column) when device is NULL.
 */
int et_report_metrics(struct et_store_reader *r, FILE *out, const char *device);

/**
 * The samples q selects, oldest first: as text ("time value unit quality")
 * or as CSV with a header line
 * "time,ts_ms,device,metric,value,unit,time_quality,seq".
 * *rows (may be NULL) gets the number of samples written.
 */
int et_report_query(struct et_store_reader *r, FILE *out, const struct et_store_query *q, bool csv,
                    uint64_t *rows);

/** One tail line: "time device metric value unit". */
int et_report_tail_line(FILE *out, const struct et_store_sample *smp);

/**
 * Check that device and (when not NULL) metric exist, so an empty result
 * can be told from a typo.
 * @return 0, or -ENOENT with why set, e.g.
 *         "device pi-7 has no metric \"cpu.usge\" (edgetelctl metrics --device pi-7 lists them)".
 */
int et_report_check(struct et_store_reader *r, const char *device, const char *metric, char *why,
                    size_t whylen);

/**
 * Pushed configs, one line per device (every device heard from, named by
 * a desired config, or that sent a report; or only device): its groups,
 * its desired config (the newest for it or one of its groups: "v7 (group
 * lab)"), the version it runs ("file" for its local file only, "?" when
 * unknown), a state ("up to date"; "pending": the aggregator sends it;
 * "refused": the board rejected or reverted that very version, which is
 * not sent again), its latest report ("committed v7"), the reason, the
 * device's time of it (with "unsynced clock" when the board said so) and
 * when it was received (ISO 8601 UTC and age at now_ms). As CSV with a
 * header line when csv. With device, and not csv, the device's last
 * reports follow, newest first. Prints "no devices yet" when there are none.
 * @return 0; -ENOENT when device is given and the store has nothing of
 *         it; -EPROTO when the store predates pushed configs; -errno.
 */
int et_report_config_status(struct et_store_config *sc, FILE *out, const char *device, bool csv,
                            int64_t now_ms);

/** A value as text: numbers round-trip, booleans true/false, strings as they are. */
int et_report_value(const struct et_store_value *v, char *buf, size_t len);

/** The name of a time quality: "synced", "unsynced", "corrected", "uncorrectable", "-". */
const char *et_report_quality(int time_quality);

#endif
