/*
 * Inside the agent (edgetel/agent.h): its state, shared by its life cycle
 * and loop (agent.c) and the config changes it applies (agent_reconf.c).
 */
#ifndef EDGETEL_AGENT_INTERNAL_H
#define EDGETEL_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/agent.h"
#include "batcher.h"
#include "clock.h"
#include "collect.h"
#include "enroll.h"
#include "health.h"
#include "reconf.h"
#include "uplink.h"
#include "edgetel/sched.h"

/* Collectors remembered as down across a change (more are blamed on it). */
#define DOWN_MAX 32

/* What a collector's scheduled job needs. */
struct collector_job {
    struct et_agent *agent;
    struct et_collector *collector;
};

struct et_agent {
    const struct et_config *cfg;   /* the config running (et_reconf_running) */
    struct et_reconf *reconf;      /* the local file, pushes, trials (reconf.h) */
    const struct et_mqtt_transport *transport;
    char *device_id;               /* never changes while the agent runs */
    struct et_outbox *outbox;
    struct et_batcher *batcher;
    struct et_uplink *uplink;   /* NULL without [mqtt] host, or with no certificate yet */
    struct et_enroll *enroll;   /* the board's own identity (enroll.h); NULL: the config's files */
    bool enroll_gate;           /* the clock gate let enrollment begin */
    char connect_note[160];     /* why connecting was late, for the first birth Status */
    struct et_sched *sched;
    struct et_clock clock;
    struct et_health health;
    struct et_collector *collectors;
    struct collector_job *jobs;
    size_t n_collectors;
    uint8_t boot_id[ET_BOOT_ID_LEN];

    /* A push taken from the uplink, handled after its dispatch returns. */
    uint8_t *incoming;
    size_t incoming_len;
    bool reload_asked;             /* SIGHUP */
    uint64_t acks_at_apply;        /* the uplink's Acks when a trial's config was applied */
    uint64_t connects_seen;        /* the uplink's connects when reports were last re-queued */
    char down_before[DOWN_MAX][80];    /* "name/type" of collectors not running before a change */
    size_t n_down_before;

    /* The round being collected: every sample of it gets this time. */
    int64_t round_mono_ms;
    enum et_time_quality round_tq;
    const char *round_tags;   /* the collector's tags, NULL for the agent's own */
};

/* agent.c: the parts a config change makes anew. */
int agent_make_collectors(struct et_agent *a, int64_t now_ms, char *err, size_t errlen);
int agent_add_jobs(struct et_agent *a, int64_t now_ms);
int agent_make_uplink(struct et_agent *a, char *err, size_t errlen);

/* agent_reconf.c: collectors and jobs gone (the scheduler too). */
void agent_drop_collectors(struct et_agent *a);

/*
 * agent_reconf.c: once per pass, pushes and reloads taken, a trial ended
 * by commit or revert, and reports handed to the uplink. 0 or -errno
 * (the last good config does not apply again: the agent stops).
 */
int agent_config_step(struct et_agent *a, int64_t now_ms);

#endif
