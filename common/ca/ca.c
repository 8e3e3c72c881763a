/*
 * The fleet CA's directory: making it (root and issuing CA), opening it
 * (lock, issuing key and certificate, index), and the index file.
 * Certificates are written in ca_issue.c, the CRL in ca_crl.c, names are
 * checked in ca_name.c.
 */
#define _GNU_SOURCE
#include "ca_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/platform_util.h>

#include "edgetel/text.h"
#include "mbedtls_shim.h"

#define DAY_S 86400LL
#define ROOT_LIFETIME_S (20 * 365 * DAY_S)
#define ISSUING_LIFETIME_S (10 * 365 * DAY_S)
#define INDEX_HEADER "# serial\tkind\tname\tnot_before\tnot_after\trevoked_at\n"

static const char *const kind_names[] = {
    [ET_CA_DEVICE] = "device", [ET_CA_AGGREGATOR] = "aggregator", [ET_CA_SERVER] = "server",
    [ET_CA_ISSUER] = "issuer", [ET_CA_CLAIM] = "claim",
};

const char *et_ca_kind_name(enum et_ca_kind kind)
{
    return (unsigned)kind < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[kind] : "?";
}

int et_ca_kind_parse(const char *s, enum et_ca_kind *out)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (enum et_ca_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int join(char *buf, size_t len, const char *dir, const char *file)
{
    int n = snprintf(buf, len, "%s/%s", dir, file);

    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int et_ca_path(const struct et_ca *ca, const char *file, char *buf, size_t len)
{
    return join(buf, len, ca->dir, file);
}

void ca_serial_text(const uint8_t serial[ET_CA_SERIAL_LEN], char text[ET_CA_SERIAL_TEXT])
{
    for (size_t i = 0; i < ET_CA_SERIAL_LEN; i++)
        snprintf(text + 2 * i, 3, "%02x", serial[i]);
}

int ca_new_serial(mbedtls_ctr_drbg_context *drbg, uint8_t serial[ET_CA_SERIAL_LEN])
{
    if (mbedtls_ctr_drbg_random(drbg, serial, ET_CA_SERIAL_LEN))
        return -EIO;
    /* Positive (RFC 5280 4.1.2.2) and always ET_CA_SERIAL_LEN bytes long. */
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
    return 0;
}

/* ---- files ------------------------------------------------------------------ */

int ca_replace_file(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 8];
    int rc;

    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
        return et_text_reason(err, errlen, -ENAMETOOLONG, "%s: name too long", path);
    unlink(tmp);
    rc = et_sign_write_new(tmp, 0644, data, len, err, errlen);
    if (rc)
        return rc;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        unlink(tmp);
        return et_text_reason(err, errlen, rc, "%s: cannot replace: %s", path, strerror(-rc));
    }
    return 0;
}

/* ---- the index ---------------------------------------------------------------- */

static int index_push(struct et_ca *ca, const struct et_ca_cert *c)
{
    if (ca->n == ca->cap) {
        size_t cap = ca->cap ? 2 * ca->cap : 64;
        struct et_ca_cert *v = realloc(ca->certs, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        ca->certs = v;
        ca->cap = cap;
    }
    ca->certs[ca->n++] = *c;
    return 0;
}

static int index_parse_line(char *line, struct et_ca_cert *c)
{
    char *f[6];
    char *save = NULL;
    char *end;
    size_t n = 0;

    for (char *t = strtok_r(line, "\t", &save); t && n < 6; t = strtok_r(NULL, "\t", &save))
        f[n++] = t;
    if (n != 6 || strlen(f[0]) != ET_CA_SERIAL_TEXT - 1 || strlen(f[2]) > ET_CA_NAME_MAX ||
        et_ca_kind_parse(f[1], &c->kind) != 0)
        return -EINVAL;
    memcpy(c->serial, f[0], ET_CA_SERIAL_TEXT);
    snprintf(c->name, sizeof(c->name), "%s", f[2]);
    errno = 0;
    c->not_before = strtoll(f[3], &end, 10);
    if (*end)
        return -EINVAL;
    c->not_after = strtoll(f[4], &end, 10);
    if (*end)
        return -EINVAL;
    c->revoked_at = strtoll(f[5], &end, 10);
    return *end || errno ? -EINVAL : 0;
}

/* ---- tables: one line a row, tab-separated, '#' comments ------------------------------ */

int ca_table_load(const struct et_ca *ca, const char *file, const char *what,
                  const char *fields, int (*row)(void *ctx, char *line), void *ctx, char *err,
                  size_t errlen)
{
    char path[PATH_MAX], line[CA_LINE_MAX];
    unsigned lineno = 0;
    FILE *f;
    int rc = 0;

    if ((rc = join(path, sizeof(path), ca->dir, file)))
        return et_text_reason(err, errlen, rc, "%s: name too long", ca->dir);
    f = fopen(path, "re");
    if (!f)
        return et_text_reason(err, errlen, -errno, "%s %s: %s", what, path, strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        rc = row(ctx, line);
        if (rc == -ENOMEM) {
            et_text_reason(err, errlen, rc, "out of memory");
            break;
        }
        if (rc) {
            rc = et_text_reason(err, errlen, -EINVAL, "%s %s:%u: not a line of %s", what,
                                path, lineno, fields);
            break;
        }
    }
    fclose(f);
    return rc;
}

int ca_table_save(const struct et_ca *ca, const char *file, const char *header,
                  void (*rows)(void *ctx, FILE *out), void *ctx, char *err, size_t errlen)
{
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    int rc;

    if (!m)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    fputs(header, m);
    rows(ctx, m);
    if (fclose(m) != 0) {
        free(text);
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    }
    rc = join(path, sizeof(path), ca->dir, file);
    if (rc == 0)
        rc = ca_replace_file(path, text, len, err, errlen);
    free(text);
    return rc;
}

static int index_row(void *ctx, char *line)
{
    struct et_ca_cert c;

    return index_parse_line(line, &c) ? -EINVAL : index_push(ctx, &c);
}

static int index_load(struct et_ca *ca, char *err, size_t errlen)
{
    return ca_table_load(ca, ET_CA_INDEX, "CA index", "serial, kind, name, not_before, "
                         "not_after, revoked_at", index_row, ca, err, errlen);
}

static void index_rows(void *ctx, FILE *m)
{
    const struct et_ca *ca = ctx;

    for (size_t i = 0; i < ca->n; i++) {
        const struct et_ca_cert *c = &ca->certs[i];

        fprintf(m, "%s\t%s\t%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n", c->serial,
                et_ca_kind_name(c->kind), c->name, c->not_before, c->not_after, c->revoked_at);
    }
}

int ca_index_save(struct et_ca *ca, char *err, size_t errlen)
{
    return ca_table_save(ca, ET_CA_INDEX, INDEX_HEADER, index_rows, ca, err, errlen);
}

int ca_index_add(struct et_ca *ca, const struct et_ca_cert *c, char *err, size_t errlen)
{
    int rc = index_push(ca, c);

    if (rc)
        return et_text_reason(err, errlen, rc, "out of memory");
    rc = ca_index_save(ca, err, errlen);
    if (rc)
        ca->n--;
    return rc;
}

int et_ca_list(const struct et_ca *ca, int (*fn)(void *ctx, const struct et_ca_cert *c),
               void *ctx)
{
    for (size_t i = 0; i < ca->n; i++) {
        int rc = fn(ctx, &ca->certs[i]);

        if (rc)
            return rc;
    }
    return 0;
}

/* ---- init ----------------------------------------------------------------------- */

static const char *const ca_files[] = {
    ET_CA_ROOT_KEY, ET_CA_ISSUING_KEY, ET_CA_ROOT_CRT, ET_CA_ISSUING_CRT, ET_CA_TRUST,
    ET_CA_INDEX, ET_CA_CRL,
};
#define N_CA_FILES (sizeof(ca_files) / sizeof(ca_files[0]))

/* One CA certificate (root: self-signed; issuing: by the root) as PEM into pem. */
static int make_ca_cert(const char *subject, const char *issuer, struct et_sign_key *key,
                        struct et_sign_key *issuer_key, int pathlen, int64_t now,
                        int64_t lifetime_s, struct et_sign_rng *r, unsigned char *pem,
                        char *err, size_t errlen)
{
    struct ca_cert_spec spec = {
        .subject = subject, .issuer = issuer, .subject_key = &key->pk,
        .issuer_key = &issuer_key->pk, .is_ca = true, .max_pathlen = pathlen,
        .key_usage = MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN,
        .not_before = now - ET_CA_BACKDATE_S, .not_after = now + lifetime_s,
    };

    if (ca_new_serial(&r->drbg, spec.serial))
        return et_text_reason(err, errlen, -EIO, "random generator failed");
    return ca_write_crt(&spec, pem, ET_CA_PEM_MAX, &r->drbg, err, errlen);
}

static int init_files(const char *dir, const struct et_ca_init_opts *o, int64_t now,
                      char *err, size_t errlen)
{
    unsigned char root_pem[ET_CA_PEM_MAX], issuing_pem[ET_CA_PEM_MAX];
    char trust[2 * ET_CA_PEM_MAX];
    char path[PATH_MAX];
    struct et_sign_key *root = NULL, *issuing = NULL;
    struct et_sign_rng r;
    int64_t root_life = o && o->root_lifetime_s > 0 ? o->root_lifetime_s : ROOT_LIFETIME_S;
    int64_t issuing_life =
        o && o->issuing_lifetime_s > 0 ? o->issuing_lifetime_s : ISSUING_LIFETIME_S;
    int rc;

    if (issuing_life > root_life)
        issuing_life = root_life;
    rc = et_sign_rng_start(&r, err, errlen);
    if (rc)
        goto out;
    if ((rc = et_sign_key_generate(&root, "root CA key", err, errlen)) ||
        (rc = et_sign_key_generate(&issuing, "issuing CA key", err, errlen)) ||
        (rc = make_ca_cert(ET_CA_ROOT_SUBJECT, ET_CA_ROOT_SUBJECT, root, root, 1, now,
                           root_life, &r, root_pem, err, errlen)) ||
        (rc = make_ca_cert(ET_CA_ISSUING_SUBJECT, ET_CA_ROOT_SUBJECT, issuing, root, 0, now,
                           issuing_life, &r, issuing_pem, err, errlen)))
        goto out;
    snprintf(trust, sizeof(trust), "%s%s", (char *)issuing_pem, (char *)root_pem);
    if ((rc = join(path, sizeof(path), dir, ET_CA_ROOT_KEY)) ||
        (rc = et_sign_key_write_private(root, path, err, errlen)) ||
        (rc = join(path, sizeof(path), dir, ET_CA_ISSUING_KEY)) ||
        (rc = et_sign_key_write_private(issuing, path, err, errlen)) ||
        (rc = join(path, sizeof(path), dir, ET_CA_ROOT_CRT)) ||
        (rc = et_sign_write_new(path, 0644, root_pem, strlen((char *)root_pem), err, errlen)) ||
        (rc = join(path, sizeof(path), dir, ET_CA_ISSUING_CRT)) ||
        (rc = et_sign_write_new(path, 0644, issuing_pem, strlen((char *)issuing_pem), err,
                                errlen)) ||
        (rc = join(path, sizeof(path), dir, ET_CA_TRUST)) ||
        (rc = et_sign_write_new(path, 0644, (unsigned char *)trust, strlen(trust), err,
                                errlen)) ||
        (rc = join(path, sizeof(path), dir, ET_CA_INDEX)) ||
        (rc = et_sign_write_new(path, 0644, (const unsigned char *)INDEX_HEADER,
                                strlen(INDEX_HEADER), err, errlen)))
        goto out;
out:
    if (rc == -ENAMETOOLONG)
        et_text_reason(err, errlen, rc, "%s: name too long", dir);
    et_sign_key_destroy(root);
    et_sign_key_destroy(issuing);
    et_sign_rng_end(&r);
    return rc;
}

int et_ca_init(const char *dir, const struct et_ca_init_opts *opts, int64_t now, char *err,
               size_t errlen)
{
    char path[PATH_MAX];
    struct et_ca *ca = NULL;
    struct stat st;
    int rc;

    rc = et_sign_make_dir(dir);
    if (rc)
        return et_text_reason(err, errlen, rc, "%s: cannot create: %s", dir, strerror(-rc));
    for (size_t i = 0; i < N_CA_FILES; i++) {
        if ((rc = join(path, sizeof(path), dir, ca_files[i])))
            return et_text_reason(err, errlen, rc, "%s: name too long", dir);
        if (lstat(path, &st) == 0)
            return et_text_reason(err, errlen, -EEXIST, "%s exists: %s holds a CA already "
                                  "(a CA is never overwritten; give another --dir)", path, dir);
    }
    rc = init_files(dir, opts, now, err, errlen);
    if (rc == 0)
        rc = et_ca_open(&ca, dir, err, errlen);
    if (rc == 0)
        rc = et_ca_write_crl(ca, now, 0, err, errlen);
    et_ca_close(ca);
    if (rc) {
        /* Half a CA is no CA: take away what this call made, so init can run again. */
        char keep[512];

        snprintf(keep, sizeof(keep), "%s", err);
        for (size_t i = 0; i < N_CA_FILES; i++)
            if (join(path, sizeof(path), dir, ca_files[i]) == 0)
                unlink(path);
        snprintf(err, errlen, "%s", keep);
    }
    return rc;
}

/* ---- open ------------------------------------------------------------------------ */

static int load_issuing(struct et_ca *ca, char *err, size_t errlen)
{
    char path[PATH_MAX], why[100];
    unsigned char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int rc;

    if ((rc = join(path, sizeof(path), ca->dir, ET_CA_ISSUING_KEY)))
        return et_text_reason(err, errlen, rc, "%s: name too long", ca->dir);
    buf = malloc(ET_SIGN_KEY_FILE_MAX);
    if (!buf)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    rc = et_sign_read_key_file(path, true, buf, ET_SIGN_KEY_FILE_MAX, &len, err, errlen);
    if (rc)
        goto out;
    ca->key = et_sign_key_new();
    if (!ca->key) {
        rc = et_text_reason(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    {
        struct et_sign_rng r;

        rc = et_sign_rng_start(&r, err, errlen);
        if (rc == 0) {
            int tls = et_shim_parse_private(&ca->key->pk, buf, len, &r.drbg);

            if (tls)
                rc = et_text_reason(err, errlen, -EINVAL, "key %s: not a private key: %s",
                                    path, et_sign_tls_why(tls, why, sizeof(why)));
        }
        et_sign_rng_end(&r);
    }
    if (rc)
        goto out;
    ca->key->priv = true;
    rc = et_sign_key_finish(ca->key, path, err, errlen);
    if (rc)
        goto out;
    /* The root's key is used only by init; still, a readable one is a leak. */
    if (join(path, sizeof(path), ca->dir, ET_CA_ROOT_KEY) == 0 && stat(path, &st) == 0 &&
        (st.st_mode & 077)) {
        rc = et_text_reason(err, errlen, -EACCES, "key %s is mode %04o: readable by group or "
                            "others; chmod 600 %s (and consider the key known to whoever "
                            "could read it)", path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if ((rc = join(path, sizeof(path), ca->dir, ET_CA_ISSUING_CRT)))
        goto out;
    rc = mbedtls_x509_crt_parse_file(&ca->crt, path);
    if (rc) {
        rc = et_text_reason(err, errlen, -EINVAL, "CA certificate %s: %s", path,
                            et_sign_tls_why(rc, why, sizeof(why)));
        goto out;
    }
    {
        unsigned char pem[ET_CA_PEM_MAX];
        size_t olen = 0;

        if (mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n",
                                     "-----END CERTIFICATE-----\n", ca->crt.raw.p,
                                     ca->crt.raw.len, pem, sizeof(pem), &olen) ||
            !(ca->crt_pem = strdup((char *)pem))) {
            rc = et_text_reason(err, errlen, -ENOMEM, "CA certificate %s: cannot copy", path);
            goto out;
        }
    }
out:
    if (buf) {
        mbedtls_platform_zeroize(buf, ET_SIGN_KEY_FILE_MAX);
        free(buf);
    }
    return rc;
}

int et_ca_open(struct et_ca **out, const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct et_ca *ca;
    int rc;

    *out = NULL;
    ca = calloc(1, sizeof(*ca));
    if (!ca)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    ca->lock_fd = -1;
    mbedtls_x509_crt_init(&ca->crt);
    if (snprintf(ca->dir, sizeof(ca->dir), "%s", dir) >= (int)sizeof(ca->dir) ||
        join(path, sizeof(path), dir, "index.lock") != 0) {
        rc = et_text_reason(err, errlen, -ENAMETOOLONG, "%s: name too long", dir);
        goto fail;
    }
    if (access(dir, F_OK) != 0) {
        rc = et_text_reason(err, errlen, -errno, "CA directory %s: %s%s", dir, strerror(errno),
                            errno == ENOENT ? " (make one with edgetelctl ca init)" : "");
        goto fail;
    }
    ca->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (ca->lock_fd < 0 || flock(ca->lock_fd, LOCK_EX) != 0) {
        rc = et_text_reason(err, errlen, -errno, "CA lock %s: %s", path, strerror(errno));
        goto fail;
    }
    if ((rc = load_issuing(ca, err, errlen)) || (rc = index_load(ca, err, errlen)))
        goto fail;
    *out = ca;
    return 0;
fail:
    et_ca_close(ca);
    return rc;
}

void et_ca_close(struct et_ca *ca)
{
    if (!ca)
        return;
    if (ca->lock_fd >= 0)
        close(ca->lock_fd);   /* releases the flock */
    et_sign_key_destroy(ca->key);
    mbedtls_x509_crt_free(&ca->crt);
    free(ca->crt_pem);
    free(ca->certs);
    free(ca);
}
