/*
 * Is this push for us, from whom we trust, and new? (edgetel/config_wire.h)
 * Pure: bytes and the board's trust, identity and running version in; a
 * verified ConfigBody or a refusal with its reason out. The signature is
 * checked over the body's bytes before the body is decoded, so nothing an
 * untrusted sender wrote is parsed beyond the three outer fields.
 */
#include "edgetel/config_wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "edgetel/codec.h"
#include "edgetel/ini.h"
#include "edgetel/text.h"

static bool in_groups(const struct et_config_verify_ctx *ctx, const char *group)
{
    for (size_t i = 0; i < ctx->n_groups; i++) {
        if (strcmp(ctx->groups[i], group) == 0)
            return true;
    }
    return false;
}

/* The target, the version and the key changes of a body whose signature is good. */
static int check_body(const Edgetel__V1__ConfigBody *b, const struct et_config_verify_ctx *ctx,
                      char *err, size_t errlen)
{
    char q[ET_INI_QUOTE_BUF];

    switch (b->target_case) {
    case EDGETEL__V1__CONFIG_BODY__TARGET_DEVICE_ID:
        if (strcmp(b->device_id, ctx->device_id) != 0)
            return et_text_reason(err, errlen, -EPERM,
                                  "config v%" PRIu64 " is for device \"%s\", "
                                  "not this one (%s)",
                                  b->version, et_ini_quote(b->device_id, q, sizeof(q)),
                                  ctx->device_id);
        break;
    case EDGETEL__V1__CONFIG_BODY__TARGET_GROUP:
        if (!in_groups(ctx, b->group))
            return et_text_reason(err, errlen, -EPERM,
                                  "config v%" PRIu64 " is for group \"%s\", which "
                                  "this device (%s) is not in",
                                  b->version, et_ini_quote(b->group, q, sizeof(q)), ctx->device_id);
        break;
    default:
        return et_text_reason(err, errlen, -EPROTO, "config body names no device or group");
    }
    if (b->version == 0)
        return et_text_reason(err, errlen, -EPROTO, "config body has no version");
    if (b->version <= ctx->running_version)
        return et_text_reason(err, errlen, -ESTALE,
                              "config v%" PRIu64 " is not newer than v%" PRIu64
                              ", which runs here (a replay or a downgrade)",
                              b->version, ctx->running_version);
    if (!b->config)
        return et_text_reason(err, errlen, -EPROTO, "config v%" PRIu64 " carries no config",
                              b->version);
    for (size_t i = 0; i < b->n_add_trusted_keys; i++) {
        struct et_sign_key *k = NULL;
        char why[200];

        if (et_sign_key_parse_public(b->add_trusted_keys[i].data, b->add_trusted_keys[i].len,
                                     "to trust", &k, why, sizeof(why)))
            return et_text_reason(err, errlen, -EPROTO,
                                  "config v%" PRIu64 ": new trusted key %zu: %s", b->version, i + 1,
                                  why);
        et_sign_key_destroy(k);
    }
    for (size_t i = 0; i < b->n_remove_trusted_key_ids; i++) {
        if (b->remove_trusted_key_ids[i].len != ET_SIGN_KEY_ID_LEN)
            return et_text_reason(err, errlen, -EPROTO,
                                  "config v%" PRIu64 ": key id to remove of %zu "
                                  "bytes: expected %d",
                                  b->version, b->remove_trusted_key_ids[i].len, ET_SIGN_KEY_ID_LEN);
    }
    return 0;
}

int et_config_verify(const uint8_t *buf, size_t len, const struct et_config_verify_ctx *ctx,
                     Edgetel__V1__ConfigBody **out, char *err, size_t errlen)
{
    Edgetel__V1__SignedConfig *sc = NULL;
    Edgetel__V1__ConfigBody *b = NULL;
    int rc;

    *out = NULL;
    if (len > ET_CONFIG_SIGNED_MAX)
        return et_text_reason(err, errlen, -EMSGSIZE, "signed config of %zu bytes: at most %d", len,
                              ET_CONFIG_SIGNED_MAX);
    sc = edgetel__v1__signed_config__unpack(NULL, len, buf);
    if (!sc)
        return et_text_reason(err, errlen, -EPROTO,
                              "not a SignedConfig (%zu bytes that do not decode)", len);
    rc = et_sign_verify(ctx->trust, sc->key_id.data, sc->key_id.len, sc->body.data, sc->body.len,
                        sc->signature.data, sc->signature.len, err, errlen);
    if (rc)
        goto out;
    b = edgetel__v1__config_body__unpack(NULL, sc->body.len, sc->body.data);
    if (!b) {
        /* Signed by a trusted key yet not a body: a bug on the operator's side. */
        rc = et_text_reason(err, errlen, -EPROTO, "signed body of %zu bytes is not a ConfigBody",
                            sc->body.len);
        goto out;
    }
    rc = check_body(b, ctx, err, errlen);
    if (rc)
        goto out;
    *out = b;
    b = NULL;
out:
    if (b)
        edgetel__v1__config_body__free_unpacked(b, NULL);
    edgetel__v1__signed_config__free_unpacked(sc, NULL);
    return rc;
}

int et_config_decode_stored(const uint8_t *buf, size_t len, Edgetel__V1__ConfigBody **out)
{
    Edgetel__V1__SignedConfig *sc = edgetel__v1__signed_config__unpack(NULL, len, buf);

    *out = NULL;
    if (!sc)
        return -EPROTO;
    *out = edgetel__v1__config_body__unpack(NULL, sc->body.len, sc->body.data);
    edgetel__v1__signed_config__free_unpacked(sc, NULL);
    return *out && (*out)->config ? 0 : -EPROTO;
}
