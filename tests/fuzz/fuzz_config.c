/*
 * libFuzzer target for the agent's config parser: a pushed or hand-edited
 * file is outside input. Whatever the bytes, et_config_parse() must return
 * 0 with a config that passes its own promises, or an error with a
 * "NAME:..." message and an empty result; never crash, leak or read past
 * the text (run under ASan/UBSan).
 *
 * Build with clang -fsanitize=fuzzer,address,undefined and link
 * et_agent_core et_drivers et_ini et_base et_platform_fake.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/config.h"

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i])
            return false;
    }
    return true;
}

/* A broken promise is a finding: abort() makes libFuzzer keep the input. */
static void check(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct et_config c;
    char err[256];
    char *text;
    int rc;

    /* et_config_parse() takes a C string: a NUL inside ends the text. */
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    rc = et_config_parse(text, "fuzz.conf", &c, err, sizeof(err));
    if (rc == 0) {
        check(c.device_id && et_device_id_valid(c.device_id));
        check(c.topic_root && !strpbrk(c.topic_root, "/+#"));
        check(c.mqtt.backoff_min_ms <= c.mqtt.backoff_max_ms);
        check(c.mqtt.keepalive_ms % 1000 == 0);
        check(!c.mqtt.host || c.mqtt.insecure ||
              (c.mqtt.ca_file && c.mqtt.cert_file && c.mqtt.key_file));
        for (size_t i = 0; i < c.n_collectors; i++) {
            const struct et_collector_cfg *cc = &c.collectors[i];

            check(cc->name && cc->type && et_driver_find(cc->type));
            check(cc->interval_ms >= 100);
        }
        et_config_free(&c);
    } else {
        check(rc < 0);
        check(strncmp(err, "fuzz.conf:", 10) == 0);
        check(all_zero(&c, sizeof(c)));
    }
    free(text);
    return 0;
}
