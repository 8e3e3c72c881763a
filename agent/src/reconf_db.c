/*
 * What the config's life cycle keeps across restarts and power cuts:
 * DATA_DIR/config.db (reconf.h). SQLite with a rollback journal and
 * synchronous FULL: each step is one transaction, durable when it returns.
 *
 *   slot  (name 'good' | 'pending', version, signed): SignedConfig bytes
 *   trust (key_id, der, trusted): keys pushes added (1) or removed (0)
 *   meta  (name, value): 'floor' the highest version reverted,
 *         'report' the last ConfigReport
 *
 * A damaged config.db is moved aside (config.db.damaged) and started
 * afresh, loudly: the board then runs its local file and the aggregator
 * sends the desired config again. Telemetry is in the outbox, untouched.
 */
#include "reconf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgetel/config_wire.h"
#include "edgetel/log.h"
#include "edgetel/sqlite.h"

#define DB_BUSY_MS 5000

static const char db_schema[] =
    "PRAGMA synchronous = FULL;"
    "CREATE TABLE IF NOT EXISTS slot ("
    "  name TEXT PRIMARY KEY,"
    "  version INTEGER NOT NULL,"
    "  signed BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS trust ("
    "  key_id BLOB PRIMARY KEY,"
    "  der BLOB,"
    "  trusted INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta ("
    "  name TEXT PRIMARY KEY,"
    "  value);";

static int db_fail(struct et_reconf *r, int rc, const char *what, char *err, size_t errlen)
{
    int e = et_sqlite_errno(r->db, rc);

    snprintf(err, errlen, "%.300s: %s: %s", r->db_path, what, sqlite3_errmsg(r->db));
    return e ? e : -EIO;
}

/* Run sql with its blob/int parameters bound by the caller's bind(). */
static int db_exec(struct et_reconf *r, const char *sql, int (*bind)(sqlite3_stmt *, const void *),
                   const void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK && bind)
        rc = bind(st, arg);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int db_open_file(struct et_reconf *r, char *err, size_t errlen)
{
    char why[200];
    int rc = et_sqlite_open(r->db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, DB_BUSY_MS,
                            &r->db, why, sizeof(why));

    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", r->db_path, why);
        return rc;
    }
    rc = sqlite3_exec(r->db, db_schema, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "%s: %s", r->db_path, sqlite3_errmsg(r->db));
    return rc;
}

int reconf_db_open(struct et_reconf *r, char *err, size_t errlen)
{
    char aside[4300];
    int rc;

    snprintf(r->db_path, sizeof(r->db_path), "%s/config.db", r->base->data_dir);
    rc = db_open_file(r, err, errlen);
    if (rc == SQLITE_OK)
        return 0;
    if (!et_sqlite_damaged(rc)) {
        int e = et_sqlite_errno(r->db, rc);

        sqlite3_close(r->db);
        r->db = NULL;
        return e ? e : -EIO;
    }
    /* Damaged: keep it for a person, start afresh. */
    sqlite3_close(r->db);
    r->db = NULL;
    snprintf(aside, sizeof(aside), "%s.damaged", r->db_path);
    et_error("config", "%s; moving it to %s and starting with the local file (the aggregator "
             "sends the desired config again)", err, aside);
    if (rename(r->db_path, aside) != 0) {
        snprintf(err, errlen, "%s is damaged and cannot be moved aside: %s", r->db_path,
                 strerror(errno));
        return -errno;
    }
    rc = db_open_file(r, err, errlen);
    if (rc != SQLITE_OK) {
        int e = et_sqlite_errno(r->db, rc);

        sqlite3_close(r->db);
        r->db = NULL;
        return e ? e : -EIO;
    }
    return 0;
}

void reconf_db_close(struct et_reconf *r)
{
    sqlite3_close(r->db);
    r->db = NULL;
}

/* ---- reading ------------------------------------------------------------------ */

static int read_u64(struct et_reconf *r, const char *sql, uint64_t *out)
{
    int64_t v = 0;
    int rc = et_sqlite_int(r->db, sql, &v);

    *out = rc == SQLITE_OK && v > 0 ? (uint64_t)v : 0;
    return rc == SQLITE_OK || rc == SQLITE_EMPTY ? 0 : -EIO;
}

/* The bytes of a slot into *buf (malloc'd); -ENOENT when empty. */
static int read_slot(struct et_reconf *r, const char *name, uint64_t *version, uint8_t **buf,
                     size_t *len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, "SELECT version, signed FROM slot WHERE name = ?1", -1,
                                &st, NULL);

    *buf = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);

        *version = (uint64_t)sqlite3_column_int64(st, 0);
        *len = (size_t)n;
        *buf = malloc(n ? (size_t)n : 1);
        if (*buf && n)
            memcpy(*buf, p, (size_t)n);
        rc = *buf ? 0 : -ENOMEM;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : et_sqlite_errno(r->db, rc);
    }
    sqlite3_finalize(st);
    return rc;
}

static void load_last_report(struct et_reconf *r)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(r->db, "SELECT value FROM meta WHERE name = 'report'", -1, &st,
                           NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);

        if (n > 0 && (r->last_report = malloc((size_t)n)) != NULL) {
            memcpy(r->last_report, p, (size_t)n);
            r->last_report_len = (size_t)n;
        }
    }
    sqlite3_finalize(st);
}

/* The good push, rendered over the local file; a failure leaves the file running. */
static void settle_good(struct et_reconf *r, uint64_t version, const uint8_t *buf, size_t len)
{
    Edgetel__V1__ConfigBody *body = NULL;
    struct et_config *c = calloc(1, sizeof(*c));
    char err[512], name[64];

    snprintf(name, sizeof(name), "config v%" PRIu64 " (kept in config.db)", version);
    if (!c || et_config_decode_stored(buf, len, &body) != 0) {
        et_error("config", "%s: %s cannot be read back; running the local file", r->db_path,
                 name);
    } else if (et_config_from_push(body->config, r->base, name, c, err, sizeof(err)) != 0) {
        et_error("config", "%s no longer fits the local file: %s; running the local file",
                 name, err);
    } else {
        r->good = c;
        r->good_body = body;
        r->good_version = version;
        return;
    }
    if (body)
        edgetel__v1__config_body__free_unpacked(body, NULL);
    free(c);
}

static int bind_floor(sqlite3_stmt *st, const void *arg)
{
    return sqlite3_bind_int64(st, 1, et_sqlite_u64_arg(*(const uint64_t *)arg));
}

int reconf_db_settle(struct et_reconf *r, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t v = 0;
    int rc;

    rc = read_u64(r, "SELECT value FROM meta WHERE name = 'floor'", &r->floor);
    if (rc)
        return db_fail(r, SQLITE_ERROR, "reading the reverted version", err, errlen);
    rc = read_slot(r, "pending", &v, &buf, &len);
    free(buf);
    if (rc == 0) {
        /* Applied and never proved healthy: the agent stopped during its trial. */
        r->pending_found = v;
        reconf_db_drop_pending(r, v);
        if (v > r->floor)
            r->floor = v;
    } else if (rc != -ENOENT) {
        return db_fail(r, SQLITE_ERROR, "reading the pending config", err, errlen);
    }
    rc = read_slot(r, "good", &v, &buf, &len);
    if (rc == 0)
        settle_good(r, v, buf, len);
    free(buf);
    if (rc != 0 && rc != -ENOENT)
        return db_fail(r, SQLITE_ERROR, "reading the last good config", err, errlen);
    load_last_report(r);
    return 0;
}

/* ---- writing ------------------------------------------------------------------ */

struct slot_arg {
    uint64_t version;
    const uint8_t *buf;
    size_t len;
};

static int bind_slot(sqlite3_stmt *st, const void *arg)
{
    const struct slot_arg *a = arg;
    int rc = sqlite3_bind_int64(st, 1, et_sqlite_u64_arg(a->version));

    return rc == SQLITE_OK ? sqlite3_bind_blob(st, 2, a->buf, (int)a->len, SQLITE_STATIC) : rc;
}

int reconf_db_set_pending(struct et_reconf *r, uint64_t v, const uint8_t *buf, size_t len,
                          char *err, size_t errlen)
{
    struct slot_arg a = { v, buf, len };
    int rc = db_exec(r, "INSERT OR REPLACE INTO slot (name, version, signed) "
                        "VALUES ('pending', ?1, ?2)", bind_slot, &a);

    if (rc != SQLITE_OK) {
        char why[400];

        db_fail(r, rc, "recording it before it is applied", why, sizeof(why));
        snprintf(err, errlen, "not applied: %s", why);
        return -EIO;
    }
    return 0;
}

struct key_arg {
    const uint8_t *id;
    const uint8_t *der;
    size_t der_len;
};

static int bind_key(sqlite3_stmt *st, const void *arg)
{
    const struct key_arg *a = arg;
    int rc = sqlite3_bind_blob(st, 1, a->id, ET_SIGN_KEY_ID_LEN, SQLITE_STATIC);

    if (rc == SQLITE_OK && a->der)
        rc = sqlite3_bind_blob(st, 2, a->der, (int)a->der_len, SQLITE_STATIC);
    return rc;
}

/* The key changes of b into the trust table, inside the open transaction. */
static int db_key_changes(struct et_reconf *r, const Edgetel__V1__ConfigBody *b)
{
    int rc = SQLITE_OK;

    for (size_t i = 0; rc == SQLITE_OK && i < b->n_add_trusted_keys; i++) {
        struct et_sign_key *k = NULL;
        uint8_t id[ET_SIGN_KEY_ID_LEN];
        char why[200];
        struct key_arg a;

        /* Checked by et_config_verify(); parsed again for its id. */
        if (et_sign_key_parse_public(b->add_trusted_keys[i].data, b->add_trusted_keys[i].len,
                                     "to trust", &k, why, sizeof(why)) != 0)
            return SQLITE_ERROR;
        et_sign_key_id(k, id);
        et_sign_key_destroy(k);
        a = (struct key_arg){ id, b->add_trusted_keys[i].data, b->add_trusted_keys[i].len };
        rc = db_exec(r, "INSERT OR REPLACE INTO trust (key_id, der, trusted) VALUES (?1, ?2, 1)",
                     bind_key, &a);
    }
    for (size_t i = 0; rc == SQLITE_OK && i < b->n_remove_trusted_key_ids; i++) {
        struct key_arg a = { b->remove_trusted_key_ids[i].data, NULL, 0 };

        rc = db_exec(r, "INSERT OR REPLACE INTO trust (key_id, der, trusted) VALUES (?1, NULL, 0)",
                     bind_key, &a);
    }
    return rc;
}

int reconf_db_commit(struct et_reconf *r, char *err, size_t errlen)
{
    int rc = sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc == SQLITE_OK)
        rc = db_exec(r, "INSERT OR REPLACE INTO slot (name, version, signed) "
                        "SELECT 'good', version, signed FROM slot WHERE name = 'pending'",
                     NULL, NULL);
    if (rc == SQLITE_OK)
        rc = db_exec(r, "DELETE FROM slot WHERE name = 'pending'", NULL, NULL);
    if (rc == SQLITE_OK)
        rc = db_key_changes(r, r->cand_body);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int e = db_fail(r, rc, "recording the commit", err, errlen);

        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        return e;
    }
    return 0;
}

void reconf_db_drop_pending(struct et_reconf *r, uint64_t v)
{
    char err[400];
    int rc = sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc == SQLITE_OK)
        rc = db_exec(r, "DELETE FROM slot WHERE name = 'pending'", NULL, NULL);
    if (rc == SQLITE_OK)
        rc = db_exec(r, "INSERT INTO meta (name, value) VALUES ('floor', ?1) "
                        "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                     bind_floor, &v);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        /* The pending row stays: the next start reverts it again. */
        db_fail(r, rc, "recording the revert", err, sizeof(err));
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        et_error("config", "%s (the next start reverts config v%" PRIu64 " again)", err, v);
    }
}

static int bind_report(sqlite3_stmt *st, const void *arg)
{
    const struct slot_arg *a = arg;

    return sqlite3_bind_blob(st, 1, a->buf, (int)a->len, SQLITE_STATIC);
}

void reconf_db_save_report(struct et_reconf *r, const uint8_t *buf, size_t len)
{
    struct slot_arg a = { 0, buf, len };
    char err[400];
    int rc;

    if (!r->db)
        return;
    rc = db_exec(r, "INSERT OR REPLACE INTO meta (name, value) VALUES ('report', ?1)",
                 bind_report, &a);
    if (rc != SQLITE_OK && !r->db_failing) {
        db_fail(r, rc, "keeping the last report", err, sizeof(err));
        et_warn("config", "%s; it is sent, but not again after a restart", err);
    }
    r->db_failing = rc != SQLITE_OK;
}

/* ---- trust -------------------------------------------------------------------- */

static int trust_row(void *ctx, sqlite3_stmt *row)
{
    struct et_sign_trust *t = ctx;
    const uint8_t *id = sqlite3_column_blob(row, 0);
    struct et_sign_key *k = NULL;
    char why[200];

    if (sqlite3_column_bytes(row, 0) != ET_SIGN_KEY_ID_LEN)
        return 0;
    if (!sqlite3_column_int(row, 2)) {
        et_sign_trust_remove(t, id);
        return 0;
    }
    if (et_sign_key_parse_public(sqlite3_column_blob(row, 1), (size_t)sqlite3_column_bytes(row, 1),
                                 "a pushed trusted key", &k, why, sizeof(why)) != 0) {
        et_warn("config", "config.db: %s; not trusted", why);
        return 0;
    }
    if (et_sign_trust_add(t, k) != 0)
        et_sign_key_destroy(k);
    return 0;
}

int reconf_load_trust(struct et_reconf *r, const struct et_config *base,
                      struct et_sign_trust **trust, char *err, size_t errlen)
{
    struct et_sign_trust *t = NULL;
    sqlite3_stmt *st = NULL;
    int rc = et_sign_trust_create(&t);

    *trust = NULL;
    if (rc)
        return rc;
    for (size_t i = 0; i < base->n_trusted_key_files; i++) {
        struct et_sign_key *k = NULL;
        char why[400];

        rc = et_sign_key_load_public(base->trusted_key_files[i], &k, why, sizeof(why));
        if (rc) {
            snprintf(err, errlen, "%s: [agent] trusted_keys: %s", base->path, why);
            et_sign_trust_destroy(t);
            return rc;
        }
        if (et_sign_trust_add(t, k) != 0)
            et_sign_key_destroy(k);   /* listed twice */
    }
    rc = sqlite3_prepare_v2(r->db, "SELECT key_id, der, trusted FROM trust ORDER BY rowid", -1,
                            &st, NULL);
    if (rc == SQLITE_OK)
        rc = et_sqlite_each_row(st, trust_row, t);
    else
        rc = et_sqlite_errno(r->db, rc);
    sqlite3_finalize(st);
    if (rc) {
        snprintf(err, errlen, "%s: reading the pushed trusted keys: %s", r->db_path,
                 sqlite3_errmsg(r->db));
        et_sign_trust_destroy(t);
        return rc;
    }
    *trust = t;
    return 0;
}

void reconf_apply_key_changes(struct et_sign_trust *trust, const Edgetel__V1__ConfigBody *b)
{
    for (size_t i = 0; i < b->n_add_trusted_keys; i++) {
        struct et_sign_key *k = NULL;
        char why[200];

        if (et_sign_key_parse_public(b->add_trusted_keys[i].data, b->add_trusted_keys[i].len,
                                     "to trust", &k, why, sizeof(why)) == 0 &&
            et_sign_trust_add(trust, k) != 0)
            et_sign_key_destroy(k);
    }
    for (size_t i = 0; i < b->n_remove_trusted_key_ids; i++)
        et_sign_trust_remove(trust, b->remove_trusted_key_ids[i].data);
}

/* ---- edgetel-agent --forget-push --------------------------------------------------- */

int et_reconf_forget(const struct et_config *base, char *err, size_t errlen)
{
    struct et_reconf r = { .base = (struct et_config *)base };
    int rc;

    snprintf(r.db_path, sizeof(r.db_path), "%s/config.db", base->data_dir);
    if (access(r.db_path, F_OK) != 0 && errno == ENOENT)
        return -ENOENT;   /* nothing was ever pushed here */
    rc = reconf_db_open(&r, err, errlen);
    if (rc)
        return rc;
    rc = sqlite3_exec(r.db, "DELETE FROM slot", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        rc = db_fail(&r, rc, "forgetting the pushed config", err, errlen);
    reconf_db_close(&r);
    return rc;
}
