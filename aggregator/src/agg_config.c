/*
 * The aggregator's config file: a key table for the shared INI loader and
 * the checks of the whole that a table cannot express.
 */
#include "edgetel/agg_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/ingest.h"
#include "edgetel/ini.h"
#include "edgetel/store.h"

#define MS(s) ((int64_t)(s) * 1000)
#define INSTANCE_ID_MAX 64

const char *const et_agg_store_types[] = { "sqlite", "postgresql", NULL };

static const struct et_ini_key agg_keys[] = {
    { "aggregator", { "instance_id", ET_KEY_STRING,
      ET_KEY_FIELD(struct et_agg_config, instance_id), NULL,
      .help = "names this instance in the MQTT client id without TLS (insecure); with "
              "a certificate the client id is the certificate's name, "
              "aggregator-<instance> (default: host name and pid)" } },
    { "aggregator", { "log_level", ET_KEY_LOG_LEVEL,
      ET_KEY_FIELD(struct et_agg_config, log_level), "info",
      .help = "error, warn, info or debug" } },
    { "aggregator", { "stats_interval", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_agg_config, stats_interval_ms), "60s", MS(1), MS(86400),
      .help = "how often a summary line (batches, samples, duplicates, malformed) is logged" } },

    { "mqtt", { "host", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, mqtt.host), NULL,
      .help = "the broker's host name or address (required)" } },
    { "mqtt", { "port", ET_KEY_INT, ET_KEY_FIELD(struct et_agg_config, mqtt.port), "8883", 1, 65535,
      .help = "the broker's port" } },
    { "mqtt", { "ca", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, mqtt.ca_file), NULL,
      .help = "PEM file of the CA that signed the broker's certificate" } },
    { "mqtt", { "cert", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, mqtt.cert_file), NULL,
      .help = "PEM file of the aggregator's client certificate" } },
    { "mqtt", { "key", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, mqtt.key_file), NULL,
      .help = "PEM file of the aggregator's private key" } },
    { "mqtt", { "insecure", ET_KEY_BOOL, ET_KEY_FIELD(struct et_agg_config, mqtt.insecure), "false",
      .help = "plain TCP without TLS: for a lab only" } },
    { "mqtt", { "topic_root", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, topic_root),
      "edgetel", .help = "first topic level(s): ROOT/v1/DEVICE/telemetry" } },
    { "mqtt", { "share_group", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, share_group),
      "edgetel", .help = "shared subscription group: instances in one group split the "
                         "telemetry between them" } },
    { "mqtt", { "keepalive", ET_KEY_DURATION, ET_KEY_FIELD(struct et_agg_config, mqtt.keepalive_ms),
      "10s", MS(5), MS(65535),
      .help = "MQTT keepalive, whole seconds: a connection gone silent is dropped and "
              "retried within 2.5x this when idle, 1.5x this after an unanswered write" } },
    { "mqtt", { "backoff_min", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_agg_config, mqtt.backoff_min_ms), "250ms", 100, MS(3600),
      .help = "the first retry after a failure comes within this; each failure in a row "
              "doubles the range" } },
    /* Shorter than the agents' 5 s: a few aggregators are no load for a
     * broker, and telemetry an agent sends before the aggregators have
     * subscribed again is dropped by the broker and waits for the agent's
     * ack_timeout; the aggregators should be back first. */
    { "mqtt", { "backoff_max", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_agg_config, mqtt.backoff_max_ms), "1s", MS(1), MS(86400),
      .help = "longest wait while the broker does not answer: back within this of a "
              "restarted broker's return, ahead of most agents" } },
    { "mqtt", { "backoff_max_refused", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_agg_config, mqtt.backoff_max_refused_ms), "2m", MS(1), MS(86400),
      .help = "longest wait once the broker answered no (a TLS verdict, a CONNACK refusal)" } },
    { "mqtt", { "max_inflight", ET_KEY_INT, ET_KEY_FIELD(struct et_agg_config, max_inflight),
      "1024", 1, 65535, .help = "acks published and not yet acknowledged by the broker" } },
    /* 1M is ET_WIRE_MAX_MESSAGE, the largest message the codec takes:
     * anything larger would be refused after it was copied. */
    { "mqtt", { "max_packet", ET_KEY_SIZE, ET_KEY_FIELD(struct et_agg_config, max_packet),
      "1M", 4096, 256 * 1024 * 1024,
      .help = "largest message taken from the broker: an MQTT 5 broker is told not to send "
              "larger (Maximum Packet Size), and a larger one that comes anyway is dropped "
              "and counted before it is copied" } },

    { "store", { "type", ET_KEY_ENUM, ET_KEY_FIELD(struct et_agg_config, store_type), "sqlite",
      .choices = et_agg_store_types,
      .help = "the store backend: sqlite (one site), postgresql (a fleet: many instances "
              "on one database)" } },
    { "store", { "path", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, store_path),
      ET_STORE_DEFAULT_PATH,
      .help = "sqlite: the database file (its directory must exist); postgresql: the "
              "connection string, as conninfo" } },
    { "store", { "conninfo", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, store_conninfo),
      NULL, .help = "postgresql: a postgresql:// URI or libpq keywords (host=... dbname=...); "
                    "the database must exist, the tables are made in its search_path" } },
    /* 0: keep every sample. Whole days go: see et_store_maintain(). */
    { "store", { "retention", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_agg_config, store_retention_ms), "0", 0, MS(100LL * 365 * 86400),
      .help = "postgresql: drop the samples of days older than this (whole daily partitions), "
              "e.g. 90d; 0 keeps them all" } },

    /*
     * Each device's budget (edgetel/budget.h, which says why these
     * defaults are generous for a real board): over it, a batch is not
     * stored and not acknowledged, so the device sends it again later.
     */
    { "budget", { "samples_per_s", ET_KEY_INT,
      ET_KEY_FIELD(struct et_agg_config, budget.samples_per_s), "5000", 0, 1000000000,
      .help = "samples a second each device may have stored (a real board sends tens; a "
              "backlog drains at this pace); 0: samples are not budgeted" } },
    { "budget", { "sample_burst", ET_KEY_INT,
      ET_KEY_FIELD(struct et_agg_config, budget.sample_burst), "200000", 0, 1000000000,
      .help = "samples a device may send at once beyond its rate (default: one largest "
              "batch); at least samples_per_s" } },
    { "budget", { "bytes_per_s", ET_KEY_SIZE,
      ET_KEY_FIELD(struct et_agg_config, budget.bytes_per_s), "256k",
      .help = "bytes of batches and statuses a second each device may send; 0: bytes are "
              "not budgeted" } },
    { "budget", { "byte_burst", ET_KEY_SIZE, ET_KEY_FIELD(struct et_agg_config, budget.byte_burst),
      "2M", .help = "bytes a device may send at once beyond its rate (default: two largest "
                    "messages); at least bytes_per_s" } },

    /* The web view and /metrics (aggregator/src/http.h, docs/HTTP_API.md). */
    { "http", { "enabled", ET_KEY_BOOL, ET_KEY_FIELD(struct et_agg_config, http.enabled), "false",
      .help = "serve the fleet's web view, its JSON API and Prometheus /metrics" } },
    { "http", { "address", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, http.address),
      "127.0.0.1", .help = "numeric IPv4 or IPv6 address to listen on; any address but "
                           "loopback needs tls_cert, tls_key and token_file" } },
    { "http", { "port", ET_KEY_INT, ET_KEY_FIELD(struct et_agg_config, http.port), "8080", 0,
      65535, .help = "TCP port; 0 takes a free one and the log says which" } },
    { "http", { "tls_cert", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, http.tls_cert),
      NULL, .help = "PEM certificate (chain) for HTTPS" } },
    { "http", { "tls_key", ET_KEY_STRING, ET_KEY_FIELD(struct et_agg_config, http.tls_key),
      NULL, .help = "PEM private key for HTTPS (readable by this user only)" } },
    { "http", { "token_file", ET_KEY_STRING,
      ET_KEY_FIELD(struct et_agg_config, http.token_file), NULL,
      .help = "file holding the operator token (readable by this user only); every API call "
              "and /metrics then needs Authorization: Bearer TOKEN" } },
    { "http", { "max_connections", ET_KEY_INT,
      ET_KEY_FIELD(struct et_agg_config, http.max_connections), "32", 1, 1024,
      .help = "connections served at once; more wait in the kernel's queue" } },
    { "http", { "max_points", ET_KEY_INT, ET_KEY_FIELD(struct et_agg_config, http.max_points),
      "5000", 10, 100000, .help = "most buckets one plotted series may ask for" } },
    { "http", { "dygraphs_dir", ET_KEY_STRING,
      ET_KEY_FIELD(struct et_agg_config, http.dygraphs_dir), "/usr/share/javascript/dygraphs",
      .help = "where Debian's libjs-dygraphs put dygraph.min.js (served to the pages)" } },
};
#define N_AGG_KEYS (sizeof(agg_keys) / sizeof(agg_keys[0]))

static const struct et_ini_schema agg_schema = {
    .keys = agg_keys,
    .n_keys = N_AGG_KEYS,
};

/* Line of a key in the text, 0 when it kept its default. */
static int key_line(const int *lines, const char *section, const char *key)
{
    for (size_t i = 0; i < N_AGG_KEYS; i++) {
        if (strcmp(agg_keys[i].section, section) == 0 && strcmp(agg_keys[i].key.name, key) == 0)
            return lines[i];
    }
    return 0;
}

__attribute__((format(printf, 5, 6)))
static int check_fail(const char *name, int line, char *err, size_t errlen, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(err, errlen, "%s:%d: %s", name, line, why);
    else
        snprintf(err, errlen, "%s: %s", name, why);
    return -EINVAL;
}

static bool id_chars_valid(const char *s)
{
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool et_agg_http_loopback(const char *address)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (inet_pton(AF_INET, address, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, address, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/*
 * The web view reads the fleet's data: anywhere but loopback it needs TLS
 * and the operator token, so nobody on the path reads it or the token.
 */
static int check_http(const struct et_agg_http_cfg *h, const int *lines, const char *name,
                      char *err, size_t errlen)
{
    struct in6_addr a6;

    if (!h->enabled)
        return 0;
    if (inet_pton(AF_INET, h->address, &a6) != 1 && inet_pton(AF_INET6, h->address, &a6) != 1)
        return check_fail(name, key_line(lines, "http", "address"), err, errlen,
                          "[http] address \"%.80s\": expected a numeric IPv4 or IPv6 address "
                          "(127.0.0.1, ::1, 0.0.0.0)", h->address);
    if (!h->tls_cert != !h->tls_key)
        return check_fail(name, key_line(lines, "http", h->tls_cert ? "tls_cert" : "tls_key"),
                          err, errlen, "[http] tls_cert and tls_key go together");
    if (!et_agg_http_loopback(h->address) && (!h->tls_cert || !h->token_file))
        return check_fail(name, key_line(lines, "http", "address"), err, errlen,
                          "[http] address %s is not loopback: set tls_cert, tls_key and "
                          "token_file, so the fleet's data and the token never cross the "
                          "network in the clear nor to anyone", h->address);
    return 0;
}

/*
 * A PostgreSQL store is named by conninfo or path, not both; a SQLite one
 * takes neither conninfo nor retention (it has no partitions to drop).
 */
static int check_store(const struct et_agg_config *c, const int *lines, const char *name,
                       char *err, size_t errlen)
{
    if (strcmp(et_agg_store_types[c->store_type], "postgresql") == 0) {
        if (!c->store_conninfo && !key_line(lines, "store", "path"))
            return check_fail(name, key_line(lines, "store", "type"), err, errlen,
                              "[store] type = postgresql needs conninfo (a postgresql:// URI "
                              "or libpq keywords such as host=/run/postgresql dbname=edgetel)");
        if (c->store_conninfo && key_line(lines, "store", "path"))
            return check_fail(name, key_line(lines, "store", "path"), err, errlen,
                              "[store] give conninfo or path, not both");
    } else {
        if (c->store_conninfo)
            return check_fail(name, key_line(lines, "store", "conninfo"), err, errlen,
                              "[store] conninfo is for type = postgresql (sqlite takes path)");
        if (c->store_retention_ms)
            return check_fail(name, key_line(lines, "store", "retention"), err, errlen,
                              "[store] retention needs type = postgresql: the sqlite store "
                              "keeps every sample (it has no partitions to drop)");
    }
    return 0;
}

static int check_whole(const struct et_agg_config *c, const int *lines, const char *name,
                       char *err, size_t errlen)
{
    const char *key = NULL, *alt = NULL;
    char why[256];
    size_t n;
    int rc;

    if (c->instance_id && (strlen(c->instance_id) > INSTANCE_ID_MAX ||
                           !id_chars_valid(c->instance_id)))
        return check_fail(name, key_line(lines, "aggregator", "instance_id"), err, errlen,
                          "[aggregator] instance_id \"%.80s\": expected 1-%d of A-Z a-z 0-9 . _ -",
                          c->instance_id, INSTANCE_ID_MAX);
    if (!c->mqtt.host)
        return check_fail(name, 0, err, errlen, "[mqtt] host is not set: the aggregator needs "
                          "the broker that devices publish to");
    n = strlen(c->topic_root);
    if (n > ET_TOPIC_ROOT_MAX || strpbrk(c->topic_root, "+#") || c->topic_root[0] == '/' ||
        c->topic_root[n - 1] == '/' || c->topic_root[0] == '$')
        return check_fail(name, key_line(lines, "mqtt", "topic_root"), err, errlen,
                          "[mqtt] topic_root \"%.80s\": expected topic levels without "
                          "wildcards, a leading $ or a leading or trailing /, at most %d "
                          "chars", c->topic_root, ET_TOPIC_ROOT_MAX);
    if (strpbrk(c->share_group, "/+#"))
        return check_fail(name, key_line(lines, "mqtt", "share_group"), err, errlen,
                          "[mqtt] share_group \"%.80s\": a group name may not contain "
                          "/, + or #", c->share_group);
    if (et_mqtt_settings_check(&c->mqtt, &key, &alt, why, sizeof(why)) != 0) {
        int line = key_line(lines, "mqtt", key);

        if (!line && alt)
            line = key_line(lines, "mqtt", alt);
        return check_fail(name, line, err, errlen, "%s", why);
    }
    rc = check_store(c, lines, name, err, errlen);
    if (rc)
        return rc;
    rc = check_http(&c->http, lines, name, err, errlen);
    if (rc)
        return rc;
    if (c->budget.sample_burst < c->budget.samples_per_s)
        return check_fail(name, key_line(lines, "budget", "sample_burst"), err, errlen,
                          "[budget] sample_burst is below samples_per_s");
    if (c->budget.byte_burst < c->budget.bytes_per_s)
        return check_fail(name, key_line(lines, "budget", "byte_burst"), err, errlen,
                          "[budget] byte_burst is below bytes_per_s");
    return 0;
}

void et_agg_config_free(struct et_agg_config *c)
{
    if (!c)
        return;
    et_ini_free_strings(agg_keys, N_AGG_KEYS, c);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

static int parse_text(const char *text, size_t len, const char *name, void *obj, char *err,
                      size_t errlen)
{
    struct et_agg_config *out = obj;
    int lines[N_AGG_KEYS];
    int rc;

    memset(out, 0, sizeof(*out));
    if (errlen)
        err[0] = '\0';
    out->path = strdup(name);
    if (!out->path) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = et_ini_parse(&agg_schema, text, len, name, out, lines, err, errlen);
    if (rc)
        goto fail;
    rc = check_whole(out, lines, name, err, errlen);
    if (rc)
        goto fail;
    return 0;
fail:
    if (rc == -ENOMEM && errlen && !err[0])
        snprintf(err, errlen, "%s: out of memory", name);
    et_agg_config_free(out);
    return rc;
}

int et_agg_config_parse(const char *text, const char *name, struct et_agg_config *out,
                        char *err, size_t errlen)
{
    return parse_text(text, strlen(text), name, out, err, errlen);
}

int et_agg_config_load(const char *path, struct et_agg_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    return et_ini_load_file(path, ET_AGG_CONFIG_MAX_BYTES, parse_text, out, err, errlen);
}

void et_agg_config_print_help(FILE *out)
{
    const char *section = "";

    for (size_t i = 0; i < N_AGG_KEYS; i++) {
        const struct et_ini_key *k = &agg_keys[i];

        if (strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
        }
        fprintf(out, "; %s\n", k->key.help);
        fprintf(out, ";%s = %s\n", k->key.name, k->key.def ? k->key.def : "");
    }
}
