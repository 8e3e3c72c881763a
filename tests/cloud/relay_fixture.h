/*
 * The config relay's test fixture (tests/cloud/test_config_*.c): a real
 * SQLite store in a temporary directory (cloud_test.h) whose ingest
 * records a Status's config fields, a relay on it whose MQTT client is a
 * list of what it published, and the messages a board sends.
 */
#ifndef EDGETEL_TESTS_RELAY_FIXTURE_H
#define EDGETEL_TESTS_RELAY_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "cloud_test.h"
#include "edgetel/config_relay.h"
#include "edgetel/store_config.h"

#define RELAY_SENT_MAX 256

/* One publish the relay made. */
struct relay_sent {
    char topic[192];
    char payload[64];         /* the test's configs are short text */
    size_t len;
};

struct relay_fixture {
    struct cloud_fixture *f;
    struct et_store_config *sc;
    struct et_config_relay *relay;   /* on sc, root CLOUD_ROOT, publishing into sent */
    struct relay_sent sent[RELAY_SENT_MAX];
    size_t n_sent;
    int take;                 /* publishes the client still takes (-EAGAIN after); -1: all */
};

/** cmocka setup and teardown with a relay_fixture in *state (log captured at info). */
int relay_fixture_setup(void **state);
int relay_fixture_teardown(void **state);

/** The fixture's publish function (et_config_publish_fn) with the fixture as ctx. */
int relay_fixture_publish(void *ctx, const char *topic, const uint8_t *payload, size_t len);

/**
 * Push a desired config as edgetelctl does (the fleet's next version, in
 * one write transaction) whose bytes are the text "signed config vN";
 * returns N.
 */
uint64_t relay_push(struct relay_fixture *rf, enum et_config_target kind, const char *target);

/**
 * An online Status of device running running and naming groups (n of
 * them) through ingest, then the relay's rule for it, as the aggregator
 * does, at now_ms.
 */
void relay_status(struct relay_fixture *rf, const char *device, uint64_t running,
                  const char *const *groups, size_t n, int64_t now_ms);

/** The relay's poll at now_ms; asserts it returned 0. */
void relay_poll(struct relay_fixture *rf, int64_t now_ms);

/**
 * How many configs were published to device's config topic since the last
 * relay_sent_clear(); *version (may be NULL) gets the last one's version.
 */
size_t relay_sent_to(const struct relay_fixture *rf, const char *device, uint64_t *version);

void relay_sent_clear(struct relay_fixture *rf);

/** A ConfigReport as a board encodes it (malloc'd, *len bytes). */
uint8_t *relay_pack_report(const char *device, uint64_t version, int result, const char *reason,
                           uint64_t running, size_t *len);

/**
 * Hand a report for device (encoded by relay_pack_report) to the relay on
 * its report topic at now_ms; returns what the relay did.
 */
enum et_config_relay_kind relay_report(struct et_config_relay *relay, const char *device,
                                       uint64_t version, int result, const char *reason,
                                       uint64_t running, int64_t now_ms);

/** A device's row in the config part (copied strings valid until the next call). */
struct et_store_device_config relay_device(struct et_store_config *sc, const char *device);

#endif
