/*
 * The board's own identity in DATA_DIR/identity (identity.h): generations
 * of key and certificate, the one that has worked, the claim.
 */
/* A 64-bit time_t on 32-bit ARM too: certificate times are shown past 2038.
 * _TIME_BITS=64 needs _FILE_OFFSET_BITS=64 (set for all); before any #include. */
#define _TIME_BITS 64
#include "identity.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/ini.h"
#include "edgetel/log.h"
#include "edgetel/sign.h"
#include "edgetel/text.h"

#define IDENTITY_DIR "identity"
#define CURRENT "current"
#define CLAIM_CRT "claim.crt"
#define CLAIM_KEY "claim.key"
/* A certificate chain as a file: a few KiB. */
#define CRT_FILE_MAX 16384

struct et_identity {
    char dir[PATH_MAX];
    char device[ET_CA_NAME_MAX + 1];
    char ca_file[PATH_MAX];
    int current;                      /* the generation that worked; 0: none */
    struct et_ca_leaf current_leaf;
    int next;                         /* > current: a key waiting, or on trial; 0: none */
    bool next_crt;                    /* next has its certificate: on trial */
    struct et_ca_leaf next_leaf;
    bool claim;
    char cert[PATH_MAX + 32], key[PATH_MAX + 32];     /* what to connect with now */
    char claim_cert[PATH_MAX + 32], claim_key[PATH_MAX + 32];
    char scratch[PATH_MAX + 32];
};

/* dir/N.ext (N > 0) or dir/name into the identity's scratch buffer. */
static const char *gen_path(struct et_identity *id, int n, const char *ext)
{
    snprintf(id->scratch, sizeof(id->scratch), "%s/%d.%s", id->dir, n, ext);
    return id->scratch;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void iso(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "%" PRId64, t);
}

/* Write text to dir/name through a temporary name, fsync'ed, then rename: all or nothing. */
static int replace_file(const char *dir, const char *name, const char *text, size_t len,
                        char *err, size_t errlen)
{
    char path[PATH_MAX + 48], tmp[PATH_MAX + 64];
    int fd, rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return et_text_reason(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
    errno = 0;
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        rc = -(errno ? errno : EIO);
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return et_text_reason(err, errlen, rc, "%s: %s", path, strerror(-rc));
    }
    /* The rename itself is durable once the directory is. */
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    return 0;
}

/* The generation's certificate checked as one issued for its key. */
static int gen_leaf(struct et_identity *id, int n, struct et_ca_leaf *leaf, char *err,
                    size_t errlen)
{
    char crt[PATH_MAX + 32], key[PATH_MAX + 32], *text = NULL;
    size_t len = 0;
    int rc;

    snprintf(crt, sizeof(crt), "%s", gen_path(id, n, "crt"));
    snprintf(key, sizeof(key), "%s", gen_path(id, n, "key"));
    rc = et_ini_read_file(crt, CRT_FILE_MAX, &text, &len, err, errlen);
    if (rc)
        return rc;
    rc = et_ca_leaf_check(text, len, id->device, key, id->ca_file, leaf, err, errlen);
    free(text);
    return rc;
}

static void remove_gen(struct et_identity *id, int n)
{
    unlink(gen_path(id, n, "crt"));
    unlink(gen_path(id, n, "key"));
}

/* cert and key: what to connect with now. */
static void choose(struct et_identity *id)
{
    int n = id->next_crt ? id->next : id->current;

    id->cert[0] = id->key[0] = '\0';
    if (n) {
        snprintf(id->cert, sizeof(id->cert), "%s", gen_path(id, n, "crt"));
        snprintf(id->key, sizeof(id->key), "%s", gen_path(id, n, "key"));
    }
}

/* ---- opening ------------------------------------------------------------------------ */

static int read_current(struct et_identity *id)
{
    char path[PATH_MAX + 16], buf[32] = "", *end;
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s/" CURRENT, id->dir);
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    n = strtol(buf, &end, 10);
    if (n <= 0 || n > INT_MAX / 2 || (*end && *end != '\n')) {
        et_warn("identity", "%s holds no generation (\"%.20s\"): taken as none", path, buf);
        return 0;
    }
    return (int)n;
}

/*
 * The next generation: always current + 1 (et_identity_next_csr makes no
 * other), when its key is there; 0 otherwise. Files of any other
 * generation, and temporary files, are strays of a cut: they go.
 */
static int scan(struct et_identity *id, int current)
{
    DIR *d = opendir(id->dir);
    struct dirent *e;

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char *end, path[PATH_MAX + 300];
        long n = strtol(e->d_name, &end, 10);
        bool gen = n > 0 && (!strcmp(end, ".key") || !strcmp(end, ".crt"));
        size_t len = strlen(e->d_name);

        if ((gen && n != current && n != current + 1) ||
            (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0)) {
            snprintf(path, sizeof(path), "%s/%s", id->dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    return exists(gen_path(id, current + 1, "key")) ? current + 1 : 0;
}

int et_identity_open(struct et_identity **out, const char *data_dir, const char *device_id,
                     const char *ca_file, char *err, size_t errlen)
{
    struct et_identity *id = calloc(1, sizeof(*id));
    char why[400];
    int rc;

    *out = NULL;
    if (!id)
        return et_text_reason(err, errlen, -ENOMEM, "out of memory");
    snprintf(id->dir, sizeof(id->dir), "%s/" IDENTITY_DIR, data_dir);
    snprintf(id->device, sizeof(id->device), "%s", device_id);
    snprintf(id->ca_file, sizeof(id->ca_file), "%s", ca_file ? ca_file : "");
    rc = et_sign_make_dir(id->dir);
    if (rc) {
        free(id);
        return et_text_reason(err, errlen, rc, "%s: cannot create: %s", data_dir,
                              strerror(-rc));
    }
    id->current = read_current(id);
    if (id->current && gen_leaf(id, id->current, &id->current_leaf, why, sizeof(why)) != 0) {
        et_warn("identity", "generation %d is not usable (%s): the board has no certificate "
                "until it gets a new one", id->current, why);
        id->current = 0;
    }
    id->next = scan(id, id->current);
    if (id->next && exists(gen_path(id, id->next, "crt"))) {
        if (gen_leaf(id, id->next, &id->next_leaf, why, sizeof(why)) == 0)
            id->next_crt = true;
        else
            unlink(gen_path(id, id->next, "crt"));
    }
    /* An enrollment whose commit was cut short: nothing else to fall back to. */
    if (id->next_crt && !id->current && et_identity_commit(id, err, errlen) != 0) {
        et_identity_destroy(id);
        return -EIO;
    }
    snprintf(id->claim_cert, sizeof(id->claim_cert), "%s/" CLAIM_CRT, id->dir);
    snprintf(id->claim_key, sizeof(id->claim_key), "%s/" CLAIM_KEY, id->dir);
    et_identity_find_claim(id);
    choose(id);
    *out = id;
    return 0;
}

void et_identity_destroy(struct et_identity *id)
{
    free(id);
}

bool et_identity_find_claim(struct et_identity *id)
{
    id->claim = exists(id->claim_cert) && exists(id->claim_key);
    return id->claim;
}

/* ---- what there is ------------------------------------------------------------------ */

const char *et_identity_cert(const struct et_identity *id)
{
    return id->cert[0] ? id->cert : NULL;
}

const char *et_identity_key(const struct et_identity *id)
{
    return id->key[0] ? id->key : NULL;
}

const struct et_ca_leaf *et_identity_leaf(const struct et_identity *id)
{
    return id->next_crt ? &id->next_leaf : id->current ? &id->current_leaf : NULL;
}

const struct et_ca_leaf *et_identity_current(const struct et_identity *id)
{
    return id->current ? &id->current_leaf : NULL;
}

const char *et_identity_claim_cert(const struct et_identity *id)
{
    return id->claim ? id->claim_cert : NULL;
}

const char *et_identity_claim_key(const struct et_identity *id)
{
    return id->claim ? id->claim_key : NULL;
}

bool et_identity_on_trial(const struct et_identity *id)
{
    return id->next_crt;
}

enum et_identity_state et_identity_state(struct et_identity *id, int64_t now_s, bool synced,
                                         char *why, size_t whylen)
{
    const struct et_ca_leaf *leaf = et_identity_leaf(id);
    char when[32], ago[64] = "";

    if (why && whylen)
        why[0] = '\0';
    if (leaf && leaf->not_after > now_s)
        return ET_ID_READY;
    if (leaf) {
        iso(leaf->not_after, when);
        if (now_s - leaf->not_after >= 86400)
            snprintf(ago, sizeof(ago), ", %" PRId64 " days ago",
                     (now_s - leaf->not_after) / 86400);
        if (why)
            snprintf(why, whylen, "%sits certificate (serial %s) ended at %s%s (the board was "
                     "off, or could not renew, past its end)",
                     synced ? "" : "by this board's clock, which is not synchronised, ",
                     leaf->serial, when, ago);
    } else if (why) {
        snprintf(why, whylen, "it has no certificate yet");
    }
    if (et_identity_find_claim(id))
        return ET_ID_CLAIM;
    /* A clock that is not synchronised may be wrong: try it, the broker decides. */
    return leaf && !synced ? ET_ID_READY : ET_ID_NOTHING;
}

int64_t et_identity_renew_at(const struct et_identity *id, uint32_t renew_pct,
                             int64_t renew_before_ms)
{
    const struct et_ca_leaf *l = et_identity_leaf(id);

    if (!l)
        return INT64_MAX;
    if (renew_pct)
        return l->not_before + (l->not_after - l->not_before) * (int64_t)renew_pct / 100;
    return l->not_after - renew_before_ms / 1000;
}

/* ---- the next generation ------------------------------------------------------------ */

int et_identity_next_csr(struct et_identity *id, uint8_t **der, size_t *len, char *err,
                         size_t errlen)
{
    char key[PATH_MAX + 32];
    int rc;

    if (!id->next) {
        id->next = id->current + 1;
        snprintf(key, sizeof(key), "%s", gen_path(id, id->next, "key"));
        unlink(key);
        rc = et_ca_key_make(key, err, errlen);
        if (rc) {
            id->next = 0;
            return rc;
        }
        et_info("identity", "made a new key %s (P-256, 0600): it never leaves the board", key);
    }
    snprintf(key, sizeof(key), "%s", gen_path(id, id->next, "key"));
    return et_ca_csr_make(key, id->device, der, len, err, errlen);
}

int et_identity_accept(struct et_identity *id, const char *pem, size_t len, int64_t now_s,
                       bool synced, char *err, size_t errlen)
{
    char key[PATH_MAX + 32], name[32], when[32];
    struct et_ca_leaf leaf;
    int rc;

    if (!id->next || id->next_crt)
        return et_text_reason(err, errlen, -EALREADY, "no certificate was asked for");
    snprintf(key, sizeof(key), "%s", gen_path(id, id->next, "key"));
    if ((rc = et_ca_leaf_check(pem, len, id->device, key, id->ca_file, &leaf, err, errlen)))
        return rc;
    if (synced && leaf.not_after <= now_s) {
        iso(leaf.not_after, when);
        return et_text_reason(err, errlen, -EKEYEXPIRED, "the certificate ended at %s "
                              "already: the issuer's clock or this board's is wrong", when);
    }
    snprintf(name, sizeof(name), "%d.crt", id->next);
    if ((rc = replace_file(id->dir, name, pem, len, err, errlen)))
        return rc;
    id->next_crt = true;
    id->next_leaf = leaf;
    if (id->current == 0) {
        if ((rc = et_identity_commit(id, err, errlen)))
            return rc;
        unlink(id->claim_key);
        unlink(id->claim_cert);
        id->claim = false;
        et_info("identity", "enrolled: certificate serial %s; the claim is deleted",
                leaf.serial);
    }
    choose(id);
    return 0;
}

int et_identity_commit(struct et_identity *id, char *err, size_t errlen)
{
    char text[32];
    int old = id->current, n;

    if (!id->next_crt)
        return et_text_reason(err, errlen, -EINVAL, "no certificate on trial");
    n = snprintf(text, sizeof(text), "%d\n", id->next);
    if (replace_file(id->dir, CURRENT, text, (size_t)n, err, errlen) != 0)
        return -EIO;
    id->current = id->next;
    id->current_leaf = id->next_leaf;
    id->next = 0;
    id->next_crt = false;
    if (old)
        remove_gen(id, old);
    choose(id);
    return 0;
}

void et_identity_abandon(struct et_identity *id)
{
    if (!id->next)
        return;
    remove_gen(id, id->next);
    id->next = 0;
    id->next_crt = false;
    choose(id);
}

/* ---- --check ------------------------------------------------------------------------ */

/* Every *.key of dir private to its owner. */
static int keys_private(const char *dir, char *msg, size_t msglen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (!d)
        return 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char path[PATH_MAX + 300];
        size_t n = strlen(e->d_name);
        struct stat st;

        if (n < 5 || strcmp(e->d_name + n - 4, ".key") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && (!S_ISREG(st.st_mode) || (st.st_mode & 077)))
            rc = et_text_reason(msg, msglen, -EACCES, "key %s is %s (mode %04o): run chmod "
                                "600 %s, and take the key as known to whoever could read it",
                                path, S_ISREG(st.st_mode) ? "readable by others"
                                                          : "not a regular file",
                                (unsigned)(st.st_mode & 07777), path);
    }
    closedir(d);
    return rc;
}

int et_identity_check(const char *data_dir, const char *device_id, const char *ca_file,
                      int64_t now_s, char *msg, size_t msglen)
{
    char dir[PATH_MAX + 16], why[400], when[32];
    struct et_identity *id;
    int rc;

    snprintf(dir, sizeof(dir), "%s/" IDENTITY_DIR, data_dir);
    if ((rc = keys_private(dir, msg, msglen)))
        return rc;
    if (!exists(dir)) {
        snprintf(msg, msglen, "%s: no identity yet: the agent makes its key at start and "
                 "enrolls with a claim (edgetelctl provision %s)", dir, device_id);
        return 0;
    }
    /* Opening settles what a power cut left, which --check may do: it is what start does. */
    if ((rc = et_identity_open(&id, data_dir, device_id, ca_file, why, sizeof(why))))
        return et_text_reason(msg, msglen, rc, "%s", why);
    switch (et_identity_state(id, now_s, true, why, sizeof(why))) {
    case ET_ID_READY:
        iso(et_identity_leaf(id)->not_after, when);
        snprintf(msg, msglen, "%s: certificate serial %s for %s, valid until %s", dir,
                 et_identity_leaf(id)->serial, device_id, when);
        break;
    case ET_ID_CLAIM:
        snprintf(msg, msglen, "%s: %s; it enrolls with the claim %s", dir, why,
                 et_identity_claim_cert(id));
        break;
    case ET_ID_NOTHING:
        snprintf(msg, msglen, "%s: %s, and no claim: provision it (edgetelctl provision %s "
                 "--boot DIR) or put claim.crt and claim.key there", dir, why, device_id);
        break;
    }
    et_identity_destroy(id);
    return 0;
}
