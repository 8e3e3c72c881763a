/*
 * Operator keys and signatures for pushed configuration: ECDSA on NIST
 * P-256 over SHA-256, with Mbed TLS. edgetelctl makes the key pair and
 * signs; the agent only loads public keys and verifies.
 *
 * A key is named by its key id: the first 8 bytes of SHA-256 over its
 * public key in DER (SubjectPublicKeyInfo), the same for the private key
 * and its public half. A signed message carries the id, so the verifier
 * picks the one key to try.
 *
 * Every function returns 0 or -errno and, on failure, writes a message for
 * a person into err naming the file (or the key id) and the cause, e.g.
 *   key /home/op/.config/edgetel/operator.key is mode 0644: readable by group
 *   or others; chmod 600 /home/op/.config/edgetel/operator.key
 * Links et_base and Mbed TLS only; nothing here keeps global state.
 */
#ifndef EDGETEL_SIGN_H
#define EDGETEL_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ET_SIGN_KEY_ID_LEN 8
/* Room for a key id as hex text and its NUL. */
#define ET_SIGN_KEY_ID_TEXT (2 * ET_SIGN_KEY_ID_LEN + 1)
/* Largest DER ECDSA P-256 signature: SEQUENCE of two 33-byte INTEGERs. */
#define ET_SIGN_SIG_MAX 72
/* Largest key file read: a P-256 PEM is about 250 bytes. */
#define ET_SIGN_KEY_FILE_MAX 16384

/**
 * mkdir -p dir, each folder it makes mode 0700: where keys live, only
 * their owner lists them. Folders that exist are left as they are.
 * @return 0 or -errno (-ENAMETOOLONG for a name past PATH_MAX).
 */
int et_sign_make_dir(const char *dir);

/* A P-256 key: a private key (it can sign) or a public key only. */
struct et_sign_key;

/**
 * Make a P-256 key pair and write it: the private key as PEM into
 * priv_path, created with O_EXCL and mode 0600 (never readable by anyone
 * else, not even for a moment), the public key as PEM into pub_path
 * (0644). Neither file may exist: an operator key is never overwritten.
 * @param out  receives the new key (private); may be NULL.
 * @return 0; -EEXIST when either file exists; -errno of the file system.
 */
int et_sign_keygen(const char *priv_path, const char *pub_path, struct et_sign_key **out,
                   char *err, size_t errlen);

/**
 * Load a private key (PEM or DER, P-256, no passphrase). A file readable
 * or writable by group or others is refused with -EACCES and the chmod
 * that fixes it; so is anything but a regular file (no symlinks).
 * @return 0; -EACCES; -EINVAL (not a P-256 private key); -errno.
 */
int et_sign_key_load_private(const char *path, struct et_sign_key **out, char *err,
                             size_t errlen);

/** Load a public key file (PEM or DER SubjectPublicKeyInfo, P-256). */
int et_sign_key_load_public(const char *path, struct et_sign_key **out, char *err, size_t errlen);

/**
 * The same from len bytes (DER, or PEM ending in its NUL); name stands for
 * the file in messages.
 */
int et_sign_key_parse_public(const uint8_t *data, size_t len, const char *name,
                             struct et_sign_key **out, char *err, size_t errlen);

/** The public half in DER (SubjectPublicKeyInfo), malloc'd into *der. */
int et_sign_key_public_der(const struct et_sign_key *k, uint8_t **der, size_t *len);

/** k's key id (see the top of this file). */
void et_sign_key_id(const struct et_sign_key *k, uint8_t id[ET_SIGN_KEY_ID_LEN]);

/** A key id as 16 lower-case hex digits; returns buf. */
const char *et_sign_key_id_text(const uint8_t id[ET_SIGN_KEY_ID_LEN],
                                char buf[ET_SIGN_KEY_ID_TEXT]);

/** Whether k holds a private key. */
bool et_sign_key_is_private(const struct et_sign_key *k);

/** Free k; NULL is a no-op. */
void et_sign_key_destroy(struct et_sign_key *k);

/**
 * Sign len bytes of body with the private key k: ECDSA over SHA-256, DER,
 * into sig (at most ET_SIGN_SIG_MAX bytes), its length into *sig_len.
 * @return 0; -EINVAL when k is public only; -EIO when Mbed TLS fails.
 */
int et_sign_sign(const struct et_sign_key *k, const uint8_t *body, size_t len,
                 uint8_t sig[ET_SIGN_SIG_MAX], size_t *sig_len, char *err, size_t errlen);

/* The public keys a verifier trusts, each named by its key id. */
struct et_sign_trust;

int et_sign_trust_create(struct et_sign_trust **out);

/** Free t and its keys; NULL is a no-op. */
void et_sign_trust_destroy(struct et_sign_trust *t);

/**
 * Trust k from now on; t takes k on success (only its public half is
 * used). On failure the caller keeps k.
 * @return 0; -EEXIST when a key with k's id is trusted already; -ENOMEM.
 */
int et_sign_trust_add(struct et_sign_trust *t, struct et_sign_key *k);

/** Stop trusting the key with this id: 0, or -ENOENT when none has it. */
int et_sign_trust_remove(struct et_sign_trust *t, const uint8_t id[ET_SIGN_KEY_ID_LEN]);

/** How many keys t trusts. */
size_t et_sign_trust_count(const struct et_sign_trust *t);

/** The trusted key with this id, or NULL; borrowed until it is removed or t destroyed. */
const struct et_sign_key *et_sign_trust_find(const struct et_sign_trust *t,
                                             const uint8_t id[ET_SIGN_KEY_ID_LEN]);

/**
 * Check sig over body with the trusted key named key_id.
 * @return 0 when it verifies; -ENOKEY when key_id is not ET_SIGN_KEY_ID_LEN
 *         bytes or names no trusted key; -EBADMSG when the signature does
 *         not verify (a changed body, a changed signature, another key).
 */
int et_sign_verify(const struct et_sign_trust *t, const uint8_t *key_id, size_t key_id_len,
                   const uint8_t *body, size_t len, const uint8_t *sig, size_t sig_len,
                   char *err, size_t errlen);

#endif
