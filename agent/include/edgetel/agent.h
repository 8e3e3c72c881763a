/*
 * The agent: collectors on a schedule, batches into the outbox, the outbox
 * over MQTT to the aggregator, rows deleted on the aggregator's Ack.
 *
 * All agent state hangs off struct et_agent: two agents can run in one
 * process (tests do). Everything runs on the thread that calls
 * et_agent_run(); the MQTT seam hands its events to that thread.
 */
#ifndef EDGETEL_AGENT_H
#define EDGETEL_AGENT_H

#include "edgetel/config.h"
#include "edgetel/mqtt.h"

struct et_agent;

/**
 * Make the data directory, settle which config runs (cfg, the local file,
 * or the last pushed config committed over it: DATA_DIR/config.db), open
 * the outbox, probe the collectors and set up the uplink (not connected
 * yet) on transport: et_mqtt_paho() in the program, a fake broker in
 * tests. cfg and transport are borrowed and must outlive the agent. On
 * failure err says what and why.
 */
int et_agent_create(struct et_agent **out, const struct et_config *cfg,
                    const struct et_mqtt_transport *transport, char *err, size_t errlen);

/**
 * Run until stop_fd becomes readable (a signalfd, a pipe). On the way out
 * the samples gathered so far are committed to the outbox and an offline
 * Status is published. Returns 0, or -errno on a fatal error.
 */
int et_agent_run(struct et_agent *a, int stop_fd);

/* et_agent_run() in parts, for tests that drive the loop with a fake clock. */

/** Start connecting. */
int et_agent_start(struct et_agent *a);

/**
 * One pass of the loop: wait up to max_wait_ms for an MQTT event, stop_fd,
 * or the next due job; then handle events, run due jobs and send what the
 * window allows. Returns 1 when stop_fd is readable, 0, or -errno.
 */
int et_agent_step(struct et_agent *a, int stop_fd, int max_wait_ms);

/**
 * Read the config file again at the next step (SIGHUP): the same checks,
 * and the same commit or revert, as a pushed config (agent/src/reconf.h).
 */
void et_agent_reload(struct et_agent *a);

/** Commit gathered samples, publish the offline Status, disconnect. */
void et_agent_stop(struct et_agent *a);

struct et_outbox_stats;
int et_agent_outbox_stats(struct et_agent *a, struct et_outbox_stats *st);

/**
 * One line on how the agent is doing, for the service manager's STATUS=
 * (`systemctl status edgetel-agent`): connected to the broker or not (and
 * why not), and the batches and samples its outbox holds.
 */
void et_agent_status_line(struct et_agent *a, char *buf, size_t size);

/** The agent's outbox, borrowed for the agent's life (tests, diagnostics). */
struct et_outbox *et_agent_outbox(struct et_agent *a);

void et_agent_destroy(struct et_agent *a);

#endif
