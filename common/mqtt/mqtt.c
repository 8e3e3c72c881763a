/*
 * The MQTT seam's front: checks what every implementation needs checked,
 * then hands each call to the handle's operations (see edgetel/mqtt.h).
 */
#include "edgetel/mqtt.h"

#include "edgetel/keys.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int et_mqtt_cfg_check(const struct et_mqtt_cfg *cfg)
{
    if (!cfg || !cfg->host || !cfg->host[0] || cfg->port < 1 || cfg->port > 65535)
        return -EINVAL;
    if (!cfg->client_id || !cfg->client_id[0])
        return -EINVAL;
    if (cfg->tls && !cfg->ca_file)
        return -EINVAL;
    if (cfg->tls && (!cfg->cert_file != !cfg->key_file))
        return -EINVAL;
    if (cfg->keepalive_s < 0 || cfg->min_backoff_ms < 1 || cfg->max_backoff_ms < cfg->min_backoff_ms)
        return -EINVAL;
    if (cfg->max_backoff_ms > INT_MAX / 2)
        return -EINVAL;
    if (cfg->max_backoff_refused_ms != 0 && (cfg->max_backoff_refused_ms < cfg->min_backoff_ms ||
                                             cfg->max_backoff_refused_ms > INT_MAX / 2))
        return -EINVAL;
    if (cfg->max_inflight < 1 || cfg->max_inflight > 65535)
        return -EINVAL;
    if (cfg->mqtt_version != 0 && cfg->mqtt_version != 4 && cfg->mqtt_version != 5)
        return -EINVAL;
    if (cfg->will_topic && (!cfg->will_topic[0] || cfg->will_len > INT_MAX ||
                            (cfg->will_len > 0 && !cfg->will_payload)))
        return -EINVAL;
    if (cfg->max_packet > ET_MQTT_PACKET_MAX - ET_MQTT_HEADER_ROOM)
        return -EINVAL;
    return 0;
}

static int settings_fail(const char **key, const char **alt_key, const char *k, const char *alt,
                         char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int settings_fail(const char **key, const char **alt_key, const char *k, const char *alt,
                         char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    *key = k;
    if (alt_key)
        *alt_key = alt;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int et_mqtt_settings_check(const struct et_mqtt_settings *s, const char **key,
                           const char **alt_key, char *why, size_t whylen)
{
    char q[ET_KEY_QUOTE_BUF];
    const char *colon;

    if (s->keepalive_ms % 1000)
        return settings_fail(key, alt_key, "keepalive", NULL, why, whylen,
                             "[mqtt] keepalive: must be whole seconds (MQTT counts it in seconds)");
    if (s->backoff_min_ms > s->backoff_max_ms)
        return settings_fail(key, alt_key, "backoff_min", "backoff_max", why, whylen,
                             "[mqtt] backoff_min (%" PRId64 " ms) must not be above backoff_max (%"
                             PRId64 " ms)", s->backoff_min_ms, s->backoff_max_ms);
    if (s->backoff_max_refused_ms && s->backoff_min_ms > s->backoff_max_refused_ms)
        return settings_fail(key, alt_key, "backoff_min", "backoff_max_refused", why, whylen,
                             "[mqtt] backoff_min (%" PRId64 " ms) must not be above "
                             "backoff_max_refused (%" PRId64 " ms)", s->backoff_min_ms,
                             s->backoff_max_refused_ms);
    if (!s->cert_file != !s->key_file)
        return settings_fail(key, alt_key, s->cert_file ? "cert" : "key", NULL, why, whylen,
                             "[mqtt] %s is set without %s: the certificate and its key go "
                             "together", s->cert_file ? "cert" : "key",
                             s->cert_file ? "key" : "cert");
    if (!s->host)
        return 0;
    /* One ':' is "host:port"; an IPv6 address has at least two. */
    colon = strchr(s->host, ':');
    if (strstr(s->host, "://") || strpbrk(s->host, " \t/") || (colon && !strchr(colon + 1, ':')))
        return settings_fail(key, alt_key, "host", NULL, why, whylen,
                             "[mqtt] host \"%s\": give the host name or address only; the port "
                             "goes in port", et_key_quote(s->host, q, sizeof(q)));
    if (!s->insecure && (!s->ca_file || !s->cert_file || !s->key_file)) {
        char missing[32];

        snprintf(missing, sizeof(missing), "%s%s%s%s%s", !s->ca_file ? "ca" : "",
                 !s->ca_file && (!s->cert_file || !s->key_file) ? ", " : "",
                 !s->cert_file ? "cert" : "", !s->cert_file && !s->key_file ? ", " : "",
                 !s->key_file ? "key" : "");
        return settings_fail(key, alt_key, "host", NULL, why, whylen,
                             "[mqtt] host is set but %s %s not: mutual TLS needs ca, cert and key "
                             "(insecure = true for plain TCP)", missing,
                             strchr(missing, ',') ? "are" : "is");
    }
    return 0;
}

static int check_readable(const char *key, const char *path, char *why, size_t whylen)
{
    int rc;

    if (access(path, R_OK) == 0)
        return 0;
    rc = -errno;
    snprintf(why, whylen, "[mqtt] %s %s: %s", key, path,
             rc == -ENOENT ? "no such file" : strerror(-rc));
    return rc;
}

int et_mqtt_settings_check_files(const struct et_mqtt_settings *s, char *why, size_t whylen)
{
    struct stat st;
    int rc;

    if (!s->host || !s->host[0] || s->insecure)
        return 0;
    if ((rc = check_readable("ca", s->ca_file, why, whylen)) ||
        (rc = check_readable("cert", s->cert_file, why, whylen)) ||
        (rc = check_readable("key", s->key_file, why, whylen)))
        return rc;
    if (stat(s->key_file, &st) != 0) {
        rc = -errno;
        snprintf(why, whylen, "[mqtt] key %s: %s", s->key_file, strerror(-rc));
        return rc;
    }
    if (st.st_mode & 077) {
        snprintf(why, whylen, "[mqtt] key %s is readable by others (mode %04o): run chmod 600 "
                 "%s, and take the key as known to whoever could read it", s->key_file,
                 (unsigned)(st.st_mode & 07777), s->key_file);
        return -EPERM;
    }
    return 0;
}

void et_mqtt_cfg_from_settings(const struct et_mqtt_settings *s, const char *client_id,
                               int max_inflight, struct et_mqtt_cfg *out)
{
    *out = (struct et_mqtt_cfg){
        .host = s->host,
        .port = s->port,
        .client_id = client_id,
        .tls = !s->insecure,
        .ca_file = s->ca_file,
        .cert_file = s->cert_file,
        .key_file = s->key_file,
        .keepalive_s = (int)(s->keepalive_ms / 1000),
        .min_backoff_ms = (int)s->backoff_min_ms,
        .max_backoff_ms = (int)s->backoff_max_ms,
        .max_inflight = max_inflight,
        .max_backoff_refused_ms = (int)s->backoff_max_refused_ms,
    };
}

int et_mqtt_create(struct et_mqtt **out, const struct et_mqtt_transport *t,
                   const struct et_mqtt_cfg *cfg)
{
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!t || !t->ops)
        return -EINVAL;
    rc = et_mqtt_cfg_check(cfg);
    if (rc)
        return rc;
    rc = t->ops->create(t->impl, out, cfg);
    if (rc == 0)
        (*out)->ops = t->ops;
    return rc;
}

int et_mqtt_start(struct et_mqtt *m)
{
    return m ? m->ops->start(m) : -EINVAL;
}

int et_mqtt_fd(const struct et_mqtt *m)
{
    return m ? m->ops->fd(m) : -EINVAL;
}

int et_mqtt_dispatch(struct et_mqtt *m, et_mqtt_handler handler, void *ctx)
{
    return m ? m->ops->dispatch(m, handler, ctx) : -EINVAL;
}

int et_mqtt_subscribe(struct et_mqtt *m, const char *filter, int qos)
{
    if (!m || !filter || !filter[0] || qos < 0 || qos > 2)
        return -EINVAL;
    return m->ops->subscribe(m, filter, qos);
}

int et_mqtt_publish(struct et_mqtt *m, const char *topic, const void *payload, size_t len,
                    int qos, bool retain)
{
    /* A wildcard in a topic name is a protocol error: the broker would drop the connection. */
    if (!m || !topic || !topic[0] || strpbrk(topic, "+#") || strlen(topic) > 65535 ||
        qos < 0 || qos > 2 || (len > 0 && !payload))
        return -EINVAL;
    if (len > INT_MAX)
        return -EMSGSIZE;
    return m->ops->publish(m, topic, payload, len, qos, retain);
}

bool et_mqtt_connected(const struct et_mqtt *m)
{
    return m && m->ops->connected(m);
}

void et_mqtt_destroy(struct et_mqtt *m, int timeout_ms)
{
    if (m)
        m->ops->destroy(m, timeout_ms < 0 ? 0 : timeout_ms);
}
