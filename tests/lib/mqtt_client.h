/*
 * Clients of the MQTT seam for tests against a real mosquitto (broker.h):
 * every event a client's handler sees is recorded, and every wait is
 * bounded (ET_TEST_WAIT_MS) and driven by et_mqtt_fd() + poll(), the way
 * the agent's loop drives it. Failures are cmocka assertions.
 */
#ifndef EDGETEL_TEST_MQTT_CLIENT_H
#define EDGETEL_TEST_MQTT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "proc.h"   /* et_test_now_ms */
#include "edgetel/mqtt.h"
#include "proc.h"

#define ET_TEST_WAIT_MS 15000
#define ET_TEST_MAX_RECORDS 256

/* One event as a client's handler saw it. */
struct et_test_record {
    enum et_mqtt_event_type type;
    char topic[128];
    unsigned char payload[2048];     /* an issued CertReply (two certificates) fits */
    size_t len;
    int token;
    char reason[512];
    int64_t at_ms;              /* when the handler ran, CLOCK_MONOTONIC */
};

/* One client and everything its handler has seen. */
struct et_test_client {
    const char *name;
    struct et_mqtt *mqtt;
    struct et_test_record rec[ET_TEST_MAX_RECORDS];
    size_t n;
};

struct et_test_mqtt {
    struct et_test_broker *broker;
    struct et_test_client agg;          /* identity "aggregator" */
    struct et_test_client dev1;
    struct et_test_client dev2;
};

/* A fixture: a broker for "dev-1" and "dev-2" (none with _no_broker), clients closed at teardown. */
int et_test_mqtt_setup(void **state);
int et_test_mqtt_setup_no_broker(void **state);
int et_test_mqtt_teardown(void **state);

const char *et_test_event_name(enum et_mqtt_event_type t);

/* The handler every client uses (ctx is its struct et_test_client). */
void et_test_on_event(void *ctx, const struct et_mqtt_event *ev);

/* Create c on the Paho transport: the broker's identity, or override's cfg when not NULL. */
void et_test_client_open(struct et_test_mqtt *f, struct et_test_client *c, const char *name,
                         const char *identity, const struct et_mqtt_cfg *override);

/* Connect agg and dev1 with the given subscriptions made before start. */
void et_test_connect_pair(struct et_test_mqtt *f, const char *agg_filter, const char *dev_filter);

/* Poll every client's descriptor once (up to timeout_ms) and dispatch. */
void et_test_pump(struct et_test_client *const *cs, size_t n, int timeout_ms);

/* Index of the first record of c at or after from matching, or -1 (topic NULL, token 0: any). */
int et_test_find(const struct et_test_client *c, size_t from, enum et_mqtt_event_type type,
                 const char *topic, int token);

size_t et_test_count(const struct et_test_client *c, size_t from, enum et_mqtt_event_type type,
                     const char *topic);

/* Wait (bounded) until target has a record matching, pumping all clients. */
const struct et_test_record *et_test_wait_for(struct et_test_client *const *cs, size_t n,
                                              struct et_test_client *target, size_t from,
                                              enum et_mqtt_event_type type, const char *topic,
                                              int token);

#endif
