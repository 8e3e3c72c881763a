#include "edgetel/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/codec.h"
#include "edgetel/ini.h"
#include "edgetel/parse.h"
#include "params.h"

#define MS(s) ((int64_t)(s) * 1000)

/* Longest collector name: it prefixes every metric name of the collector. */
#define COLLECTOR_NAME_MAX 32
/* Longest topic_root: one MQTT topic level, kept short so topics stay small. */
#define TOPIC_ROOT_MAX 64
/* The default system set when a file has no [collector] section. */
static const char *const default_collectors[] = {
    "cpu", "memory", "disk", "diskio", "net", "load", "uptime", "procs", "thermal", "throttle",
    "self",
};
#define DEFAULT_INTERVAL "10s"

static const char *const outbox_policies[] = { "drop-oldest", "drop-newest", NULL };

static const struct et_ini_key config_keys[] = {
    { "agent", { "device_id", ET_KEY_STRING, ET_KEY_FIELD(struct et_config, device_id), NULL,
      .help = "this board's id, one MQTT topic level: 1-64 of A-Z a-z 0-9 . _ - "
              "(default: the host name)" } },
    { "agent", { "data_dir", ET_KEY_STRING, ET_KEY_FIELD(struct et_config, data_dir),
      "/var/lib/edgetel", .help = "where the outbox and the agent's state live" } },
    { "agent", { "batch_interval", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_config, batch_interval_ms), "5s", 100, MS(3600),
      .help = "how long samples gather before they are sealed into a batch" } },
    { "agent", { "batch_max_samples", ET_KEY_INT,
      ET_KEY_FIELD(struct et_config, batch_max_samples), "1000", 1, 50000,
      .help = "a batch is sealed early when it holds this many samples" } },
    { "agent", { "log_level", ET_KEY_LOG_LEVEL, ET_KEY_FIELD(struct et_config, log_level), "info",
      .help = "error, warn, info or debug" } },
    { "agent", { "trusted_keys", ET_KEY_LIST, ET_KEY_FIELD(struct et_config, trusted_keys), NULL,
      .help = "operator public keys (PEM files from edgetelctl keys init) whose signed config "
              "pushes this board takes; unset: it takes none" } },
    { "agent", { "groups", ET_KEY_LIST, ET_KEY_FIELD(struct et_config, groups), NULL,
      .help = "groups this board is in, e.g. greenhouse, north: a config pushed to a group "
              "reaches its members" } },

    { "mqtt", { "host", ET_KEY_STRING, ET_KEY_FIELD(struct et_config, mqtt.host), NULL,
      .help = "the broker's host name or address; unset: collect and store only" } },
    { "mqtt", { "port", ET_KEY_INT, ET_KEY_FIELD(struct et_config, mqtt.port), "8883", 1, 65535,
      .help = "the broker's port (plain MQTT is usually 1883)" } },
    { "mqtt", { "ca", ET_KEY_STRING, ET_KEY_FIELD(struct et_config, mqtt.ca_file), NULL,
      .help = "PEM file of the CA that signed the broker's certificate" } },
    { "mqtt", { "cert", ET_KEY_STRING, ET_KEY_FIELD(struct et_config, mqtt.cert_file), NULL,
      .help = "PEM file of this device's certificate; unset with key: the board makes its "
              "own key in data_dir, enrolls by claim and renews at renew_at" } },
    { "mqtt", { "key", ET_KEY_STRING, ET_KEY_FIELD(struct et_config, mqtt.key_file), NULL,
      .help = "PEM file of this device's private key, readable by the agent only" } },
    { "mqtt", { "insecure", ET_KEY_BOOL, ET_KEY_FIELD(struct et_config, mqtt.insecure), "false",
      .help = "plain TCP without TLS: for a lab only" } },
    { "mqtt", { "topic_root", ET_KEY_STRING, ET_KEY_FIELD(struct et_config, topic_root), "edgetel",
      .help = "first topic level: ROOT/v1/DEVICE/telemetry" } },
    { "mqtt", { "keepalive", ET_KEY_DURATION, ET_KEY_FIELD(struct et_config, mqtt.keepalive_ms),
      "10s", MS(5), MS(65535),
      .help = "MQTT keepalive, whole seconds: a connection gone silent (a partition) is "
              "dropped and retried within 2.5x this when idle, within 1.5x this after an "
              "unanswered write (26 s, 15 s at 10s); a ping costs about 160 bytes, sent only "
              "after a keepalive with nothing sent or nothing received" } },
    { "mqtt", { "ack_timeout", ET_KEY_DURATION, ET_KEY_FIELD(struct et_config, ack_timeout_ms),
      "30s", MS(1), MS(3600),
      .help = "a batch with no Ack from the aggregator by then is sent again" } },
    { "mqtt", { "max_inflight", ET_KEY_INT, ET_KEY_FIELD(struct et_config, max_inflight), "16",
      1, 1024, .help = "batches sent and not yet acknowledged" } },
    { "mqtt", { "backoff_min", ET_KEY_DURATION, ET_KEY_FIELD(struct et_config, mqtt.backoff_min_ms),
      "1s", 100, MS(3600),
      .help = "the first retry after a failure comes within this (a random wait in "
              "[0, backoff_min]); each failure in a row doubles the range" } },
    { "mqtt", { "backoff_max", ET_KEY_DURATION, ET_KEY_FIELD(struct et_config, mqtt.backoff_max_ms),
      "5s", MS(1), MS(86400),
      .help = "longest wait while the broker does not answer: the agent is back within this "
              "of a restarted broker's return; a fleet of N boards then connects at about "
              "2N/backoff_max a second" } },
    { "mqtt", { "backoff_max_refused", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_config, mqtt.backoff_max_refused_ms), "2m", MS(1), MS(86400),
      .help = "longest wait once the broker answered no (a TLS verdict, a CONNACK refusal): "
              "that takes a person to fix, and a fleet retrying handshakes every few "
              "seconds would load the broker" } },
    { "mqtt", { "clock_wait", ET_KEY_DURATION, ET_KEY_FIELD(struct et_config, clock_wait_ms),
      "2m", 0, MS(86400),
      .help = "with TLS, how long to wait for the wall clock to synchronise before connecting "
              "anyway (certificate checks fail on a wrong clock); 0s: do not wait" } },
    { "mqtt", { "drain_rate", ET_KEY_INT, ET_KEY_FIELD(struct et_config, drain_rate), "0", 0,
      1000000, .help = "most backlog batches sent a second after an outage; 0: no limit "
                       "(live data is never held back)" } },
    { "mqtt", { "renew_at", ET_KEY_STRING, ET_KEY_FIELD(struct et_config, renew_at), "67%",
      .help = "when the board renews its own certificate (cert and key unset): a share of "
              "its lifetime like 67%, or the time left before it ends like 30d" } },

    { "outbox", { "quota", ET_KEY_SIZE, ET_KEY_FIELD(struct et_config, outbox_quota), "256M",
      .help = "most bytes of batches kept while offline; past it the policy evicts "
              "(0: no quota)" } },
    { "outbox", { "reserve", ET_KEY_SIZE, ET_KEY_FIELD(struct et_config, outbox_reserve), "64M",
      .help = "free space the outbox leaves on the data directory's filesystem (0: no check)" } },
    { "outbox", { "policy", ET_KEY_ENUM, ET_KEY_FIELD(struct et_config, outbox_policy),
      "drop-oldest", .choices = outbox_policies,
      .help = "drop-oldest evicts the oldest batches; drop-newest refuses new ones" } },
    { "outbox", { "durability_window", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_config, durability_window_ms), "10s", 100, MS(600),
      .help = "batches are committed to storage together this often: fewer writes to the SD "
              "card; a power cut loses at most this much" } },
};
#define N_CONFIG_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Applied by the [collector NAME] hook, so without a section of their own. */
static const struct et_key collector_keys[] = {
    { "type", ET_KEY_STRING, ET_KEY_FIELD(struct et_collector_cfg, type), NULL,
      .help = "the driver, e.g. cpu, bme280 (required)" },
    { "interval", ET_KEY_DURATION,
      ET_KEY_FIELD(struct et_collector_cfg, interval_ms), DEFAULT_INTERVAL, 100, MS(86400),
      .help = "how often the collector is read" },
    { "enabled", ET_KEY_BOOL, ET_KEY_FIELD(struct et_collector_cfg, enabled),
      "true", .help = "false keeps the section but does not run it" },
    { "tags", ET_KEY_STRING, ET_KEY_FIELD(struct et_collector_cfg, tags), NULL,
      .help = "labels sent with every metric of the collector: key=value, key2=value2" },
};
#define N_COLLECTOR_KEYS (sizeof(collector_keys) / sizeof(collector_keys[0]))

static int collector_begin(void *obj, const char *arg, int line, char *why, size_t whylen);
static int collector_key(void *obj, const char *arg, const char *key, const char *value,
                         int line, char *why, size_t whylen);

static const struct et_ini_hook config_hooks[] = {
    { "collector", collector_begin, collector_key },
};

static const struct et_ini_schema config_schema = {
    .keys = config_keys,
    .n_keys = N_CONFIG_KEYS,
    .hooks = config_hooks,
    .n_hooks = sizeof(config_hooks) / sizeof(config_hooks[0]),
};

const struct et_ini_schema *et_config_schema(void)
{
    return &config_schema;
}

const struct et_key *et_config_collector_keys(size_t *n)
{
    *n = N_COLLECTOR_KEYS;
    return collector_keys;
}

/* ---- [collector NAME] ---------------------------------------------------- */

static bool collector_name_valid(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > COLLECTOR_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    }
    return true;
}

/* "cpu, load, memory": the built-in drivers, for messages. */
static void list_drivers(char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < et_n_drivers && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                                 et_drivers[i]->name);
    if (!et_n_drivers)
        snprintf(buf, len, "none");
}

static struct et_collector_cfg *collector_append(struct et_config *c, const char *name, int line,
                                                 char *why, size_t whylen)
{
    struct et_collector_cfg *v, *cc;

    v = realloc(c->collectors, (c->n_collectors + 1) * sizeof(*v));
    if (!v)
        goto oom;
    c->collectors = v;
    cc = &v[c->n_collectors];
    memset(cc, 0, sizeof(*cc));
    cc->name = strdup(name);
    if (!cc->name)
        goto oom;
    cc->line = line;
    c->n_collectors++;
    /* Counted before the defaults so a failure leaves nothing unfreed. */
    if (et_keys_set_defaults(collector_keys, N_COLLECTOR_KEYS, cc, why, whylen))
        return NULL;
    return cc;
oom:
    snprintf(why, whylen, "out of memory");
    return NULL;
}

static int collector_begin(void *obj, const char *arg, int line, char *why, size_t whylen)
{
    struct et_config *c = obj;

    if (!*arg) {
        snprintf(why, whylen, "needs a name: [collector NAME]");
        return -EINVAL;
    }
    if (!collector_name_valid(arg)) {
        /* The section text is already quoted by the loader's prefix. */
        snprintf(why, whylen, "name: use 1-%d characters of a-z, 0-9, _ and - "
                 "(it starts every metric name of the collector)", COLLECTOR_NAME_MAX);
        return -EINVAL;
    }
    if (c->n_collectors >= ET_CONFIG_MAX_COLLECTORS) {
        snprintf(why, whylen, "too many collectors: at most %d", ET_CONFIG_MAX_COLLECTORS);
        return -EINVAL;
    }
    return collector_append(c, arg, line, why, whylen) ? 0 : -ENOMEM;
}

static int collector_key(void *obj, const char *arg, const char *key, const char *value,
                         int line, char *why, size_t whylen)
{
    struct et_config *c = obj;
    struct et_collector_cfg *cc = &c->collectors[c->n_collectors - 1];
    struct et_kv *keys, *kv;
    size_t klen, vlen;
    char *mem;

    for (size_t i = 0; i < N_COLLECTOR_KEYS; i++) {
        int rc;

        if (strcmp(collector_keys[i].name, key))
            continue;
        rc = et_key_set(&collector_keys[i], cc, value, why, whylen);
        if (rc)
            return rc;
        if (strcmp(key, "tags") == 0) {
            char canon[ET_TAGS_TEXT_MAX], reason[160];
            char *copy;

            if (et_tags_canonical(cc->tags, canon, sizeof(canon), reason, sizeof(reason))) {
                snprintf(why, whylen, "tags: %s", reason);
                return -EINVAL;
            }
            copy = canon[0] ? strdup(canon) : NULL;
            if (canon[0] && !copy) {
                snprintf(why, whylen, "out of memory");
                return -ENOMEM;
            }
            free(cc->tags);
            cc->tags = copy;
            return 0;
        }
        if (strcmp(key, "type") == 0 && !et_driver_find(cc->type)) {
            char names[256];
            char q[ET_INI_QUOTE_BUF];

            list_drivers(names, sizeof(names));
            snprintf(why, whylen, "type \"%s\": no such driver (built in: %s)",
                     et_ini_quote(value, q, sizeof(q)), names);
            return -EINVAL;
        }
        return 0;
    }
    /*
     * A driver key. The type may come later in the section, so the key is
     * kept as written and parsed by the driver's table once the whole file
     * is read (check_collectors).
     */
    if (cc->n_keys >= ET_CONFIG_MAX_PARAMS) {
        snprintf(why, whylen, "too many keys: at most %d besides type, interval, enabled and tags",
                 ET_CONFIG_MAX_PARAMS);
        return -EINVAL;
    }
    keys = realloc(cc->keys, (cc->n_keys + 1) * sizeof(*keys));
    if (!keys)
        goto oom;
    cc->keys = keys;
    klen = strlen(key);
    vlen = strlen(value);
    /* Key and value share one allocation, freed through kv->key. */
    mem = malloc(klen + vlen + 2);
    if (!mem)
        goto oom;
    memcpy(mem, key, klen + 1);
    memcpy(mem + klen + 1, value, vlen + 1);
    kv = &keys[cc->n_keys++];
    kv->key = mem;
    kv->value = mem + klen + 1;
    kv->line = line;
    return 0;
oom:
    snprintf(why, whylen, "out of memory");
    return -ENOMEM;
}

/* ---- checks of the whole -------------------------------------------------- */

struct check {
    const struct et_config *c;
    const int *lines;
    char *err;
    size_t errlen;
};

static int key_line(const struct check *k, const char *section, const char *key)
{
    for (size_t i = 0; i < N_CONFIG_KEYS; i++) {
        if (strcmp(config_keys[i].section, section) == 0 &&
            strcmp(config_keys[i].key.name, key) == 0)
            return k->lines[i];
    }
    return 0;
}

static int check_fail(const struct check *k, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "PATH:LINE: text", or "PATH: text" for a check about a key not in the file. */
static int check_fail(const struct check *k, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!k->err || !k->errlen)
        return -EINVAL;
    if (line > 0)
        n = snprintf(k->err, k->errlen, "%s:%d: ", k->c->path, line);
    else
        n = snprintf(k->err, k->errlen, "%s: ", k->c->path);
    if (n < 0 || (size_t)n >= k->errlen)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(k->err + n, k->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool topic_level_valid(const char *s)
{
    size_t n = strlen(s);

    /* '$' topics are the broker's own ($SYS) and wildcards never match them. */
    if (n == 0 || n > TOPIC_ROOT_MAX || s[0] == '$')
        return false;
    return strpbrk(s, "+#/") == NULL;
}

/* [agent] groups and trusted_keys, split into their items. */
static int check_anchors(struct check *k, struct et_config *c)
{
    char q[ET_INI_QUOTE_BUF];
    int rc;

    rc = et_list_split(c->groups, ET_CONFIG_MAX_GROUPS, &c->group_names, &c->n_groups);
    if (rc == -ENOMEM)
        return rc;
    if (rc)
        return check_fail(k, key_line(k, "agent", "groups"),
                          "[agent] groups \"%s\": %s", et_ini_quote(c->groups, q, sizeof(q)),
                          rc == -E2BIG ? "more than 32 groups" : "an empty name between commas");
    for (size_t i = 0; i < c->n_groups; i++) {
        if (!et_device_id_valid(c->group_names[i]))
            return check_fail(k, key_line(k, "agent", "groups"),
                              "[agent] groups: \"%s\" is not a group name: use 1-64 "
                              "characters of A-Z, a-z, 0-9, '.', '_' and '-'",
                              et_ini_quote(c->group_names[i], q, sizeof(q)));
    }
    rc = et_list_split(c->trusted_keys, ET_CONFIG_MAX_TRUSTED_KEYS, &c->trusted_key_files,
                       &c->n_trusted_key_files);
    if (rc == -ENOMEM)
        return rc;
    if (rc)
        return check_fail(k, key_line(k, "agent", "trusted_keys"),
                          "[agent] trusted_keys \"%s\": %s",
                          et_ini_quote(c->trusted_keys, q, sizeof(q)),
                          rc == -E2BIG ? "more than 16 keys" : "an empty path between commas");
    return 0;
}

static int check_agent(struct check *k, struct et_config *c)
{
    char q[ET_INI_QUOTE_BUF];

    if (c->device_id) {
        if (!et_device_id_valid(c->device_id))
            return check_fail(k, key_line(k, "agent", "device_id"),
                              "[agent] device_id \"%s\": use 1-64 characters of A-Z, a-z, "
                              "0-9, '.', '_' and '-', not starting with '.'",
                              et_ini_quote(c->device_id, q, sizeof(q)));
    } else {
        char host[256];

        /* gethostname() may leave the name unterminated when it is cut. */
        if (gethostname(host, sizeof(host) - 1) != 0)
            return check_fail(k, 0, "[agent] device_id is not set and the host name cannot "
                              "be read: %s", strerror(errno));
        host[sizeof(host) - 1] = '\0';
        if (!et_device_id_valid(host))
            return check_fail(k, 0, "[agent] device_id is not set and the host name \"%s\" "
                              "is not a valid device id: set device_id",
                              et_ini_quote(host, q, sizeof(q)));
        c->device_id = strdup(host);
        if (!c->device_id)
            return -ENOMEM;
    }
    return check_anchors(k, c);
}

bool et_config_own_identity(const struct et_config *c)
{
    return c->mqtt.host && c->mqtt.host[0] && !c->mqtt.insecure && !c->mqtt.cert_file &&
           !c->mqtt.key_file;
}

/* renew_at: "67%" (1%-99% of the lifetime) or a duration before the end. */
static int check_renew_at(struct check *k, struct et_config *c)
{
    char q[ET_INI_QUOTE_BUF], *end;
    size_t n = strlen(c->renew_at);
    long pct;

    if (n > 1 && c->renew_at[n - 1] == '%') {
        errno = 0;
        pct = strtol(c->renew_at, &end, 10);
        if (end == c->renew_at + n - 1 && !errno && pct >= 1 && pct <= 99) {
            c->renew_at_pct = (uint32_t)pct;
            return 0;
        }
    } else if (et_parse_duration_ms(c->renew_at, &c->renew_before_ms) == 0 &&
               c->renew_before_ms > 0) {
        return 0;
    }
    return check_fail(k, key_line(k, "mqtt", "renew_at"), "[mqtt] renew_at \"%s\": expected "
                      "a share of the certificate's lifetime from 1%% to 99%% (67%%), or the "
                      "time left before it ends (30d)", et_ini_quote(c->renew_at, q, sizeof(q)));
}

static int check_mqtt(struct check *k, struct et_config *c)
{
    const char *key = NULL, *alt = NULL;
    char q[ET_INI_QUOTE_BUF], why[256];
    struct et_mqtt_settings s = c->mqtt;

    if (!topic_level_valid(c->topic_root))
        return check_fail(k, key_line(k, "mqtt", "topic_root"),
                          "[mqtt] topic_root \"%s\": must be one topic level of 1-%d "
                          "characters without '/', '+' or '#', not starting with '$'",
                          et_ini_quote(c->topic_root, q, sizeof(q)), TOPIC_ROOT_MAX);
    if (check_renew_at(k, c))
        return -EINVAL;
    /* No cert and key: the board's own (identity.h), which the shared check cannot know. */
    if (et_config_own_identity(c) && !c->mqtt.ca_file)
        return check_fail(k, key_line(k, "mqtt", "host"), "[mqtt] host is set but ca is not: "
                          "TLS needs the CA that signed the broker's certificate (cert and "
                          "key unset: the board makes its own; insecure = true for plain TCP)");
    if (et_config_own_identity(c))
        s.cert_file = s.key_file = (char *)"(the board's own)";
    if (et_mqtt_settings_check(&s, &key, &alt, why, sizeof(why)) != 0) {
        int line = key_line(k, "mqtt", key);

        if (!line && alt)
            line = key_line(k, "mqtt", alt);
        return check_fail(k, line, "%s", why);
    }
    return 0;
}

/* The driver keys of cc, parsed into cc->params by the driver's table. */
static int collector_params(struct check *k, struct et_collector_cfg *cc)
{
    const struct et_driver *drv = et_driver_find(cc->type);
    char why[256], q[ET_INI_QUOTE_BUF];
    int rc;

    rc = et_params_create(drv, &cc->params, why, sizeof(why));
    if (rc)
        return rc == -ENOMEM ? rc : check_fail(k, cc->line, "[collector %s] %s", cc->name, why);
    for (size_t j = 0; j < cc->n_keys; j++) {
        const struct et_kv *kv = &cc->keys[j];
        char names[256];
        size_t used = 0;

        rc = et_params_set(drv, cc->params, kv->key, kv->value, why, sizeof(why));
        if (rc == 0)
            continue;
        if (rc != -ENOENT)
            return rc == -ENOMEM ? rc : check_fail(k, kv->line, "[collector %s] %s", cc->name,
                                                   why);
        names[0] = '\0';
        for (size_t p = 0; p < drv->n_params && used < sizeof(names); p++)
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                     p ? ", " : "", drv->params[p].name);
        return check_fail(k, kv->line, "[collector %s] unknown key \"%s\" (%s takes "
                          "type, interval, enabled, tags%s%s)", cc->name,
                          et_ini_quote(kv->key, q, sizeof(q)), drv->name,
                          drv->n_params ? ", " : "", names);
    }
    return 0;
}

static int check_collectors(struct check *k, struct et_config *c)
{
    if (c->n_collectors == 0) {
        /* No section at all: the system set, as far as it is built in. */
        char why[160];

        for (size_t i = 0; i < sizeof(default_collectors) / sizeof(default_collectors[0]); i++) {
            struct et_collector_cfg *cc;
            int rc;

            if (!et_driver_find(default_collectors[i]))
                continue;
            cc = collector_append(c, default_collectors[i], 0, why, sizeof(why));
            if (!cc)
                return -ENOMEM;
            cc->type = strdup(default_collectors[i]);
            if (!cc->type)
                return -ENOMEM;
            rc = collector_params(k, cc);
            if (rc)
                return rc;
        }
        return 0;
    }
    for (size_t i = 0; i < c->n_collectors; i++) {
        struct et_collector_cfg *cc = &c->collectors[i];
        int rc;

        if (!cc->type)
            return check_fail(k, cc->line, "[collector %s] has no type: add type = DRIVER",
                              cc->name);
        rc = collector_params(k, cc);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- load, parse, free ---------------------------------------------------- */

void et_config_free(struct et_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_collectors; i++) {
        struct et_collector_cfg *cc = &c->collectors[i];

        for (size_t j = 0; j < cc->n_keys; j++)
            free((char *)cc->keys[j].key);
        free(cc->keys);
        if (cc->params)
            et_params_destroy(et_driver_find(cc->type), cc->params);
        et_keys_free_strings(collector_keys, N_COLLECTOR_KEYS, cc);
        free(cc->name);
    }
    free(c->collectors);
    et_list_free(c->group_names, c->n_groups);
    et_list_free(c->trusted_key_files, c->n_trusted_key_files);
    et_ini_free_strings(config_keys, N_CONFIG_KEYS, c);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

static int parse_text(const char *text, size_t len, const char *name, void *obj, char *err,
                      size_t errlen)
{
    struct et_config *out = obj;
    int lines[N_CONFIG_KEYS];
    struct check k = { .c = out, .lines = lines, .err = err, .errlen = errlen };
    int rc;

    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    out->path = strdup(name);
    if (!out->path) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = et_ini_parse(&config_schema, text, len, name, out, lines, err, errlen);
    if (rc)
        goto fail;
    rc = check_agent(&k, out);
    if (rc)
        goto fail;
    rc = check_mqtt(&k, out);
    if (rc)
        goto fail;
    rc = check_collectors(&k, out);
    if (rc)
        goto fail;
    return 0;
fail:
    if (rc == -ENOMEM && err && errlen && !err[0])
        snprintf(err, errlen, "%s: out of memory", name);
    et_config_free(out);
    return rc;
}

int et_config_parse(const char *text, const char *name, struct et_config *out, char *err,
                    size_t errlen)
{
    return parse_text(text, strlen(text), name, out, err, errlen);
}

int et_config_load(const char *path, struct et_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    return et_ini_load_file(path, ET_CONFIG_MAX_BYTES, parse_text, out, err, errlen);
}
