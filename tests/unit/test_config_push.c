/*
 * Signed config pushes (agent/src/config_wire.c, config_verify.c): a file
 * parsed, signed, verified and turned back into a struct et_config equals
 * the file parsed directly; and every refusal the verifier owes a board:
 * bad encoding, a flipped bit in body or signature, an untrusted key, a
 * replayed or older version, another device or group, and a pushed value
 * the file rules refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/config_wire.h"

#define DEVICE "pi-7"

static const char conf_text[] =
    "[agent]\n"
    "device_id = " DEVICE "\n"
    "data_dir = /var/lib/edgetel\n"
    "batch_interval = 3s\n"
    "log_level = debug\n"
    "[mqtt]\n"
    "host = broker.example.net\n"
    "port = 8883\n"
    "ca = /etc/edgetel/ca.pem\ncert = /etc/edgetel/dev.pem\nkey = /etc/edgetel/dev.key\n"
    "topic_root = fleet\n"
    "keepalive = 20s\n"
    "clock_wait = 0s\n"
    "drain_rate = 50\n"
    "[outbox]\n"
    "quota = 10M\n"
    "reserve = 0\n"
    "policy = drop-newest\n"
    "[collector room]\n"
    "type = sim\n"
    "interval = 1500ms\n"
    "tags = site=lab, rack=2\n"
    "period = 30s\n"
    "amplitude = 2.5\n"
    "[collector spare]\n"
    "type = sim\n"
    "enabled = false\n";

struct fx {
    char dir[64], priv[128], pub[128];
    struct et_sign_key *key;
    struct et_sign_trust *trust;
    struct et_config conf;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct et_sign_key *pub = NULL;
    char err[512];

    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/et-push-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->priv, sizeof(f->priv), "%s/op.key", f->dir);
    snprintf(f->pub, sizeof(f->pub), "%s/op.pub", f->dir);
    if (et_sign_keygen(f->priv, f->pub, &f->key, err, sizeof(err)) ||
        et_sign_key_load_public(f->pub, &pub, err, sizeof(err)) ||
        et_sign_trust_create(&f->trust) || et_sign_trust_add(f->trust, pub)) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    if (et_config_parse(conf_text, "agent.conf", &f->conf, err, sizeof(err))) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    et_config_free(&f->conf);
    et_sign_key_destroy(f->key);
    et_sign_trust_destroy(f->trust);
    unlink(f->priv);
    unlink(f->pub);
    rmdir(f->dir);
    free(f);
    return 0;
}

static uint8_t *sign_for(struct fx *f, const struct et_config_push *p, size_t *len)
{
    uint8_t *buf = NULL;
    char err[512];

    if (et_config_sign(&f->conf, p, f->key, &buf, len, err, sizeof(err)) != 0)
        fail_msg("et_config_sign: %s", err);
    return buf;
}

static int verify(struct fx *f, const uint8_t *buf, size_t len, uint64_t running, char *err,
                  size_t errlen, Edgetel__V1__ConfigBody **out)
{
    static const char *const groups[] = { "greenhouse", "lab" };
    struct et_config_verify_ctx ctx = {
        .trust = f->trust, .device_id = DEVICE, .groups = groups, .n_groups = 2,
        .running_version = running,
    };
    Edgetel__V1__ConfigBody *b = NULL;
    int rc = et_config_verify(buf, len, &ctx, &b, err, errlen);

    if (out)
        *out = b;
    else if (b)
        edgetel__v1__config_body__free_unpacked(b, NULL);
    return rc;
}

static void same_strings(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* Everything of a and b a person or the agent can see. */
static void same_config(const struct et_config *a, const struct et_config *b)
{
    same_strings(a->device_id, b->device_id);
    same_strings(a->data_dir, b->data_dir);
    assert_int_equal(a->batch_interval_ms, b->batch_interval_ms);
    assert_int_equal(a->batch_max_samples, b->batch_max_samples);
    assert_int_equal(a->log_level, b->log_level);
    same_strings(a->mqtt.host, b->mqtt.host);
    assert_int_equal(a->mqtt.port, b->mqtt.port);
    same_strings(a->mqtt.ca_file, b->mqtt.ca_file);
    same_strings(a->mqtt.cert_file, b->mqtt.cert_file);
    same_strings(a->mqtt.key_file, b->mqtt.key_file);
    assert_int_equal(a->mqtt.insecure, b->mqtt.insecure);
    assert_int_equal(a->mqtt.keepalive_ms, b->mqtt.keepalive_ms);
    assert_int_equal(a->mqtt.backoff_min_ms, b->mqtt.backoff_min_ms);
    assert_int_equal(a->mqtt.backoff_max_ms, b->mqtt.backoff_max_ms);
    assert_int_equal(a->mqtt.backoff_max_refused_ms, b->mqtt.backoff_max_refused_ms);
    same_strings(a->topic_root, b->topic_root);
    assert_int_equal(a->ack_timeout_ms, b->ack_timeout_ms);
    assert_int_equal(a->max_inflight, b->max_inflight);
    assert_int_equal(a->clock_wait_ms, b->clock_wait_ms);
    assert_int_equal(a->drain_rate, b->drain_rate);
    assert_int_equal(a->outbox_quota, b->outbox_quota);
    assert_int_equal(a->outbox_reserve, b->outbox_reserve);
    assert_int_equal(a->outbox_policy, b->outbox_policy);
    assert_int_equal(a->durability_window_ms, b->durability_window_ms);
    assert_int_equal(a->n_collectors, b->n_collectors);
    for (size_t i = 0; i < a->n_collectors; i++) {
        const struct et_collector_cfg *x = &a->collectors[i], *y = &b->collectors[i];

        same_strings(x->name, y->name);
        same_strings(x->type, y->type);
        assert_int_equal(x->interval_ms, y->interval_ms);
        assert_int_equal(x->enabled, y->enabled);
        same_strings(x->tags, y->tags);
        assert_int_equal(x->n_keys, y->n_keys);
        for (size_t j = 0; j < x->n_keys; j++) {
            assert_string_equal(x->keys[j].key, y->keys[j].key);
            assert_string_equal(x->keys[j].value, y->keys[j].value);
        }
    }
}

static void round_trip_equals_the_file(void **state)
{
    struct fx *f = *state;
    struct et_config_push p = { .device_id = DEVICE, .version = 3, .signed_at_ms = 1700000000000 };
    Edgetel__V1__ConfigBody *b = NULL;
    struct et_config back;
    char err[512];
    size_t len;
    uint8_t *buf = sign_for(f, &p, &len);

    assert_int_equal(verify(f, buf, len, 2, err, sizeof(err), &b), 0);
    assert_int_equal(b->version, 3);
    assert_int_equal(b->signed_at_ms, 1700000000000);
    assert_int_equal(et_config_from_wire(b->config, DEVICE, "config v3", &back, err,
                                         sizeof(err)), 0);
    same_config(&f->conf, &back);
    assert_string_equal(back.path, "config v3");
    et_config_free(&back);
    edgetel__v1__config_body__free_unpacked(b, NULL);
    free(buf);
}

static void default_collectors_round_trip(void **state)
{
    struct fx *f = *state;
    struct et_config direct, back;
    struct et_config_push p = { .group = "lab", .version = 1 };
    Edgetel__V1__ConfigBody *b = NULL;
    uint8_t *buf;
    size_t len;
    char err[512];

    /* A file without [collector] gets the system set: pushed explicitly, the same set. */
    assert_int_equal(et_config_parse("[agent]\ndevice_id = " DEVICE "\n", "a.conf", &direct, err,
                                     sizeof(err)), 0);
    et_config_free(&f->conf);
    f->conf = direct;
    buf = sign_for(f, &p, &len);
    assert_int_equal(verify(f, buf, len, 0, err, sizeof(err), &b), 0);
    assert_int_equal(et_config_from_wire(b->config, DEVICE, "config v1", &back, err,
                                         sizeof(err)), 0);
    same_config(&f->conf, &back);
    et_config_free(&back);
    edgetel__v1__config_body__free_unpacked(b, NULL);
    free(buf);
}

static void flipped_bits_and_junk_refused(void **state)
{
    struct fx *f = *state;
    struct et_config_push p = { .device_id = DEVICE, .version = 5 };
    char err[512];
    size_t len;
    uint8_t *buf = sign_for(f, &p, &len);
    int rc;

    /* Every single-bit change is refused; which refusal depends on where it lands. */
    for (size_t i = 0; i < len * 8; i++) {
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
        rc = verify(f, buf, len, 0, err, sizeof(err), NULL);
        if (rc != -EBADMSG && rc != -EPROTO && rc != -ENOKEY)
            fail_msg("bit %zu flipped: rc %d (%s)", i, rc, err);
        buf[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(verify(f, buf, len, 0, err, sizeof(err), NULL), 0);
    assert_int_equal(verify(f, buf, len - 1, 0, err, sizeof(err), NULL), -EPROTO);
    assert_int_equal(verify(f, (const uint8_t *)"\xff\xff\xff", 3, 0, err, sizeof(err), NULL),
                     -EPROTO);
    assert_non_null(strstr(err, "not a SignedConfig"));
    assert_int_equal(verify(f, buf, ET_CONFIG_SIGNED_MAX + 1, 0, err, sizeof(err), NULL),
                     -EMSGSIZE);
    free(buf);
}

static void untrusted_key_refused(void **state)
{
    struct fx *f = *state;
    struct et_config_push p = { .device_id = DEVICE, .version = 5 };
    struct et_sign_key *other = NULL;
    char err[512], priv[160], pub[160], hex[ET_SIGN_KEY_ID_TEXT];
    uint8_t id[ET_SIGN_KEY_ID_LEN], *buf = NULL;
    size_t len;

    snprintf(priv, sizeof(priv), "%s/other.key", f->dir);
    snprintf(pub, sizeof(pub), "%s/other.pub", f->dir);
    assert_int_equal(et_sign_keygen(priv, pub, &other, err, sizeof(err)), 0);
    assert_int_equal(et_config_sign(&f->conf, &p, other, &buf, &len, err, sizeof(err)), 0);
    assert_int_equal(verify(f, buf, len, 0, err, sizeof(err), NULL), -ENOKEY);
    et_sign_key_id(other, id);
    assert_non_null(strstr(err, et_sign_key_id_text(id, hex)));
    free(buf);
    et_sign_key_destroy(other);
    unlink(priv);
    unlink(pub);
}

static void replay_and_downgrade_refused(void **state)
{
    struct fx *f = *state;
    struct et_config_push p = { .device_id = DEVICE, .version = 7 };
    char err[512];
    size_t len;
    uint8_t *buf = sign_for(f, &p, &len);

    assert_int_equal(verify(f, buf, len, 6, err, sizeof(err), NULL), 0);
    assert_int_equal(verify(f, buf, len, 7, err, sizeof(err), NULL), -ESTALE);
    assert_string_equal(err, "config v7 is not newer than v7, which runs here (a replay or a "
                             "downgrade)");
    assert_int_equal(verify(f, buf, len, 9, err, sizeof(err), NULL), -ESTALE);
    free(buf);
}

static void other_device_or_group_refused(void **state)
{
    struct fx *f = *state;
    struct et_config_push other = { .device_id = "pi-8", .version = 2 };
    struct et_config_push grp = { .group = "warehouse", .version = 2 };
    struct et_config_push mine = { .group = "greenhouse", .version = 2 };
    char err[512];
    size_t len;
    uint8_t *buf;

    buf = sign_for(f, &other, &len);
    assert_int_equal(verify(f, buf, len, 0, err, sizeof(err), NULL), -EPERM);
    assert_string_equal(err, "config v2 is for device \"pi-8\", not this one (pi-7)");
    free(buf);
    buf = sign_for(f, &grp, &len);
    assert_int_equal(verify(f, buf, len, 0, err, sizeof(err), NULL), -EPERM);
    assert_string_equal(err, "config v2 is for group \"warehouse\", which this device (pi-7) "
                             "is not in");
    free(buf);
    buf = sign_for(f, &mine, &len);
    assert_int_equal(verify(f, buf, len, 0, err, sizeof(err), NULL), 0);
    free(buf);
    /* The signer refuses what could never be verified. */
    assert_int_equal(et_config_sign(&f->conf, &(struct et_config_push){ .version = 1 }, f->key,
                                    &buf, &len, err, sizeof(err)), -EINVAL);
    assert_int_equal(et_config_sign(&f->conf, &(struct et_config_push){ .device_id = DEVICE },
                                    f->key, &buf, &len, err, sizeof(err)), -EINVAL);
}

static void key_changes_carried(void **state)
{
    struct fx *f = *state;
    const struct et_sign_key *add[] = { f->key };
    uint8_t rm[1][ET_SIGN_KEY_ID_LEN], id[ET_SIGN_KEY_ID_LEN];
    struct et_config_push p = { .device_id = DEVICE, .version = 4, .add_keys = add,
                                .n_add_keys = 1, .remove_ids = (const uint8_t (*)[8])rm,
                                .n_remove_ids = 1 };
    Edgetel__V1__ConfigBody *b = NULL;
    struct et_sign_key *k = NULL;
    char err[512];
    size_t len;
    uint8_t *buf;

    memset(rm, 0xab, sizeof(rm));
    buf = sign_for(f, &p, &len);
    assert_int_equal(verify(f, buf, len, 0, err, sizeof(err), &b), 0);
    assert_int_equal(b->n_add_trusted_keys, 1);
    assert_int_equal(et_sign_key_parse_public(b->add_trusted_keys[0].data,
                                              b->add_trusted_keys[0].len, "added", &k, err,
                                              sizeof(err)), 0);
    et_sign_key_id(k, id);
    assert_true(et_sign_trust_find(f->trust, id) != NULL);
    assert_int_equal(b->n_remove_trusted_key_ids, 1);
    assert_memory_equal(b->remove_trusted_key_ids[0].data, rm[0], ET_SIGN_KEY_ID_LEN);
    et_sign_key_destroy(k);
    edgetel__v1__config_body__free_unpacked(b, NULL);
    free(buf);
}

/* A verified AgentConfig meets the file's rules: values out of range, and text INI cannot carry. */
static void pushed_values_checked_like_a_file(void **state)
{
    Edgetel__V1__AgentConfig ac = EDGETEL__V1__AGENT_CONFIG__INIT;
    Edgetel__V1__CollectorConfig cc = EDGETEL__V1__COLLECTOR_CONFIG__INIT;
    Edgetel__V1__CollectorConfig *ccs[] = { &cc };
    struct et_config out;
    char err[512];

    (void)state;
    /* proto3 zeroes: a batch_interval of 0 is refused by the [agent] row, as in a file. */
    assert_int_equal(et_config_from_wire(&ac, DEVICE, "config v2", &out, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "config v2:"));
    assert_non_null(strstr(err, "batch_interval"));

    ac.batch_interval_ms = 2000;
    ac.batch_max_samples = 100;
    ac.mqtt_port = 70000;
    ac.keepalive_ms = 10000;
    ac.ack_timeout_ms = 30000;
    ac.max_inflight = 4;
    ac.backoff_min_ms = 1000;
    ac.backoff_max_ms = 5000;
    ac.backoff_max_refused_ms = 60000;
    ac.durability_window_ms = 10000;
    assert_int_equal(et_config_from_wire(&ac, DEVICE, "config v2", &out, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "port \"70000\""));
    ac.mqtt_port = 1883;
    assert_int_equal(et_config_from_wire(&ac, DEVICE, "config v2", &out, err, sizeof(err)), 0);
    et_config_free(&out);

    ac.data_dir = "/var/lib/edgetel\n[mqtt]\nhost = evil";
    assert_int_equal(et_config_from_wire(&ac, DEVICE, "config v2", &out, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "a line break"));
    ac.data_dir = "";

    ac.collectors = ccs;
    ac.n_collectors = 1;
    cc.name = "room";
    cc.type = "nosuchdriver";
    cc.interval_ms = 1000;
    cc.tags = "";
    assert_int_equal(et_config_from_wire(&ac, DEVICE, "config v2", &out, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "no such driver"));
    cc.type = "sim";
    cc.interval_ms = 10;
    assert_int_equal(et_config_from_wire(&ac, DEVICE, "config v2", &out, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "interval"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip_equals_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(default_collectors_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(flipped_bits_and_junk_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(untrusted_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_and_downgrade_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(other_device_or_group_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(key_changes_carried, setup, teardown),
        cmocka_unit_test(pushed_values_checked_like_a_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
