/*
 * edgetelctl ca serve: the cloud issuer. It holds the fleet CA's issuing
 * key, takes the devices' CSRs from the broker and answers each with a
 * certificate or a refusal (the rules: issuer.h). One thread: poll() on
 * the MQTT seam's descriptor and a signalfd; SIGINT and SIGTERM stop it.
 *
 * Its config file (INI, the shared loader):
 *   [issuer]  device_lifetime [90d], share_group [edgetel-issuer], log_level [info]
 *   [mqtt]    host (required), port [8883], ca, cert, key (an issuer-<instance>
 *             certificate: edgetelctl ca issue issuer INSTANCE), insecure [false],
 *             topic_root [edgetel], keepalive [10s], backoff_min [250ms],
 *             backoff_max [5s], backoff_max_refused [2m]
 */
#include "ca_serve.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/ca.h"
#include "edgetel/cert_wire.h"
#include "edgetel/codec.h"
#include "edgetel/ini.h"
#include "edgetel/log.h"
#include "edgetel/mqtt.h"
#include "edgetel/text.h"
#include "issuer.h"

#define PROG "edgetelctl ca serve"
#define MS(s) ((int64_t)(s) * 1000)
#define CONFIG_MAX_BYTES (64 * 1024)
#define STATS_EVERY_MS (60 * 1000)
#define STOP_DISCONNECT_MS 2000

struct serve_config {
    char *path;
    int64_t lifetime_ms;
    char *share_group;
    enum et_log_level log_level;
    struct et_mqtt_settings mqtt;
    char *topic_root;
};

static const struct et_ini_key serve_keys[] = {
    { "issuer", { "device_lifetime", ET_KEY_DURATION,
      ET_KEY_FIELD(struct serve_config, lifetime_ms), "90d", MS(60), MS(10LL * 366 * 86400),
      .help = "how long the device certificates it signs last; a device renews at two "
              "thirds of it" } },
    { "issuer", { "share_group", ET_KEY_STRING, ET_KEY_FIELD(struct serve_config, share_group),
      "edgetel-issuer", .help = "shared subscription group: issuers of one CA split the "
                                "requests between them" } },
    { "issuer", { "log_level", ET_KEY_LOG_LEVEL, ET_KEY_FIELD(struct serve_config, log_level),
      "info", .help = "error, warn, info or debug" } },
    { "mqtt", { "host", ET_KEY_STRING, ET_KEY_FIELD(struct serve_config, mqtt.host), NULL,
      .help = "the broker's host name or address (required)" } },
    { "mqtt", { "port", ET_KEY_INT, ET_KEY_FIELD(struct serve_config, mqtt.port), "8883", 1,
      65535, .help = "the broker's port" } },
    { "mqtt", { "ca", ET_KEY_STRING, ET_KEY_FIELD(struct serve_config, mqtt.ca_file), NULL,
      .help = "PEM file of the CA that signed the broker's certificate" } },
    { "mqtt", { "cert", ET_KEY_STRING, ET_KEY_FIELD(struct serve_config, mqtt.cert_file), NULL,
      .help = "the issuer's certificate (edgetelctl ca issue issuer INSTANCE)" } },
    { "mqtt", { "key", ET_KEY_STRING, ET_KEY_FIELD(struct serve_config, mqtt.key_file), NULL,
      .help = "its private key, readable by its user only" } },
    { "mqtt", { "insecure", ET_KEY_BOOL, ET_KEY_FIELD(struct serve_config, mqtt.insecure),
      "false", .help = "plain TCP without TLS: for a lab only" } },
    { "mqtt", { "topic_root", ET_KEY_STRING, ET_KEY_FIELD(struct serve_config, topic_root),
      "edgetel", .help = "first topic level: ROOT/v1/DEVICE/cert/csr" } },
    { "mqtt", { "keepalive", ET_KEY_DURATION,
      ET_KEY_FIELD(struct serve_config, mqtt.keepalive_ms), "10s", MS(5), MS(65535),
      .help = "MQTT keepalive, whole seconds" } },
    { "mqtt", { "backoff_min", ET_KEY_DURATION,
      ET_KEY_FIELD(struct serve_config, mqtt.backoff_min_ms), "250ms", 100, MS(3600),
      .help = "the first retry after a failure comes within this" } },
    { "mqtt", { "backoff_max", ET_KEY_DURATION,
      ET_KEY_FIELD(struct serve_config, mqtt.backoff_max_ms), "5s", MS(1), MS(86400),
      .help = "longest wait while the broker does not answer" } },
    { "mqtt", { "backoff_max_refused", ET_KEY_DURATION,
      ET_KEY_FIELD(struct serve_config, mqtt.backoff_max_refused_ms), "2m", MS(1), MS(86400),
      .help = "longest wait once the broker answered no" } },
};
#define N_SERVE_KEYS (sizeof(serve_keys) / sizeof(serve_keys[0]))

static const struct et_ini_schema serve_schema = { .keys = serve_keys, .n_keys = N_SERVE_KEYS };

static void config_free(struct serve_config *c)
{
    et_ini_free_strings(serve_keys, N_SERVE_KEYS, c);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

static int config_parse(const char *text, size_t len, const char *name, void *obj, char *err,
                        size_t errlen)
{
    struct serve_config *c = obj;
    const char *key = NULL, *alt = NULL;
    int lines[N_SERVE_KEYS];
    char why[256];
    int rc;

    memset(c, 0, sizeof(*c));
    c->path = strdup(name);
    if (!c->path)
        return -ENOMEM;
    rc = et_ini_parse(&serve_schema, text, len, name, c, lines, err, errlen);
    if (rc == 0 && !c->mqtt.host)
        rc = et_text_reason(err, errlen, -EINVAL, "%s: [mqtt] host is not set: the issuer "
                            "needs the broker the devices ask", name);
    if (rc == 0 && (strpbrk(c->share_group, "/+#") || strpbrk(c->topic_root, "+#")))
        rc = et_text_reason(err, errlen, -EINVAL, "%s: [issuer] share_group and [mqtt] "
                            "topic_root hold no wildcards (share_group no /)", name);
    if (rc == 0 && et_mqtt_settings_check(&c->mqtt, &key, &alt, why, sizeof(why)) != 0)
        rc = et_text_reason(err, errlen, -EINVAL, "%s: %s", name, why);
    if (rc)
        config_free(c);
    return rc;
}

/* ---- the loop --------------------------------------------------------------------- */

struct serve {
    struct serve_config cfg;
    struct et_issuer *issuer;
    struct et_mqtt *mqtt;
    char client_id[ET_CA_NAME_MAX + 1];
    char filter[512];
    uint64_t unsent;
};

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_event(void *ctx, const struct et_mqtt_event *ev)
{
    struct serve *s = ctx;
    struct et_issuer_answer ans;
    int rc;

    switch (ev->type) {
    case ET_MQTT_CONNECTED:
        et_info("issuer", "connected to %s:%d as %s; taking requests on %s", s->cfg.mqtt.host,
                s->cfg.mqtt.port, s->client_id, s->filter);
        break;
    case ET_MQTT_DISCONNECTED:
        et_warn("issuer", "broker %s:%d: %s (reconnecting)", s->cfg.mqtt.host,
                s->cfg.mqtt.port, ev->reason ? ev->reason : "disconnected");
        break;
    case ET_MQTT_MESSAGE:
        if (et_issuer_handle(s->issuer, ev->topic, ev->payload, ev->len,
                             clock_ms(CLOCK_REALTIME) / 1000, clock_ms(CLOCK_MONOTONIC),
                             &ans) != 0)
            break;
        rc = et_mqtt_publish(s->mqtt, ans.topic, ans.reply, ans.len, 1, false);
        if (rc < 0) {
            /* The device asks again when no answer comes. */
            s->unsent++;
            et_warn("issuer", "answer on %s not published: %s", ans.topic, strerror(-rc));
        }
        free(ans.reply);
        break;
    case ET_MQTT_PUBLISHED:
    case ET_MQTT_PUBLISH_FAILED:
        break;
    }
}

static void log_stats(const struct serve *s, const char *when)
{
    const struct et_issuer_stats *st = et_issuer_stats(s->issuer);

    et_info("issuer", "%s: %" PRIu64 " enrolled, %" PRIu64 " renewed, %" PRIu64 " refused, %"
            PRIu64 " asked too often, %" PRIu64 " malformed, %" PRIu64 " answers not sent",
            when, st->enrolled, st->renewed, st->refused, st->limited, st->malformed,
            s->unsent);
}

static int loop(struct serve *s, int sigfd)
{
    struct pollfd pfd[2] = {
        { .fd = sigfd, .events = POLLIN },
        { .fd = et_mqtt_fd(s->mqtt), .events = POLLIN },
    };
    int64_t next_stats = clock_ms(CLOCK_MONOTONIC) + STATS_EVERY_MS;

    for (;;) {
        int64_t now = clock_ms(CLOCK_MONOTONIC);
        int n;

        if (now >= next_stats) {
            log_stats(s, "so far");
            next_stats = now + STATS_EVERY_MS;
        }
        n = poll(pfd, 2, (int)(next_stats - now));
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0 && (pfd[0].revents & POLLIN)) {
            et_info("issuer", "stopping");
            return 0;
        }
        if (n > 0 && (pfd[1].revents & POLLIN))
            et_mqtt_dispatch(s->mqtt, on_event, s);
    }
}

/* The broker binds the client id to the certificate: use the name it will use. */
static int client_id(struct serve *s, char *err, size_t errlen)
{
    char why[400];

    if (s->cfg.mqtt.insecure || !s->cfg.mqtt.cert_file) {
        snprintf(s->client_id, sizeof(s->client_id), ET_CA_ISSUER_PREFIX "%ld",
                 (long)getpid());
        return 0;
    }
    if (et_ca_cert_identity(s->cfg.mqtt.cert_file, s->client_id, sizeof(s->client_id), NULL,
                            why, sizeof(why)) != 0)
        return et_text_reason(err, errlen, -EINVAL, "[mqtt] cert: %s", why);
    if (strncmp(s->client_id, ET_CA_ISSUER_PREFIX, strlen(ET_CA_ISSUER_PREFIX)) != 0)
        return et_text_reason(err, errlen, -EINVAL, "[mqtt] cert %s is for \"%s\", not an "
                              "issuer (" ET_CA_ISSUER_PREFIX "<instance>): the broker would "
                              "let it take no CSRs; make one with edgetelctl ca issue issuer "
                              "INSTANCE", s->cfg.mqtt.cert_file, s->client_id);
    return 0;
}

static int start(struct serve *s, const char *ca_dir, char *err, size_t errlen)
{
    struct et_issuer_cfg ic = { .ca_dir = ca_dir, .topic_root = s->cfg.topic_root,
                                .lifetime_s = s->cfg.lifetime_ms / 1000 };
    struct et_mqtt_cfg mc;
    struct et_ca *ca = NULL;
    int rc;

    /* The CA's keys are checked now (readable by others: refused), not at the first CSR. */
    if ((rc = et_ca_open(&ca, ca_dir, err, errlen)))
        return rc;
    et_ca_close(ca);
    if ((rc = et_mqtt_settings_check_files(&s->cfg.mqtt, err, errlen)) ||
        (rc = client_id(s, err, errlen)))
        return rc;
    if ((rc = et_issuer_create(&s->issuer, &ic)))
        return et_text_reason(err, errlen, rc, "cannot set up the issuer: %s", strerror(-rc));
    et_mqtt_cfg_from_settings(&s->cfg.mqtt, s->client_id, 64, &mc);
    /* As the broker's (1 MiB): a client below it stalls mosquitto 2.0.11's
     * deliveries; the codec refuses anything over a request's bound unread. */
    mc.max_packet = ET_WIRE_MAX_MESSAGE;
    snprintf(s->filter, sizeof(s->filter), "$share/%s/%s/v1/+/cert/csr", s->cfg.share_group,
             s->cfg.topic_root);
    if (s->cfg.mqtt.insecure)
        et_warn("issuer", "insecure = true: plain TCP to %s:%d; anyone on the path can read "
                "and answer CSRs. Use mutual TLS outside a lab.", s->cfg.mqtt.host,
                s->cfg.mqtt.port);
    if ((rc = et_mqtt_create(&s->mqtt, et_mqtt_paho(), &mc)) ||
        (rc = et_mqtt_subscribe(s->mqtt, s->filter, 1)) || (rc = et_mqtt_start(s->mqtt)))
        return et_text_reason(err, errlen, rc, "MQTT client for %s:%d: %s", s->cfg.mqtt.host,
                              s->cfg.mqtt.port, strerror(-rc));
    et_info("issuer", "started: CA %s, device certificates for %" PRId64 " s, broker %s:%d",
            ca_dir, s->cfg.lifetime_ms / 1000, s->cfg.mqtt.host, s->cfg.mqtt.port);
    return 0;
}

int et_ctl_ca_serve(const char *ca_dir, const char *config)
{
    struct serve s = { 0 };
    sigset_t set;
    char err[512] = "";
    int sigfd = -1, rc;

    et_log_init(PROG, ET_LOG_INFO);
    et_log_set_timestamps(!et_log_under_journald());
    if (!config) {
        fprintf(stderr, PROG ": give its config file: --config FILE (ca --help)\n");
        return 2;
    }
    if (et_ini_load_file(config, CONFIG_MAX_BYTES, config_parse, &s.cfg, err, sizeof(err))) {
        fprintf(stderr, PROG ": config: %s\n", err);
        return 2;
    }
    et_log_set_level(s.cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    /* Blocked before Paho's threads exist, so they inherit it. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
        (sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
        fprintf(stderr, PROG ": signals: %s\n", strerror(errno));
        config_free(&s.cfg);
        return 1;
    }
    rc = start(&s, ca_dir, err, sizeof(err));
    if (rc)
        fprintf(stderr, PROG ": %s\n", err);
    else
        rc = loop(&s, sigfd);
    if (s.issuer)
        log_stats(&s, "stopped");
    et_mqtt_destroy(s.mqtt, STOP_DISCONNECT_MS);
    et_issuer_destroy(s.issuer);
    config_free(&s.cfg);
    close(sigfd);
    return rc ? 1 : 0;
}
