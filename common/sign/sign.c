/*
 * Operator keys and ECDSA P-256 signatures on Mbed TLS. Calls whose
 * signatures differ in Mbed TLS 3.x go through mbedtls_shim.c.
 */
#include "edgetel/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>

#include "edgetel/text.h"
#include "mbedtls_shim.h"
#include "sign_internal.h"

/* DER SubjectPublicKeyInfo of a P-256 key is 91 bytes; PEM of either key under 300. */
#define PUB_DER_MAX 160
#define PEM_MAX 1024

struct et_sign_trust {
    struct et_sign_key **keys;
    size_t n;
};

/* Mbed TLS's text for one of its error codes, for a message to a person. */
const char *et_sign_tls_why(int code, char *buf, size_t len)
{
    mbedtls_strerror(code, buf, len);
    return buf;
}

int et_sign_rng_start(struct et_sign_rng *r, char *err, size_t errlen)
{
    static const unsigned char pers[] = "edgetel-sign";
    char why[100];
    int rc;

    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    rc = mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy, pers,
                               sizeof(pers) - 1);
    if (rc)
        return et_text_reason(err, errlen, -EIO,
                              "random generator: cannot seed from the system's "
                              "entropy: %s",
                              et_sign_tls_why(rc, why, sizeof(why)));
    return 0;
}

void et_sign_rng_end(struct et_sign_rng *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
}

struct et_sign_key *et_sign_key_new(void)
{
    struct et_sign_key *k = calloc(1, sizeof(*k));

    if (k)
        mbedtls_pk_init(&k->pk);
    return k;
}

void et_sign_key_destroy(struct et_sign_key *k)
{
    if (!k)
        return;
    mbedtls_pk_free(&k->pk);
    free(k);
}

/* SubjectPublicKeyInfo DER of k into buf; Mbed TLS writes it at the end. */
static int pub_der(const struct et_sign_key *k, unsigned char *buf, size_t size,
                   const unsigned char **der)
{
    /* mbedtls_pk_write_pubkey_der takes a non-const context in 2.28 and 3.x. */
    int n = mbedtls_pk_write_pubkey_der((mbedtls_pk_context *)&k->pk, buf, size);

    if (n <= 0)
        return -EINVAL;
    *der = buf + size - (size_t)n;
    return n;
}

/* Fill k->id from the public key; checks that it is P-256 first. */
int et_sign_key_finish(struct et_sign_key *k, const char *name, char *err, size_t errlen)
{
    unsigned char buf[PUB_DER_MAX], hash[32];
    const unsigned char *der;
    int n;

    if (!et_shim_is_p256(&k->pk))
        return et_text_reason(err, errlen, -EINVAL,
                              "key %s: not an EC key on P-256 (make one with "
                              "edgetelctl keys init)",
                              name);
    n = pub_der(k, buf, sizeof(buf), &der);
    if (n < 0 || et_shim_sha256(der, (size_t)n, hash))
        return et_text_reason(err, errlen, -EINVAL, "key %s: cannot encode its public key", name);
    memcpy(k->id, hash, ET_SIGN_KEY_ID_LEN);
    return 0;
}

int et_sign_key_public_der(const struct et_sign_key *k, uint8_t **der, size_t *len)
{
    unsigned char buf[PUB_DER_MAX];
    const unsigned char *p;
    int n = pub_der(k, buf, sizeof(buf), &p);

    if (n < 0)
        return n;
    *der = malloc((size_t)n);
    if (!*der)
        return -ENOMEM;
    memcpy(*der, p, (size_t)n);
    *len = (size_t)n;
    return 0;
}

void et_sign_key_id(const struct et_sign_key *k, uint8_t id[ET_SIGN_KEY_ID_LEN])
{
    memcpy(id, k->id, ET_SIGN_KEY_ID_LEN);
}

const char *et_sign_key_id_text(const uint8_t id[ET_SIGN_KEY_ID_LEN],
                                char buf[ET_SIGN_KEY_ID_TEXT])
{
    for (size_t i = 0; i < ET_SIGN_KEY_ID_LEN; i++)
        snprintf(buf + 2 * i, 3, "%02x", id[i]);
    return buf;
}

bool et_sign_key_is_private(const struct et_sign_key *k)
{
    return k->priv;
}

/* ---- files ------------------------------------------------------------------ */

int et_sign_make_dir(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;

        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = c;
        if (!c)
            return 0;
    }
}

/* Write len bytes to a new file (O_EXCL) of the given mode; removed again on failure. */
int et_sign_write_new(const char *path, mode_t mode, const unsigned char *data, size_t len,
                      char *err, size_t errlen)
{
    size_t done = 0;
    int fd, rc;

    /*
     * O_EXCL: never overwrite, never follow a link planted in its place.
     * The mode is given to open() itself, so the file is born with at most
     * these bits (the umask can only take more away): a private key is
     * never readable by anyone else, not even between open and chmod.
     */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = -errno;
        return et_text_reason(err, errlen, rc, "%s: cannot create: %s%s", path, strerror(-rc),
                              rc == -EEXIST ? " (refusing to overwrite a key; move it away first)"
                                            : "");
    }
    /* A umask such as 0277 would leave the owner unable to read it back. */
    if (fchmod(fd, mode) != 0) {
        rc = -errno;
        et_text_reason(err, errlen, rc, "%s: chmod %o: %s", path, (unsigned)mode, strerror(-rc));
        goto remove;
    }
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            et_text_reason(err, errlen, rc, "%s: write: %s", path, strerror(-rc));
            goto remove;
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        et_text_reason(err, errlen, rc, "%s: fsync: %s", path, strerror(-rc));
        goto remove;
    }
    if (close(fd) != 0) {
        rc = -errno;
        fd = -1;
        et_text_reason(err, errlen, rc, "%s: close: %s", path, strerror(-rc));
        goto remove;
    }
    return 0;
remove:
    if (fd >= 0)
        close(fd);
    unlink(path);
    return rc;
}

/*
 * Read a whole key file into buf with a NUL after it (PEM parsing wants
 * it). With private set, refuse a file others may read: a key that has
 * been readable by anyone else must be treated as known to them.
 */
int et_sign_read_key_file(const char *path, bool private, unsigned char *buf, size_t size,
                          size_t *len, char *err, size_t errlen)
{
    struct stat st;
    size_t got = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        return et_text_reason(err, errlen, rc, "key %s: %s%s", path, strerror(-rc),
                              rc == -ELOOP ? " (a symbolic link: give the file itself)" : "");
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        et_text_reason(err, errlen, rc, "key %s: stat: %s", path, strerror(-rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = et_text_reason(err, errlen, -EINVAL, "key %s: not a regular file", path);
        goto out;
    }
    if (private && (st.st_mode & 077)) {
        rc = et_text_reason(err, errlen, -EACCES,
                            "key %s is mode %04o: readable by group or others; "
                            "chmod 600 %s (and consider the key known to whoever could read it)",
                            path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size <= 0 || (size_t)st.st_size >= size) {
        rc =
            et_text_reason(err, errlen, -EINVAL, "key %s: %lld bytes: not a key file (at most %zu)",
                           path, (long long)st.st_size, size - 1);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            et_text_reason(err, errlen, rc, "key %s: read: %s", path,
                           r < 0 ? strerror(-rc) : "cut short");
            goto out;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    /* Mbed TLS counts the NUL of PEM text in the length; DER has none. */
    *len = strstr((const char *)buf, "-----BEGIN") ? got + 1 : got;
    rc = 0;
out:
    close(fd);
    return rc;
}

int et_sign_key_generate(struct et_sign_key **out, const char *name, char *err, size_t errlen)
{
    struct et_sign_key *k = NULL;
    struct et_sign_rng r;
    char why[100];
    int rc;

    *out = NULL;
    rc = et_sign_rng_start(&r, err, errlen);
    if (rc)
        goto out_rng;
    k = et_sign_key_new();
    if (!k) {
        rc = et_text_reason(err, errlen, -ENOMEM, "out of memory");
        goto out_rng;
    }
    rc = mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (!rc)
        rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(k->pk),
                                 mbedtls_ctr_drbg_random, &r.drbg);
    if (rc) {
        rc = et_text_reason(err, errlen, -EIO, "key generation failed: %s",
                            et_sign_tls_why(rc, why, sizeof(why)));
        goto out_key;
    }
    k->priv = true;
    rc = et_sign_key_finish(k, name, err, errlen);
    if (rc)
        goto out_key;
    *out = k;
    k = NULL;
out_key:
    et_sign_key_destroy(k);
out_rng:
    et_sign_rng_end(&r);
    return rc;
}

int et_sign_key_write_private(const struct et_sign_key *k, const char *path, char *err,
                              size_t errlen)
{
    unsigned char pem[PEM_MAX];
    int rc;

    /* mbedtls_pk_write_key_pem takes a non-const context in 2.28 and 3.x. */
    if (mbedtls_pk_write_key_pem((mbedtls_pk_context *)&k->pk, pem, sizeof(pem)))
        return et_text_reason(err, errlen, -EIO, "%s: cannot write the key as PEM", path);
    rc = et_sign_write_new(path, 0600, pem, strlen((char *)pem), err, errlen);
    mbedtls_platform_zeroize(pem, sizeof(pem));
    return rc;
}

int et_sign_keygen(const char *priv_path, const char *pub_path, struct et_sign_key **out,
                   char *err, size_t errlen)
{
    unsigned char pub_pem[PEM_MAX];
    struct et_sign_key *k = NULL;
    struct stat st;
    int rc;

    /* Both names free before anything is written: no half-made pair. */
    if (lstat(pub_path, &st) == 0)
        return et_text_reason(err, errlen, -EEXIST,
                              "%s exists: refusing to overwrite a key (move it "
                              "away first)",
                              pub_path);
    if (lstat(priv_path, &st) == 0)
        return et_text_reason(err, errlen, -EEXIST,
                              "%s exists: refusing to overwrite a key (move it "
                              "away first)",
                              priv_path);
    rc = et_sign_key_generate(&k, priv_path, err, errlen);
    if (rc)
        return rc;
    if (mbedtls_pk_write_pubkey_pem(&k->pk, pub_pem, sizeof(pub_pem))) {
        rc = et_text_reason(err, errlen, -EIO, "cannot write the new key as PEM");
        goto out;
    }
    rc = et_sign_key_write_private(k, priv_path, err, errlen);
    if (rc)
        goto out;
    rc = et_sign_write_new(pub_path, 0644, pub_pem, strlen((char *)pub_pem), err, errlen);
    if (rc) {
        /* Without its public half the operator could not hand the key out. */
        unlink(priv_path);
        goto out;
    }
    if (out) {
        *out = k;
        k = NULL;
    }
out:
    et_sign_key_destroy(k);
    return rc;
}

int et_sign_key_load_private(const char *path, struct et_sign_key **out, char *err,
                             size_t errlen)
{
    unsigned char buf[ET_SIGN_KEY_FILE_MAX];
    struct et_sign_key *k = NULL;
    struct et_sign_rng r;
    size_t len = 0;
    char why[100];
    int rc;

    *out = NULL;
    rc = et_sign_read_key_file(path, true, buf, sizeof(buf), &len, err, errlen);
    if (rc)
        goto out_buf;
    rc = et_sign_rng_start(&r, err, errlen);
    if (rc)
        goto out_rng;
    k = et_sign_key_new();
    if (!k) {
        rc = et_text_reason(err, errlen, -ENOMEM, "out of memory");
        goto out_rng;
    }
    rc = et_shim_parse_private(&k->pk, buf, len, &r.drbg);
    if (rc) {
        rc =
            et_text_reason(err, errlen, -EINVAL, "key %s: not a private key without passphrase: %s",
                           path, et_sign_tls_why(rc, why, sizeof(why)));
        goto out_key;
    }
    k->priv = true;
    rc = et_sign_key_finish(k, path, err, errlen);
    if (rc)
        goto out_key;
    *out = k;
    k = NULL;
out_key:
    et_sign_key_destroy(k);
out_rng:
    et_sign_rng_end(&r);
out_buf:
    mbedtls_platform_zeroize(buf, sizeof(buf));
    return rc;
}

int et_sign_key_parse_public(const uint8_t *data, size_t len, const char *name,
                             struct et_sign_key **out, char *err, size_t errlen)
{
    struct et_sign_key *k;
    char why[100];
    int rc;

    *out = NULL;
    k = et_sign_key_new();
    if (!k)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    rc = mbedtls_pk_parse_public_key(&k->pk, data, len);
    if (rc) {
        rc = et_text_reason(err, errlen, -EINVAL, "key %s: not a public key: %s", name,
                            et_sign_tls_why(rc, why, sizeof(why)));
        goto fail;
    }
    rc = et_sign_key_finish(k, name, err, errlen);
    if (rc)
        goto fail;
    *out = k;
    return 0;
fail:
    et_sign_key_destroy(k);
    return rc;
}

int et_sign_key_load_public(const char *path, struct et_sign_key **out, char *err, size_t errlen)
{
    unsigned char buf[ET_SIGN_KEY_FILE_MAX];
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = et_sign_read_key_file(path, false, buf, sizeof(buf), &len, err, errlen);
    if (rc)
        return rc;
    return et_sign_key_parse_public(buf, len, path, out, err, errlen);
}

/* ---- signatures ------------------------------------------------------------- */

int et_sign_sign(const struct et_sign_key *k, const uint8_t *body, size_t len,
                 uint8_t sig[ET_SIGN_SIG_MAX], size_t *sig_len, char *err, size_t errlen)
{
    unsigned char hash[32];
    char id[ET_SIGN_KEY_ID_TEXT], why[100];
    struct et_sign_rng r;
    int rc;

    if (!k->priv)
        return et_text_reason(err, errlen, -EINVAL,
                              "key %s is a public key: signing needs the private "
                              "key",
                              et_sign_key_id_text(k->id, id));
    if (et_shim_sha256(body, len, hash))
        return et_text_reason(err, errlen, -EIO, "SHA-256 failed");
    rc = et_sign_rng_start(&r, err, errlen);
    if (rc)
        goto out;
    /* The shim's signing takes a non-const context, as Mbed TLS does. */
    rc = et_shim_sign_hash((mbedtls_pk_context *)&k->pk, hash, sig, ET_SIGN_SIG_MAX, sig_len,
                           &r.drbg);
    if (rc)
        rc = et_text_reason(err, errlen, -EIO, "signing with key %s failed: %s",
                            et_sign_key_id_text(k->id, id), et_sign_tls_why(rc, why, sizeof(why)));
out:
    et_sign_rng_end(&r);
    return rc;
}

int et_sign_trust_create(struct et_sign_trust **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void et_sign_trust_destroy(struct et_sign_trust *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        et_sign_key_destroy(t->keys[i]);
    free(t->keys);
    free(t);
}

const struct et_sign_key *et_sign_trust_find(const struct et_sign_trust *t,
                                             const uint8_t id[ET_SIGN_KEY_ID_LEN])
{
    for (size_t i = 0; i < t->n; i++) {
        if (memcmp(t->keys[i]->id, id, ET_SIGN_KEY_ID_LEN) == 0)
            return t->keys[i];
    }
    return NULL;
}

int et_sign_trust_add(struct et_sign_trust *t, struct et_sign_key *k)
{
    struct et_sign_key **v;

    if (et_sign_trust_find(t, k->id))
        return -EEXIST;
    v = realloc(t->keys, (t->n + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    t->keys = v;
    t->keys[t->n++] = k;
    return 0;
}

int et_sign_trust_remove(struct et_sign_trust *t, const uint8_t id[ET_SIGN_KEY_ID_LEN])
{
    for (size_t i = 0; i < t->n; i++) {
        if (memcmp(t->keys[i]->id, id, ET_SIGN_KEY_ID_LEN) != 0)
            continue;
        et_sign_key_destroy(t->keys[i]);
        memmove(&t->keys[i], &t->keys[i + 1], (t->n - i - 1) * sizeof(t->keys[0]));
        t->n--;
        return 0;
    }
    return -ENOENT;
}

size_t et_sign_trust_count(const struct et_sign_trust *t)
{
    return t->n;
}

int et_sign_verify(const struct et_sign_trust *t, const uint8_t *key_id, size_t key_id_len,
                   const uint8_t *body, size_t len, const uint8_t *sig, size_t sig_len,
                   char *err, size_t errlen)
{
    const struct et_sign_key *k;
    unsigned char hash[32];
    char id[ET_SIGN_KEY_ID_TEXT];

    if (key_id_len != ET_SIGN_KEY_ID_LEN)
        return et_text_reason(err, errlen, -ENOKEY, "key id of %zu bytes: expected %d", key_id_len,
                              ET_SIGN_KEY_ID_LEN);
    k = et_sign_trust_find(t, key_id);
    if (!k)
        return et_text_reason(err, errlen, -ENOKEY, "signed by key %s, which is not trusted here",
                              et_sign_key_id_text(key_id, id));
    if (sig_len == 0 || sig_len > ET_SIGN_SIG_MAX)
        return et_text_reason(err, errlen, -EBADMSG,
                              "signature of %zu bytes: a P-256 signature has "
                              "1 to %d",
                              sig_len, ET_SIGN_SIG_MAX);
    if (et_shim_sha256(body, len, hash))
        return et_text_reason(err, errlen, -EIO, "SHA-256 failed");
    /* mbedtls_pk_verify takes a non-const context in 2.28 and 3.x alike. */
    if (mbedtls_pk_verify((mbedtls_pk_context *)&k->pk, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig,
                          sig_len) != 0)
        return et_text_reason(err, errlen, -EBADMSG,
                              "signature does not verify with key %s: the "
                              "body or the signature was changed, or another key signed it",
                              et_sign_key_id_text(key_id, id));
    return 0;
}
