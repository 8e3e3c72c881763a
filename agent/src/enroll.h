/*
 * Enrollment and renewal: how a board with its own identity (identity.h)
 * gets a certificate from the cloud issuer (edgetelctl ca serve) over
 * MQTT, and changes to it without losing data.
 *
 * Enrollment by claim: with no usable certificate and a claim in
 * DATA_DIR/identity, a second MQTT connection of its own (client
 * claim-<device>, the claim's certificate) publishes a CertRequest on
 * ROOT/v1/claim-<device>/cert/csr: a CSR for a key made here, signed with
 * the claim's key. The answer comes on ROOT/v1/claim-<device>/cert/issued.
 * Issued: the certificate is checked (this device, this key, the fleet
 * CA), becomes the identity, the claim is deleted, the connection closed,
 * and the agent makes its uplink with the new files. Meanwhile it collects
 * into the outbox as always.
 *
 * Renewal: once the uplink is connected and the certificate reaches
 * renew_at ([mqtt], a share of its lifetime or a time before its end), a
 * new key and CSR go out over the uplink on ROOT/v1/<device>/cert/csr. The
 * certificate that comes back on .../cert/issued is put on trial: the
 * uplink is made anew with it; when it has connected and an Ack came back
 * over it, the new generation is committed and the old key and
 * certificate deleted. When that does not happen within the trial's
 * deadline (two minutes, or half the old certificate's remaining life,
 * at least 10 s), the new one is dropped, the uplink goes back to the old
 * one, and renewal is tried again later. Nothing in the outbox depends on
 * which certificate carried it: batches sent over the trial's connection
 * and not acknowledged go again, as after any reconnect.
 *
 * A request with no answer is sent again after 5 s, then after twice as
 * long each time, up to a minute (the broker drops a request while no
 * issuer has subscribed; the issuer answers the same key again, and a
 * claim enrolls one key, whichever answer arrives).
 * A refusal is logged with the issuer's reason (the same reason again at
 * most every 10 minutes) and asked again after the issuer's retry time, or
 * a backoff: 30 s doubling to 1 h for a claim, a quarter of the time the
 * certificate has left (2 s to 1 h) for a renewal.
 *
 * A board whose certificate ended while it was off (the clock synced says
 * so) says so at start, with how to re-provision it, and enrolls again
 * when it has a claim; one without certificate or claim looks for a claim
 * every 30 s and collects meanwhile.
 *
 * Threads: none; all calls on the agent's thread. The claim connection's
 * events come through et_enroll_fd() and et_enroll_dispatch().
 */
#ifndef EDGETEL_ENROLL_H
#define EDGETEL_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "uplink.h"
#include "edgetel/config.h"
#include "edgetel/mqtt.h"

/* What enrollment asks of the agent. */
struct et_enroll_hooks {
    /*
     * Make the uplink anew with the identity's files (et_identity_cert,
     * et_identity_key); why goes in the old uplink's offline Status.
     */
    void (*remake_uplink)(void *ctx, const char *why);
    /* The uplink now, or NULL. */
    struct et_uplink *(*uplink)(void *ctx);
};

struct et_enroll;

/**
 * Open the identity of cfg's device (DATA_DIR/identity, trusting
 * cfg->mqtt.ca_file). transport carries the claim connection; hooks and
 * ctx are the agent's. All borrowed for the life of *out, cfg until the
 * next et_enroll_step() names another.
 */
int et_enroll_create(struct et_enroll **out, const struct et_config *cfg,
                     const struct et_mqtt_transport *transport,
                     const struct et_enroll_hooks *hooks, void *ctx, char *err, size_t errlen);

/** Close the claim connection if one is open, and free; NULL is a no-op. */
void et_enroll_destroy(struct et_enroll *e);

/** The identity: the files the uplink connects with. */
const struct et_identity *et_enroll_identity(const struct et_enroll *e);

/** Readable while the claim connection has events; -1 without one. */
int et_enroll_fd(const struct et_enroll *e);

/** Handle the claim connection's events. */
void et_enroll_dispatch(struct et_enroll *e);

/** An answer that came over the uplink (et_uplink_on_cert). */
void et_enroll_on_reply(struct et_enroll *e, const uint8_t *buf, size_t len);

/**
 * One pass: cfg runs now; may_connect is the clock gate's word (clock.h);
 * wall_s and synced the wall clock and whether it can be believed.
 */
void et_enroll_step(struct et_enroll *e, const struct et_config *cfg, int64_t now_ms,
                    int64_t wall_s, bool synced, bool may_connect);

#endif
