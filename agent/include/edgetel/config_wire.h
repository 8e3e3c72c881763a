/*
 * The agent's config as data (edgetel.v1.AgentConfig) and signed pushes
 * of it (SignedConfig, ConfigBody; proto/edgetel/v1/config.proto).
 *
 * One set of rules whatever the source: edgetelctl parses the operator's
 * INI file with et_config_load() and turns the result into an AgentConfig
 * (et_config_sign); the board turns a verified AgentConfig back into INI
 * text and parses that with et_config_parse() (et_config_from_wire), so a
 * pushed value is checked by exactly the rows and whole-file checks a local
 * file is.
 *
 * Applying a verified config, commit and revert, and the key changes a
 * body carries are the agent's (agent/src/reconf.h); this is the pure
 * part: bytes in, a verified body or a refusal with its reason out.
 */
#ifndef EDGETEL_CONFIG_WIRE_H
#define EDGETEL_CONFIG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetel/config.h"
#include "edgetel/sign.h"
#include "edgetel/v1/config.pb-c.h"

/* Largest SignedConfig taken from the broker: a file's limit plus room. */
#define ET_CONFIG_SIGNED_MAX (ET_CONFIG_MAX_BYTES + 4096)
/* The commit deadline when a body says 0. */
#define ET_CONFIG_DEFAULT_DEADLINE_MS (2 * 60 * 1000)

/* What an operator signs besides the config itself. */
struct et_config_push {
    const char *device_id;      /* exactly one of device_id and group */
    const char *group;
    uint64_t version;           /* > 0; strictly increasing per target */
    uint64_t commit_deadline_ms; /* 0: the board's default */
    int64_t signed_at_ms;       /* wall time, for a person */
    const struct et_sign_key *const *add_keys; /* public halves sent as DER */
    size_t n_add_keys;
    const uint8_t (*remove_ids)[ET_SIGN_KEY_ID_LEN];
    size_t n_remove_ids;
};

/**
 * Encode c (a config et_config_load/parse accepted) with p as a
 * ConfigBody, sign it with the private key k, and return the SignedConfig
 * bytes in *out (malloc'd) and *len. c's device_id is not carried (see
 * AgentConfig in config.proto).
 * @return 0; -EINVAL (p incomplete, with err); -ENOMEM; et_sign_sign()'s errors.
 */
int et_config_sign(const struct et_config *c, const struct et_config_push *p,
                   const struct et_sign_key *k, uint8_t **out, size_t *len, char *err,
                   size_t errlen);

/* Who is checking a push: the board's trust, identity and running version. */
struct et_config_verify_ctx {
    const struct et_sign_trust *trust;
    const char *device_id;              /* this board */
    const char *const *groups;          /* the groups it belongs to */
    size_t n_groups;
    uint64_t running_version;           /* 0 before any push */
};

/**
 * Decode and verify a SignedConfig: the signature over the body's bytes
 * with the trusted key the message names (checked before the body is
 * decoded), then the body: its target is this device or one of its
 * groups, its version is newer than the running one, it has a config,
 * and its key changes are well formed (P-256 keys, 8-byte ids).
 * @param out  the verified body; free with
 *             edgetel__v1__config_body__free_unpacked(*out, NULL).
 * @return 0, or the refusal, with err saying it for the report:
 *         -EMSGSIZE larger than ET_CONFIG_SIGNED_MAX;
 *         -EPROTO   not a SignedConfig / ConfigBody, or a body without a
 *                   config, a target or a version, or a bad key change;
 *         -ENOKEY   signed by a key this board does not trust;
 *         -EBADMSG  the signature does not verify;
 *         -EPERM    for another device or a group this board is not in;
 *         -ESTALE   version not newer than the running one (a replay or a
 *                   downgrade);
 *         -ENOMEM.
 */
int et_config_verify(const uint8_t *buf, size_t len, const struct et_config_verify_ctx *ctx,
                     Edgetel__V1__ConfigBody **out, char *err, size_t errlen);

/**
 * Turn a verified AgentConfig into *out, validated by et_config_parse()
 * exactly as a file is: the text it parses is the AgentConfig written as
 * INI with device_id as [agent] device_id. name stands for the file in
 * messages ("config v7 from the cloud:12: [mqtt] port ...").
 * @return 0; -EINVAL with err set (a value INI cannot carry, or one the
 *         rules refuse); -ENOMEM.
 */
int et_config_from_wire(const Edgetel__V1__AgentConfig *ac, const char *device_id,
                        const char *name, struct et_config *out, char *err, size_t errlen);

/**
 * The same for a board: the keys only its local file sets (device_id,
 * data_dir, trusted_keys, groups) come from base, the file it runs on.
 * A push that names a data_dir other than base's is refused (-EINVAL):
 * the data directory is the board's stream and never moves by push.
 */
int et_config_from_push(const Edgetel__V1__AgentConfig *ac, const struct et_config *base,
                        const char *name, struct et_config *out, char *err, size_t errlen);

/**
 * Whether a and b run the same: every key a push carries, and the board's
 * own keys (device_id, data_dir, trusted_keys, groups), equal.
 */
bool et_config_equal(const struct et_config *a, const struct et_config *b);

/**
 * Decode a SignedConfig this board stored itself after verifying it (its
 * last good config), without checking the signature again: the key that
 * signed it may since have been removed by that very config.
 * @return 0 with *out to free as in et_config_verify(); -EPROTO.
 */
int et_config_decode_stored(const uint8_t *buf, size_t len, Edgetel__V1__ConfigBody **out);

#endif
