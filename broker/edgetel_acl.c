/*
 * edgetel_acl: the mosquitto plugin (v5 API, mosquitto 2.0) that holds
 * every client to edgetel's topic rules, by the name its certificate
 * proves (use_identity_as_username makes the CN the user name; the
 * shipped config also makes it the client id).
 *
 * Why a plugin and not an acl_file: mosquitto 2.0.11 checks an acl_file
 * only when it publishes or delivers a message; a SUBSCRIBE is granted
 * unseen (src/security_default.c, mosquitto_acl_check_default: "FIXME -
 * implement ACL subscription strings"). A device that subscribed to the
 * aggregators' shared group ($share/edgetel/edgetel/v1/+/telemetry) was
 * handed its turn of every device's telemetry, which delivery then refused
 * by ACL and dropped: with three such subscriptions three quarters of a
 * board's batches were lost on their first send. The dynamic security
 * plugin checks subscriptions, but only for clients it knows by name: it
 * defers on any other user name (plugins/dynamic-security/acl.c,
 * acl_check), so every device would need its own client and role in it,
 * and it has no %u patterns. This plugin decides by the name's kind:
 *
 *   aggregator-<instance>  subscribe ROOT/v1/+/T or $share/<group>/ROOT/v1/+/T,
 *                          read ROOT/v1/<device>/T, for T in telemetry,
 *                          status, config/report; write
 *                          ROOT/v1/<device>/ack, config
 *   issuer-<instance>      (edgetelctl ca serve) the same for cert/csr;
 *                          write ROOT/v1/<id>/cert/issued
 *   claim-<device>         (a bootstrap credential) write exactly
 *                          ROOT/v1/claim-<device>/cert/csr; subscribe to
 *                          and read exactly ROOT/v1/claim-<device>/cert/issued
 *   any other valid name   (a device D) write ROOT/v1/D/telemetry, status,
 *                          config/report, cert/csr; subscribe to and read
 *                          exactly ROOT/v1/D/ack, config, cert/issued
 *   anything else          nothing ($SYS, other devices, wildcards, $share)
 *
 * So a claim can ask for a certificate under its own name only, and can
 * publish no telemetry, status or report: it is not the device until the
 * issuer made it one (et_ca_enroll, which also holds the CSR to the
 * claim's device id, once). Only the issuer answers CSRs; an aggregator,
 * which reads every device's data, has no part in certificates.
 *
 * The CA never issues a device a name starting with "aggregator", "ops",
 * "issuer" or "claim" (common/ca/ca_name.c), so a name's kind is as
 * trustworthy as the CA. A client whose client id is not its user name gets nothing either
 * (the config's use_username_as_clientid makes them equal; without it a
 * device could take another's client id, and this says so in the log).
 * Refusals are logged at notice level with the client, the access and
 * the topic.
 *
 * Options: plugin_opt_topic_root (default "edgetel").
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define NAME_MAX_LEN 64
#define ROOT_MAX 128
#define AGGREGATOR_PREFIX "aggregator-"
#define ISSUER_PREFIX "issuer-"
#define CLAIM_PREFIX "claim-"

struct acl {
    char root[ROOT_MAX];
    mosquitto_plugin_id_t *id;
};

/* What a device publishes, and what reaches it. */
static const char *const device_out[] = { "telemetry", "status", "config/report", "cert/csr",
                                          NULL };
static const char *const device_in[] = { "ack", "config", "cert/issued", NULL };
/* The part of it an aggregator takes and answers. */
static const char *const aggregator_reads[] = { "telemetry", "status", "config/report", NULL };
static const char *const aggregator_writes[] = { "ack", "config", NULL };
/* The part the issuer takes and answers, and all a claim may do. */
static const char *const csr[] = { "cert/csr", NULL };
static const char *const issued[] = { "cert/issued", NULL };

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* A device id as the CA issues them: 1-64 of A-Z a-z 0-9 . _ -, not starting with '.'. */
static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > NAME_MAX_LEN || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char((unsigned char)s[i]))
            return false;
    return true;
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

/*
 * Split "ROOT/v1/<id>/<rest>": the id (pointer and length) and the rest.
 * The id must be a valid name, or exactly "+" when plus_ok.
 */
static bool split(const struct acl *a, const char *topic, bool plus_ok, const char **id,
                  size_t *id_len, const char **rest)
{
    size_t rlen = strlen(a->root);
    const char *p, *slash;

    if (strncmp(topic, a->root, rlen) != 0 || strncmp(topic + rlen, "/v1/", 4) != 0)
        return false;
    p = topic + rlen + 4;
    slash = strchr(p, '/');
    if (!slash)
        return false;
    *id = p;
    *id_len = (size_t)(slash - p);
    *rest = slash + 1;
    if (plus_ok && *id_len == 1 && p[0] == '+')
        return true;
    return valid_name(p, *id_len);
}

/* A topic (or filter) of the form ROOT/v1/<own>/<one of list>. */
static bool own_topic(const struct acl *a, const char *name, const char *topic,
                      const char *const *list)
{
    const char *id, *rest;
    size_t n;

    return split(a, topic, false, &id, &n, &rest) && n == strlen(name) &&
           strncmp(id, name, n) == 0 && in_list(rest, list);
}

/* A client confined to its own ROOT/v1/<name>/ topics: it writes out, reads in. */
static int check_own(const struct acl *a, const char *name, int access, const char *topic,
                     const char *const *out, const char *const *in)
{
    switch (access) {
    case MOSQ_ACL_WRITE:
        return own_topic(a, name, topic, out) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_READ:
    case MOSQ_ACL_SUBSCRIBE:
        /* Exact filters only: never a wildcard, never $share. */
        return own_topic(a, name, topic, in) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

/*
 * A service of the fleet (an aggregator, the issuer): subscribes to and
 * reads the topics in reads of every device, plain or through $share, and
 * publishes the topics in writes to any of them.
 */
static int check_service(const struct acl *a, int access, const char *topic,
                         const char *const *reads, const char *const *writes)
{
    const char *id, *rest;
    size_t n;

    switch (access) {
    case MOSQ_ACL_SUBSCRIBE:
        if (strncmp(topic, "$share/", 7) == 0) {
            const char *group_end = strchr(topic + 7, '/');

            if (!group_end || group_end == topic + 7)
                return MOSQ_ERR_ACL_DENIED;
            topic = group_end + 1;
        }
        return split(a, topic, true, &id, &n, &rest) && n == 1 && id[0] == '+' &&
                       in_list(rest, reads)
                   ? MOSQ_ERR_SUCCESS
                   : MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_READ:
        return split(a, topic, false, &id, &n, &rest) && in_list(rest, reads)
                   ? MOSQ_ERR_SUCCESS
                   : MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_WRITE:
        return split(a, topic, false, &id, &n, &rest) && in_list(rest, writes)
                   ? MOSQ_ERR_SUCCESS
                   : MOSQ_ERR_ACL_DENIED;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

/* Whether name is PREFIX followed by more. */
static bool has_prefix(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);

    return strncmp(name, prefix, n) == 0 && name[n];
}

static const char *access_name(int access)
{
    switch (access) {
    case MOSQ_ACL_READ: return "receive";
    case MOSQ_ACL_WRITE: return "publish";
    case MOSQ_ACL_SUBSCRIBE: return "subscribe";
    default: return "use";
    }
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
    struct mosquitto_evt_acl_check *ev = event_data;
    const struct acl *a = userdata;
    const char *user = mosquitto_client_username(ev->client);
    const char *cid = mosquitto_client_id(ev->client);
    int rc;

    (void)event;
    if (ev->access == MOSQ_ACL_UNSUBSCRIBE)
        return MOSQ_ERR_SUCCESS;
    if (!user || !valid_name(user, strlen(user))) {
        rc = MOSQ_ERR_ACL_DENIED;
    } else if (!cid || strcmp(cid, user) != 0) {
        mosquitto_log_printf(MOSQ_LOG_WARNING, "edgetel_acl: client id \"%s\" is not its "
                             "certificate's name \"%s\": nothing allowed (set "
                             "use_username_as_clientid true)", cid ? cid : "", user);
        return MOSQ_ERR_ACL_DENIED;
    } else if (has_prefix(user, AGGREGATOR_PREFIX)) {
        rc = check_service(a, ev->access, ev->topic, aggregator_reads, aggregator_writes);
    } else if (has_prefix(user, ISSUER_PREFIX)) {
        rc = check_service(a, ev->access, ev->topic, csr, issued);
    } else if (has_prefix(user, CLAIM_PREFIX)) {
        rc = check_own(a, user, ev->access, ev->topic, csr, issued);
    } else {
        rc = check_own(a, user, ev->access, ev->topic, device_out, device_in);
    }
    if (rc != MOSQ_ERR_SUCCESS)
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "edgetel_acl: refused %s \"%s\" to client \"%s\"",
                             access_name(ev->access), ev->topic, user ? user : "(none)");
    return rc;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    struct acl *a = calloc(1, sizeof(*a));

    if (!a)
        return MOSQ_ERR_NOMEM;
    snprintf(a->root, sizeof(a->root), "edgetel");
    for (int i = 0; i < option_count; i++) {
        if (strcmp(options[i].key, "topic_root") == 0) {
            size_t n = strlen(options[i].value);

            if (n == 0 || n >= sizeof(a->root) || strpbrk(options[i].value, "+#")) {
                mosquitto_log_printf(MOSQ_LOG_ERR, "edgetel_acl: plugin_opt_topic_root \"%s\": "
                                     "expected 1-%d characters without + or #",
                                     options[i].value, ROOT_MAX - 1);
                free(a);
                return MOSQ_ERR_INVAL;
            }
            memcpy(a->root, options[i].value, n + 1);
        } else {
            mosquitto_log_printf(MOSQ_LOG_ERR, "edgetel_acl: unknown option plugin_opt_%s "
                                 "(known: topic_root)", options[i].key);
            free(a);
            return MOSQ_ERR_INVAL;
        }
    }
    a->id = identifier;
    *userdata = a;
    mosquitto_log_printf(MOSQ_LOG_INFO, "edgetel_acl: topic root \"%s\"", a->root);
    return mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, a);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    struct acl *a = userdata;

    (void)options, (void)option_count;
    if (a)
        mosquitto_callback_unregister(a->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    free(a);
    return MOSQ_ERR_SUCCESS;
}
