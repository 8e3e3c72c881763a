/*
 * edgetel-aggregator: takes telemetry from the broker, stores it, and
 * acknowledges it to the devices; relays the operator's signed configs to
 * the boards and records their reports. This file is the MQTT loop only:
 * what happens to each message, and when its Ack may go out, is the cloud
 * library's (ingest.h, config_relay.h); the config file is agg_config.h's.
 *
 * One thread: poll() on the MQTT seam's event descriptor and a signalfd.
 * With [http] enabled, libmicrohttpd's thread serves the web view beside
 * it over a read-only store handle of its own (http.h); this loop only
 * hands it a copy of the counters.
 * SIGINT/SIGTERM stop it cleanly: the message being handled is finished
 * (stored and acked), messages still queued are left to the devices to
 * send again, the MQTT session is closed and the store is closed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/agg_config.h"
#include "edgetel/ca.h"
#include "edgetel/config_relay.h"
#include "edgetel/ingest.h"
#include "edgetel/log.h"
#include "edgetel/mqtt.h"
#include "edgetel/store.h"
#include "edgetel/store_open.h"
#include "edgetel/version.h"
#include "edgetel/web.h"
#include "http.h"

#define PROG "edgetel-aggregator"
/* How long a clean stop waits for the broker to take the DISCONNECT. */
#define STOP_DISCONNECT_MS 2000
/* How often the relay looks for configs pushed since (config_relay.h). */
#define CONFIG_POLL_MS 1000
/* How often the store's upkeep runs (PostgreSQL: partitions made ahead,
 * old days dropped by retention); once at start too. */
#define STORE_MAINTAIN_MS (10 * 60 * 1000)

struct aggregator {
    struct et_agg_config cfg;
    struct et_store *store;
    struct et_ingest *ingest;
    struct et_config_relay *relay;
    struct et_mqtt *mqtt;
    int sigfd;
    bool stopping;
    char client_id[128];
    char sub_telemetry[ET_TOPIC_ROOT_MAX + 128];
    char sub_status[ET_TOPIC_ROOT_MAX + 32];
    char sub_report[ET_TOPIC_ROOT_MAX + 32];
    /* For the periodic summary. */
    struct et_ingest_stats last;
    struct et_config_relay_stats last_relay;
    uint64_t acks_sent, acks_unsent, acks_failed;
    int64_t next_stats_ms;
    int64_t next_poll_ms;
    int64_t next_maintain_ms;
    /* For the web view and /metrics: counted since start, never reset. */
    struct et_agg_http *http;
    struct et_web_health health;
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: " PROG " --config FILE\n"
            "       " PROG " --help | --version\n"
            "\n"
            "Takes edgetel telemetry from an MQTT 5 broker, stores each batch once\n"
            "(deduplicated by device and sequence number) and acknowledges it to the\n"
            "device after the store has committed it. Several instances may run\n"
            "against one broker and one store: they share the telemetry through the\n"
            "shared subscription $share/<share_group>/<topic_root>/v1/+/telemetry.\n"
            "It also sends the configs an operator queues with \"edgetelctl config push\"\n"
            "to the boards (retained on <topic_root>/v1/<device>/config, the bytes as\n"
            "signed) and records what the boards report on .../config/report.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE  the config file (INI), described below\n"
            "  -h, --help         this text\n"
            "  -V, --version      print the version\n"
            "\n"
            "Config file keys, with their defaults (';' marks a default):\n\n");
    et_agg_config_print_help(out);
}

/* A signal came: stop after the current message. Never blocks. */
static bool stop_requested(struct aggregator *a)
{
    struct signalfd_siginfo si;

    if (a->stopping)
        return true;
    if (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        et_info("main", "%s received: stopping", strsignal((int)si.ssi_signo));
        a->stopping = true;
    }
    return a->stopping;
}

/* Publish an Ack now, or when et_ingest_group_end() says its group is durable. */
static void publish_ack(void *ctx, const struct et_ingest_reply *r)
{
    struct aggregator *a = ctx;
    int rc = et_mqtt_publish(a->mqtt, r->ack_topic, r->ack, r->ack_len, 1, false);

    if (rc > 0) {
        a->acks_sent++;
        a->health.acks_sent++;
        return;
    }
    /* The batch is stored; the device sends it again when no ack comes
     * and gets one then, as a duplicate. */
    a->acks_unsent++;
    a->health.acks_unsent++;
    et_warn("main", "device %s: ack through %" PRIu64 " not published: %s (the device will "
            "send seq %" PRIu64 " again and be acked then)", r->device, r->acked_through,
            rc == -ENOTCONN ? "not connected to the broker"
            : rc == -EAGAIN ? "too many acks in flight (raise [mqtt] max_inflight?)"
            : strerror(-rc), r->seq);
}

/* The relay's publish (config_relay.h): the signed bytes, retained, QoS 1. */
static int publish_config(void *ctx, const char *topic, const uint8_t *payload, size_t len)
{
    struct aggregator *a = ctx;

    return et_mqtt_publish(a->mqtt, topic, payload, len, 1, true);
}

static void on_message(struct aggregator *a, const struct et_mqtt_event *ev)
{
    struct et_ingest_reply reply;
    enum et_config_relay_kind kind;
    int64_t now = wall_ms();
    int rc;

    /* A board's config report; its writes join the open group, if any. */
    rc = et_config_relay_message(a->relay, ev->topic, ev->payload, ev->len, now, &kind);
    if (rc < 0 || kind != ET_CONFIG_RELAY_IGNORED)
        return;   /* dealt with, or logged by the relay */
    rc = et_ingest_message(a->ingest, ev->topic, ev->payload, ev->len, now, &reply);
    if (rc < 0)
        return;   /* logged by ingest; no ack, so the device sends it again */
    if (reply.ack)
        publish_ack(a, &reply);   /* not in a group: committed already */
    /* A board that connects (its birth Status) behind its desired config
     * is sent it now. */
    if (reply.kind == ET_INGEST_STATUS && reply.config_status)
        et_config_relay_status(a->relay, reply.device, reply.config_version, now);
}

static void on_event(void *ctx, const struct et_mqtt_event *ev)
{
    struct aggregator *a = ctx;

    switch (ev->type) {
    case ET_MQTT_CONNECTED:
        a->health.mqtt_connected = true;
        et_info("mqtt", "connected to %s:%d; subscribed to %s, %s and %s", a->cfg.mqtt.host,
                a->cfg.mqtt.port, a->sub_telemetry, a->sub_status, a->sub_report);
        break;
    case ET_MQTT_DISCONNECTED:
        a->health.mqtt_connected = false;
        et_warn("mqtt", "broker %s:%d: %s (reconnecting)", a->cfg.mqtt.host,
                a->cfg.mqtt.port, ev->reason ? ev->reason : "disconnected");
        break;
    case ET_MQTT_MESSAGE:
        a->health.messages++;
        /* Finish the message in hand, take no new one after a signal. */
        if (!stop_requested(a))
            on_message(a, ev);
        break;
    case ET_MQTT_PUBLISHED:
        break;
    case ET_MQTT_PUBLISH_FAILED:
        a->acks_failed++;
        a->health.publish_failed++;
        et_debug("mqtt", "publish %d (an ack or a config) failed: %s", ev->token,
                 ev->reason ? ev->reason : "unknown reason");
        break;
    }
}

static void log_stats(struct aggregator *a, const char *when)
{
    const struct et_ingest_stats *s = et_ingest_stats(a->ingest);
    const struct et_config_relay_stats *c = et_config_relay_stats(a->relay);

    et_info("main", "%s: %" PRIu64 " batches, %" PRIu64 " samples stored (%" PRIu64
            " re-timed), %" PRIu64 " duplicates, %" PRIu64 " malformed, %" PRIu64
            " quarantined, %" PRIu64 " over budget, %" PRIu64 " statuses, %" PRIu64
            " new devices, %" PRIu64 " store errors; acks: %" PRIu64 " sent, %" PRIu64
            " not sent, %" PRIu64 " failed; configs: %" PRIu64 " sent, %" PRIu64
            " not sent, %" PRIu64 " reports, %" PRIu64 " refused",
            when, s->batches - a->last.batches, s->samples - a->last.samples,
            s->retimed - a->last.retimed, s->duplicates - a->last.duplicates,
            s->malformed - a->last.malformed, s->quarantined - a->last.quarantined,
            s->over_budget - a->last.over_budget,
            s->statuses - a->last.statuses, s->new_devices - a->last.new_devices,
            s->store_errors - a->last.store_errors, a->acks_sent, a->acks_unsent,
            a->acks_failed, c->sent - a->last_relay.sent, c->not_sent - a->last_relay.not_sent,
            c->reports - a->last_relay.reports, c->refused - a->last_relay.refused);
    a->last = *s;
    a->last_relay = *c;
    a->acks_sent = a->acks_unsent = a->acks_failed = 0;
}

static int block_signals(int *fd)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Blocked before any thread exists, so Paho's threads inherit it and
     * the signals reach only the signalfd. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -errno;
    *fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return *fd < 0 ? -errno : 0;
}

static int setup_mqtt(struct aggregator *a)
{
    const struct et_agg_config *c = &a->cfg;
    struct et_mqtt_cfg mc;
    char host[64];
    int rc;

    if (!c->mqtt.insecure && c->mqtt.cert_file) {
        /* The broker binds the client id to the certificate: use the name it will use. */
        char why[400];

        rc = et_ca_cert_identity(c->mqtt.cert_file, a->client_id, sizeof(a->client_id), NULL,
                                 why, sizeof(why));
        if (rc < 0) {
            et_error("mqtt", "[mqtt] cert: %s", why);
            return rc;
        }
        if (strncmp(a->client_id, ET_CA_AGGREGATOR_PREFIX,
                    strlen(ET_CA_AGGREGATOR_PREFIX)) != 0) {
            et_error("mqtt", "[mqtt] cert %s is for \"%s\", not an aggregator instance "
                     "(" ET_CA_AGGREGATOR_PREFIX "<instance>): the broker would give it a "
                     "device's rights only; make one with edgetelctl ca issue aggregator "
                     "INSTANCE", c->mqtt.cert_file, a->client_id);
            return -EINVAL;
        }
    } else if (c->instance_id) {
        snprintf(a->client_id, sizeof(a->client_id), "edgetel-aggregator-%s", c->instance_id);
    } else {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "unknown");
        host[sizeof(host) - 1] = '\0';
        snprintf(a->client_id, sizeof(a->client_id), "edgetel-aggregator-%s-%ld", host,
                 (long)getpid());
    }
    et_mqtt_cfg_from_settings(&c->mqtt, a->client_id, (int)c->max_inflight, &mc);
    mc.max_packet = (size_t)c->max_packet;
    snprintf(a->sub_telemetry, sizeof(a->sub_telemetry), "$share/%s/%s/v1/+/telemetry",
             c->share_group, c->topic_root);
    /*
     * Status goes to every instance, not through the share: it is retained,
     * and a broker sends retained messages to plain subscriptions only
     * (MQTT 5 §4.8.2; mosquitto skips $share/ filters when it queues
     * retained messages). Through the share, an aggregator started after
     * its devices would never learn that they are online. Recording a
     * status is idempotent, so N instances recording it is harmless.
     */
    snprintf(a->sub_status, sizeof(a->sub_status), "%s/v1/+/status", c->topic_root);
    /* Config reports are retained too, and for the same reason plain: a
     * starting aggregator learns the outcomes it missed. Recording one is
     * idempotent, and only the instance that records it first says it. */
    snprintf(a->sub_report, sizeof(a->sub_report), "%s/v1/+/config/report", c->topic_root);

    if (c->mqtt.insecure)
        et_warn("mqtt", "insecure = true: plain TCP to %s:%d; anyone on the path can read "
                "telemetry and forge acks. Use mutual TLS outside a lab.", c->mqtt.host,
                c->mqtt.port);
    rc = et_mqtt_create(&a->mqtt, et_mqtt_paho(), &mc);
    if (rc < 0) {
        et_error("mqtt", "cannot set up the MQTT client for %s:%d: %s", c->mqtt.host, c->mqtt.port,
                 strerror(-rc));
        return rc;
    }
    rc = et_mqtt_subscribe(a->mqtt, a->sub_telemetry, 1);
    if (rc == 0)
        rc = et_mqtt_subscribe(a->mqtt, a->sub_status, 1);
    if (rc == 0)
        rc = et_mqtt_subscribe(a->mqtt, a->sub_report, 1);
    if (rc == 0)
        rc = et_mqtt_start(a->mqtt);
    if (rc < 0)
        et_error("mqtt", "cannot start the MQTT client: %s", strerror(-rc));
    return rc;
}

static int run(struct aggregator *a)
{
    struct pollfd pfd[2] = {
        { .fd = a->sigfd, .events = POLLIN },
        { .fd = et_mqtt_fd(a->mqtt), .events = POLLIN },
    };
    int64_t now, due;
    int timeout, n;

    a->next_stats_ms = mono_ms() + a->cfg.stats_interval_ms;
    a->next_poll_ms = mono_ms();
    a->next_maintain_ms = mono_ms();
    while (!stop_requested(a)) {
        now = mono_ms();
        if (now >= a->next_stats_ms) {
            log_stats(a, "last interval");
            a->next_stats_ms = now + a->cfg.stats_interval_ms;
        }
        if (now >= a->next_poll_ms) {
            /* Outside any group: its reads see what edgetelctl committed. */
            et_config_relay_poll(a->relay, wall_ms());
            a->next_poll_ms = now + CONFIG_POLL_MS;
        }
        if (now >= a->next_maintain_ms) {
            char err[256];

            /* Outside any group; a failure is said and tried again next time. */
            if (et_store_maintain(a->store, wall_ms(), a->cfg.store_retention_ms, err,
                                  sizeof(err)) < 0)
                et_warn("store", "upkeep: %s (tried again in %d min)", err,
                        STORE_MAINTAIN_MS / 60000);
            a->next_maintain_ms = now + STORE_MAINTAIN_MS;
        }
        timeout = (int)((a->next_stats_ms < a->next_poll_ms ? a->next_stats_ms
                                                             : a->next_poll_ms) - now);
        /* The malformed-message log's minute lines, when one is due first. */
        due = et_ingest_tick(a->ingest, wall_ms());
        if (due < timeout)
            timeout = (int)due;
        n = poll(pfd, 2, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            et_error("main", "poll: %s", strerror(errno));
            return -errno;
        }
        if (pfd[1].revents & POLLIN) {
            /*
             * Group commit: every message queued now shares one durable
             * commit (one fsync instead of one per batch), and their acks
             * go out after it. If the group cannot begin, each message
             * commits on its own as before.
             */
            bool grouped = et_ingest_group_begin(a->ingest) == 0;

            et_mqtt_dispatch(a->mqtt, on_event, a);
            if (grouped) {
                size_t held = 0;
                double t0 = mono_s();
                int rc = et_ingest_group_end(a->ingest, publish_ack, a, &held);

                et_web_health_commit(&a->health, mono_s() - t0);

                /* A failing store is said by ingest, once, not once a burst. */
                if (rc && held)
                    et_debug("main", "store commit of %zu batches failed (%s): not "
                             "acknowledged", held,
                             rc == -ECANCELED ? "a write failed" : strerror(-rc));
            }
        }
        a->health.ingest = *et_ingest_stats(a->ingest);
        a->health.relay = *et_config_relay_stats(a->relay);
        et_agg_http_publish(a->http, &a->health);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct aggregator a = { .sigfd = -1 };
    const char *config = NULL;
    char err[512], store_name[512];
    int opt, rc, status = 1;

    et_log_init(PROG, ET_LOG_INFO);
    /* journald stamps each line itself; a file or a terminal needs ours. */
    et_log_set_timestamps(!et_log_under_journald());
    while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf(PROG " %s\n", ET_VERSION);
            return 0;
        default:
            fprintf(stderr, PROG ": try --help\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument \"%s\" (try --help)\n", argv[optind]);
        return 2;
    }
    if (!config) {
        fprintf(stderr, PROG ": no config file: use --config FILE (try --help)\n");
        return 2;
    }
    rc = et_agg_config_load(config, &a.cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, PROG ": config: %s\n", err);
        return 2;
    }
    et_log_init(PROG, a.cfg.log_level);
    rc = et_mqtt_settings_check_files(&a.cfg.mqtt, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        et_agg_config_free(&a.cfg);
        return 2;
    }

    /* A broker that drops the TLS connection must cost a reconnect, not
     * the process (Paho ignores SIGPIPE too; say so here, not by accident). */
    signal(SIGPIPE, SIG_IGN);
    rc = block_signals(&a.sigfd);
    if (rc < 0) {
        et_error("main", "cannot set up signal handling: %s", strerror(-rc));
        goto out;
    }
    /* A connection string may hold a password: never logged. */
    et_store_describe(et_agg_store_target(&a.cfg), store_name, sizeof(store_name));
    rc = et_store_open(&a.store, et_agg_store_types[a.cfg.store_type],
                       et_agg_store_target(&a.cfg), 0, err, sizeof(err));
    if (rc == -EUCLEAN) {
        et_error("store", "%s", err);   /* names the file and what to do */
        goto out;
    }
    if (rc < 0) {
        et_error("store", "%s store %s: %s", et_agg_store_types[a.cfg.store_type],
                 store_name, err);
        goto out;
    }
    rc = et_ingest_create(&a.ingest, et_store_writer(a.store), a.cfg.topic_root);
    if (rc == 0)
        rc = et_ingest_set_budget(a.ingest, &a.cfg.budget);
    if (rc < 0) {
        et_error("main", "cannot set up ingest: %s", strerror(-rc));
        goto out;
    }
    et_ingest_set_config(a.ingest, et_store_config(a.store));
    rc = et_config_relay_create(&a.relay, et_store_config(a.store), a.cfg.topic_root,
                                publish_config, &a);
    if (rc < 0) {
        et_error("main", "cannot set up the config relay: %s", strerror(-rc));
        goto out;
    }
    a.health.started_ms = wall_ms();
    rc = et_agg_http_start(&a.http, &a.cfg);
    if (rc < 0)
        goto out;
    rc = setup_mqtt(&a);
    if (rc < 0)
        goto out;
    et_info("main", PROG " %s started: instance %s, store %s %s, broker %s:%d (%s), "
            "topic root %s, share group %s", ET_VERSION, a.client_id,
            et_agg_store_types[a.cfg.store_type], store_name, a.cfg.mqtt.host,
            a.cfg.mqtt.port,
            a.cfg.mqtt.insecure ? "plain TCP" : "mutual TLS", a.cfg.topic_root, a.cfg.share_group);

    if (run(&a) == 0)
        status = 0;
    log_stats(&a, "since the last summary");
out:
    et_agg_http_stop(a.http);
    et_mqtt_destroy(a.mqtt, STOP_DISCONNECT_MS);
    et_config_relay_destroy(a.relay);
    et_ingest_destroy(a.ingest);
    et_store_close(a.store);
    if (a.sigfd >= 0)
        close(a.sigfd);
    et_agg_config_free(&a.cfg);
    if (status == 0)
        et_info("main", "stopped");
    return status;
}
