/*
 * The agent's config as data and back (see edgetel/config_wire.h): a
 * parsed struct et_config becomes an AgentConfig inside a signed
 * ConfigBody on the operator's machine; on the board an AgentConfig
 * becomes INI text again and goes through et_config_parse(), so a pushed
 * config meets the very checks of a local file, with no second copy of
 * any rule here.
 */
#include "edgetel/config_wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/ini.h"
#include "edgetel/text.h"

/* enum et_log_level as the file writes it, in the enum's order. */
static const char *const log_levels[] = { "error", "warn", "info", "debug" };

/* The name of choice i of an ENUM row of the config table ("drop-oldest"). */
static const char *schema_choice(const char *section, const char *key, int i)
{
    const struct et_ini_schema *s = et_config_schema();

    for (size_t k = 0; k < s->n_keys; k++) {
        const struct et_key *row = &s->keys[k].key;
        int n = 0;

        if (strcmp(s->keys[k].section, section) || strcmp(row->name, key) || !row->choices)
            continue;
        while (row->choices[n])
            n++;
        return i >= 0 && i < n ? row->choices[i] : NULL;
    }
    return NULL;
}

/* "" for an unset string: proto3 strings have no NULL. */
static char *str(char *s)
{
    return s ? s : (char *)"";
}

/* ---- et_config -> AgentConfig -> signed bytes ------------------------------ */

/* The collectors of c as messages; strings borrowed from c. */
static int collectors_to_wire(const struct et_config *c, Edgetel__V1__AgentConfig *ac)
{
    ac->collectors = calloc(c->n_collectors ? c->n_collectors : 1, sizeof(*ac->collectors));
    if (!ac->collectors)
        return -ENOMEM;
    for (size_t i = 0; i < c->n_collectors; i++) {
        const struct et_collector_cfg *cc = &c->collectors[i];
        Edgetel__V1__CollectorConfig *w = calloc(1, sizeof(*w));

        if (!w)
            return -ENOMEM;
        edgetel__v1__collector_config__init(w);
        ac->collectors[ac->n_collectors++] = w;
        w->name = cc->name;
        w->type = cc->type;
        w->interval_ms = (uint64_t)cc->interval_ms;
        w->enabled = cc->enabled;
        w->tags = str(cc->tags);
        w->params = calloc(cc->n_keys ? cc->n_keys : 1, sizeof(*w->params));
        if (!w->params)
            return -ENOMEM;
        for (size_t j = 0; j < cc->n_keys; j++) {
            Edgetel__V1__ConfigKeyValue *kv = calloc(1, sizeof(*kv));

            if (!kv)
                return -ENOMEM;
            edgetel__v1__config_key_value__init(kv);
            w->params[w->n_params++] = kv;
            kv->key = (char *)cc->keys[j].key;
            kv->value = (char *)cc->keys[j].value;
        }
    }
    return 0;
}

static void collectors_free(Edgetel__V1__AgentConfig *ac)
{
    for (size_t i = 0; i < ac->n_collectors; i++) {
        for (size_t j = 0; j < ac->collectors[i]->n_params; j++)
            free(ac->collectors[i]->params[j]);
        free(ac->collectors[i]->params);
        free(ac->collectors[i]);
    }
    free(ac->collectors);
}

static void to_wire(const struct et_config *c, Edgetel__V1__AgentConfig *ac)
{
    /* Never carried: the data directory is the board's own (config.proto). */
    ac->data_dir = (char *)"";
    ac->batch_interval_ms = (uint64_t)c->batch_interval_ms;
    ac->batch_max_samples = c->batch_max_samples;
    ac->log_level = (unsigned)c->log_level < 4 ? (char *)log_levels[c->log_level] : (char *)"";
    ac->mqtt_host = str(c->mqtt.host);
    ac->mqtt_port = (uint32_t)c->mqtt.port;
    ac->mqtt_ca = str(c->mqtt.ca_file);
    ac->mqtt_cert = str(c->mqtt.cert_file);
    ac->mqtt_key = str(c->mqtt.key_file);
    ac->mqtt_insecure = c->mqtt.insecure;
    ac->topic_root = str(c->topic_root);
    ac->keepalive_ms = (uint64_t)c->mqtt.keepalive_ms;
    ac->ack_timeout_ms = (uint64_t)c->ack_timeout_ms;
    ac->max_inflight = c->max_inflight;
    ac->backoff_min_ms = (uint64_t)c->mqtt.backoff_min_ms;
    ac->backoff_max_ms = (uint64_t)c->mqtt.backoff_max_ms;
    ac->backoff_max_refused_ms = (uint64_t)c->mqtt.backoff_max_refused_ms;
    ac->clock_wait_ms = (uint64_t)c->clock_wait_ms;
    ac->drain_rate = c->drain_rate;
    ac->renew_at = str(c->renew_at);
    ac->outbox_quota = c->outbox_quota;
    ac->outbox_reserve = c->outbox_reserve;
    ac->outbox_policy = (char *)schema_choice("outbox", "policy", c->outbox_policy);
    if (!ac->outbox_policy)
        ac->outbox_policy = (char *)"";
    ac->durability_window_ms = (uint64_t)c->durability_window_ms;
}

/* The new trusted keys of p as DER, each malloc'd. */
static int keys_to_wire(const struct et_config_push *p, Edgetel__V1__ConfigBody *b)
{
    b->add_trusted_keys = calloc(p->n_add_keys ? p->n_add_keys : 1,
                                 sizeof(*b->add_trusted_keys));
    b->remove_trusted_key_ids = calloc(p->n_remove_ids ? p->n_remove_ids : 1,
                                       sizeof(*b->remove_trusted_key_ids));
    if (!b->add_trusted_keys || !b->remove_trusted_key_ids)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_add_keys; i++) {
        ProtobufCBinaryData *d = &b->add_trusted_keys[b->n_add_trusted_keys];
        int rc = et_sign_key_public_der(p->add_keys[i], &d->data, &d->len);

        if (rc)
            return rc;
        b->n_add_trusted_keys++;
    }
    for (size_t i = 0; i < p->n_remove_ids; i++) {
        b->remove_trusted_key_ids[i].data = (uint8_t *)p->remove_ids[i];
        b->remove_trusted_key_ids[i].len = ET_SIGN_KEY_ID_LEN;
    }
    b->n_remove_trusted_key_ids = p->n_remove_ids;
    return 0;
}

int et_config_sign(const struct et_config *c, const struct et_config_push *p,
                   const struct et_sign_key *k, uint8_t **out, size_t *len, char *err,
                   size_t errlen)
{
    Edgetel__V1__AgentConfig ac = EDGETEL__V1__AGENT_CONFIG__INIT;
    Edgetel__V1__ConfigBody body = EDGETEL__V1__CONFIG_BODY__INIT;
    Edgetel__V1__SignedConfig sc = EDGETEL__V1__SIGNED_CONFIG__INIT;
    uint8_t *body_buf = NULL, sig[ET_SIGN_SIG_MAX], id[ET_SIGN_KEY_ID_LEN];
    size_t sig_len = 0, body_len;
    int rc;

    *out = NULL;
    *len = 0;
    if (!p->device_id == !p->group)
        return et_text_reason(err, errlen, -EINVAL, "a push names one device or one group");
    if (p->device_id && !et_device_id_valid(p->device_id))
        return et_text_reason(err, errlen, -EINVAL,
                              "device \"%s\": not a device id (1-64 of A-Z a-z "
                              "0-9 . _ -)",
                              p->device_id);
    if (p->group && !et_device_id_valid(p->group))
        return et_text_reason(err, errlen, -EINVAL, "group \"%s\": use 1-64 of A-Z a-z 0-9 . _ -",
                              p->group);
    if (p->version == 0)
        return et_text_reason(err, errlen, -EINVAL, "version 0: versions start at 1");

    to_wire(c, &ac);
    rc = collectors_to_wire(c, &ac);
    if (rc)
        goto out;
    if (p->device_id) {
        body.target_case = EDGETEL__V1__CONFIG_BODY__TARGET_DEVICE_ID;
        body.device_id = (char *)p->device_id;
    } else {
        body.target_case = EDGETEL__V1__CONFIG_BODY__TARGET_GROUP;
        body.group = (char *)p->group;
    }
    body.version = p->version;
    body.commit_deadline_ms = p->commit_deadline_ms;
    body.signed_at_ms = p->signed_at_ms;
    body.config = &ac;
    rc = keys_to_wire(p, &body);
    if (rc)
        goto out;

    body_len = edgetel__v1__config_body__get_packed_size(&body);
    body_buf = malloc(body_len ? body_len : 1);
    if (!body_buf) {
        rc = -ENOMEM;
        goto out;
    }
    edgetel__v1__config_body__pack(&body, body_buf);
    rc = et_sign_sign(k, body_buf, body_len, sig, &sig_len, err, errlen);
    if (rc)
        goto out;
    et_sign_key_id(k, id);
    sc.body.data = body_buf;
    sc.body.len = body_len;
    sc.key_id.data = id;
    sc.key_id.len = sizeof(id);
    sc.signature.data = sig;
    sc.signature.len = sig_len;
    *len = edgetel__v1__signed_config__get_packed_size(&sc);
    *out = malloc(*len);
    if (!*out) {
        *len = 0;
        rc = -ENOMEM;
        goto out;
    }
    edgetel__v1__signed_config__pack(&sc, *out);
out:
    if (rc == -ENOMEM)
        et_text_reason(err, errlen, rc, "out of memory");
    free(body_buf);
    for (size_t i = 0; i < body.n_add_trusted_keys; i++)
        free(body.add_trusted_keys[i].data);
    free(body.add_trusted_keys);
    free(body.remove_trusted_key_ids);
    collectors_free(&ac);
    return rc;
}

/* c as AgentConfig bytes (malloc'd into *out): what a push of it would carry. */
static int pack_config(const struct et_config *c, uint8_t **out, size_t *len)
{
    Edgetel__V1__AgentConfig ac = EDGETEL__V1__AGENT_CONFIG__INIT;
    int rc;

    *out = NULL;
    to_wire(c, &ac);
    rc = collectors_to_wire(c, &ac);
    if (rc == 0) {
        *len = edgetel__v1__agent_config__get_packed_size(&ac);
        *out = malloc(*len ? *len : 1);
        if (*out)
            edgetel__v1__agent_config__pack(&ac, *out);
        else
            rc = -ENOMEM;
    }
    collectors_free(&ac);
    return rc;
}

static bool same_text(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

bool et_config_equal(const struct et_config *a, const struct et_config *b)
{
    uint8_t *pa = NULL, *pb = NULL;
    size_t la = 0, lb = 0;
    bool same = same_text(a->device_id, b->device_id) && same_text(a->data_dir, b->data_dir) &&
                same_text(a->trusted_keys, b->trusted_keys) && same_text(a->groups, b->groups);

    /* Out of memory reads as "different": the caller then applies, which is safe. */
    if (same && pack_config(a, &pa, &la) == 0 && pack_config(b, &pb, &lb) == 0)
        same = la == lb && memcmp(pa, pb, la) == 0;
    else
        same = false;
    free(pa);
    free(pb);
    return same;
}

/* ---- AgentConfig -> INI text -> et_config ---------------------------------- */

/*
 * Whether the INI syntax carries s unchanged as a value: no line breaks or
 * other control characters, no blanks at either end (trimmed), and no ';'
 * after a blank (an inline comment). A value from a parsed file always
 * passes; this refuses only what no file could have said.
 */
static bool ini_value_ok(const char *s)
{
    size_t n = strlen(s);

    if (n && (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 || ch == 0x7f)
            return false;
        if (ch == ';' && i && (s[i - 1] == ' ' || s[i - 1] == '\t'))
            return false;
    }
    return true;
}

/* A section name or key: the characters the config's own names use. */
static bool ini_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    }
    return true;
}

struct text {
    FILE *f;
    char *err;
    size_t errlen;
    int rc;
};

/* key = value, with an empty value left out ("not set", as in a file without it). */
static void put_str(struct text *t, const char *where, const char *key, const char *value)
{
    char q[ET_INI_QUOTE_BUF];

    if (t->rc || !value || !*value)
        return;
    if (!ini_value_ok(value)) {
        t->rc = et_text_reason(t->err, t->errlen, -EINVAL,
                               "%s %s \"%s\": a value with a line break, a "
                               "control character, blanks at an end or an inline ';' comment",
                               where, key, et_ini_quote(value, q, sizeof(q)));
        return;
    }
    fprintf(t->f, "%s = %s\n", key, value);
}

static void put_u64(struct text *t, const char *key, uint64_t v, const char *unit)
{
    if (!t->rc)
        fprintf(t->f, "%s = %" PRIu64 "%s\n", key, v, unit);
}

static void put_bool(struct text *t, const char *key, bool v)
{
    if (!t->rc)
        fprintf(t->f, "%s = %s\n", key, v ? "true" : "false");
}

static void put_collector(struct text *t, const Edgetel__V1__CollectorConfig *w)
{
    char where[64], q[ET_INI_QUOTE_BUF];

    if (t->rc)
        return;
    if (!ini_name_ok(w->name)) {
        t->rc =
            et_text_reason(t->err, t->errlen, -EINVAL, "[collector \"%s\"]: not a collector name",
                           et_ini_quote(w->name, q, sizeof(q)));
        return;
    }
    snprintf(where, sizeof(where), "[collector %s]", w->name);
    fprintf(t->f, "\n[collector %s]\n", w->name);
    put_str(t, where, "type", w->type);
    put_u64(t, "interval", w->interval_ms, "ms");
    put_bool(t, "enabled", w->enabled);
    put_str(t, where, "tags", w->tags);
    for (size_t j = 0; j < w->n_params && !t->rc; j++) {
        const Edgetel__V1__ConfigKeyValue *kv = w->params[j];

        /* type, interval, enabled and tags have fields of their own. */
        if (!ini_name_ok(kv->key) || !strcmp(kv->key, "type") || !strcmp(kv->key, "interval") ||
            !strcmp(kv->key, "enabled") || !strcmp(kv->key, "tags")) {
            t->rc =
                et_text_reason(t->err, t->errlen, -EINVAL, "%s driver key \"%s\": not a driver key",
                               where, et_ini_quote(kv->key, q, sizeof(q)));
            return;
        }
        put_str(t, where, kv->key, kv->value);
    }
}

/* The AgentConfig as the INI file it stands for; *text malloc'd. */
/* The keys a board takes from its own file only (see struct et_config). */
struct anchors {
    const char *device_id;
    const char *data_dir;       /* NULL: the AgentConfig's */
    const char *trusted_keys;   /* NULL: none */
    const char *groups;         /* NULL: none */
};

static int render(const Edgetel__V1__AgentConfig *ac, const struct anchors *an, char **text,
                  size_t *len, char *err, size_t errlen)
{
    struct text t = { .err = err, .errlen = errlen };

    t.f = open_memstream(text, len);
    if (!t.f)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    fprintf(t.f, "[agent]\n");
    put_str(&t, "[agent]", "device_id", an->device_id);
    put_str(&t, "[agent]", "data_dir", an->data_dir ? an->data_dir : ac->data_dir);
    if (an->trusted_keys)
        put_str(&t, "[agent]", "trusted_keys", an->trusted_keys);
    if (an->groups)
        put_str(&t, "[agent]", "groups", an->groups);
    put_u64(&t, "batch_interval", ac->batch_interval_ms, "ms");
    put_u64(&t, "batch_max_samples", ac->batch_max_samples, "");
    put_str(&t, "[agent]", "log_level", ac->log_level);
    if (!t.rc)
        fprintf(t.f, "\n[mqtt]\n");
    put_str(&t, "[mqtt]", "host", ac->mqtt_host);
    put_u64(&t, "port", ac->mqtt_port, "");
    put_str(&t, "[mqtt]", "ca", ac->mqtt_ca);
    put_str(&t, "[mqtt]", "cert", ac->mqtt_cert);
    put_str(&t, "[mqtt]", "key", ac->mqtt_key);
    put_bool(&t, "insecure", ac->mqtt_insecure);
    put_str(&t, "[mqtt]", "topic_root", ac->topic_root);
    put_u64(&t, "keepalive", ac->keepalive_ms, "ms");
    put_u64(&t, "ack_timeout", ac->ack_timeout_ms, "ms");
    put_u64(&t, "max_inflight", ac->max_inflight, "");
    put_u64(&t, "backoff_min", ac->backoff_min_ms, "ms");
    put_u64(&t, "backoff_max", ac->backoff_max_ms, "ms");
    put_u64(&t, "backoff_max_refused", ac->backoff_max_refused_ms, "ms");
    put_u64(&t, "clock_wait", ac->clock_wait_ms, "ms");
    put_u64(&t, "drain_rate", ac->drain_rate, "");
    put_str(&t, "[mqtt]", "renew_at", ac->renew_at);
    if (!t.rc)
        fprintf(t.f, "\n[outbox]\n");
    put_u64(&t, "quota", ac->outbox_quota, "");
    put_u64(&t, "reserve", ac->outbox_reserve, "");
    put_str(&t, "[outbox]", "policy", ac->outbox_policy);
    put_u64(&t, "durability_window", ac->durability_window_ms, "ms");
    for (size_t i = 0; i < ac->n_collectors; i++)
        put_collector(&t, ac->collectors[i]);
    if (fclose(t.f) != 0 && !t.rc)
        t.rc = et_text_reason(err, errlen, -ENOMEM, "out of memory");
    if (t.rc) {
        free(*text);
        *text = NULL;
    }
    return t.rc;
}

static int from_wire(const Edgetel__V1__AgentConfig *ac, const struct anchors *an,
                     const char *name, struct et_config *out, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = render(ac, an, &text, &len, err, errlen);
    if (rc) {
        /* Say where, as the parser's messages do. */
        char why[256];

        snprintf(why, sizeof(why), "%s", err ? err : "");
        return et_text_reason(err, errlen, rc, "%s: %s", name, why);
    }
    if (len > ET_CONFIG_MAX_BYTES) {
        free(text);
        return et_text_reason(err, errlen, -EINVAL,
                              "%s: %zu bytes as a file: more than a config file "
                              "may hold (%d)",
                              name, len, ET_CONFIG_MAX_BYTES);
    }
    rc = et_config_parse(text, name, out, err, errlen);
    free(text);
    return rc;
}

int et_config_from_wire(const Edgetel__V1__AgentConfig *ac, const char *device_id,
                        const char *name, struct et_config *out, char *err, size_t errlen)
{
    const struct anchors an = { .device_id = device_id };

    return from_wire(ac, &an, name, out, err, errlen);
}

int et_config_from_push(const Edgetel__V1__AgentConfig *ac, const struct et_config *base,
                        const char *name, struct et_config *out, char *err, size_t errlen)
{
    const struct anchors an = {
        .device_id = base->device_id,
        .data_dir = base->data_dir,
        .trusted_keys = base->trusted_keys,
        .groups = base->groups,
    };
    char q[ET_INI_QUOTE_BUF];

    memset(out, 0, sizeof(*out));
    if (ac->data_dir && *ac->data_dir && strcmp(ac->data_dir, base->data_dir) != 0)
        return et_text_reason(err, errlen, -EINVAL,
                              "%s: [agent] data_dir \"%s\" differs from this board's (%s): the "
                              "data directory is the board's own and changes only in its "
                              "local file, with a restart",
                              name, et_ini_quote(ac->data_dir, q, sizeof(q)), base->data_dir);
    return from_wire(ac, &an, name, out, err, errlen);
}
