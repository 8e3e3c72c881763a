/*
 * Inside the config's life cycle (reconf.h): the state, and the part that
 * keeps it in DATA_DIR/config.db (reconf_db.c).
 */
#ifndef EDGETEL_RECONF_INTERNAL_H
#define EDGETEL_RECONF_INTERNAL_H

#include <sqlite3.h>

#include "reconf.h"
#include "edgetel/sign.h"
#include "edgetel/v1/config.pb-c.h"

#define RETIRED_MAX 4
#define REPORTS_MAX 8

struct et_reconf {
    struct et_config *base;         /* the local file */
    bool base_owned;                /* false for the caller's (et_reconf_open) */
    struct et_config *good;         /* the last good push over base; NULL: base runs */
    Edgetel__V1__ConfigBody *good_body;
    uint64_t good_version;
    uint64_t floor;                 /* the highest version reverted: never tried again */
    uint64_t pending_found;         /* a pending version found at open (reverted) */

    bool trial_on;
    struct et_reconf_trial trial;
    struct et_config *cand;         /* on trial: runs while trial_on */
    Edgetel__V1__ConfigBody *cand_body;  /* a push's body; NULL for a reload */
    struct et_config *cand_base;    /* a reload's new file; base at its commit */
    struct et_sign_trust *cand_trust;    /* a reload's keys; the trust at its commit */

    /* Configs the agent ran until the last change, freed at the next one. */
    struct et_config *retired[RETIRED_MAX];
    size_t n_retired;

    struct et_sign_trust *trust;
    const struct et_clock *clock;

    bool seen_offer;
    uint64_t last_offer_hash;       /* of the last push taken: the same bytes are ignored */
    uint8_t *waiting;               /* the newest push that came during a trial */
    size_t waiting_len;

    struct { uint8_t *buf; size_t len; } reports[REPORTS_MAX];
    size_t n_reports;
    uint8_t *last_report;
    size_t last_report_len;

    sqlite3 *db;
    char db_path[4200];
    bool db_failing;                /* said once until a write works again */
};

/* The config that runs when no trial does. */
const struct et_config *et_reconf_running_before(const struct et_reconf *r);

/* ---- reconf_db.c: every function writes in one transaction ---- */

/* Open (create) DATA_DIR/config.db; 0 or -errno with err. */
int reconf_db_open(struct et_reconf *r, char *err, size_t errlen);
void reconf_db_close(struct et_reconf *r);

/*
 * What a start finds: the floor; a pending push (dropped, raising the
 * floor, its version in r->pending_found); the good push (decoded and
 * rendered over r->base into r->good); the last report.
 */
int reconf_db_settle(struct et_reconf *r, char *err, size_t errlen);

/* Record buf as the pending push of version v before it is applied. */
int reconf_db_set_pending(struct et_reconf *r, uint64_t v, const uint8_t *buf, size_t len,
                          char *err, size_t errlen);

/* The pending push becomes the good one; the key changes of its body are kept. */
int reconf_db_commit(struct et_reconf *r, char *err, size_t errlen);

/* Drop the pending push v and raise the floor to it (logged on failure). */
void reconf_db_drop_pending(struct et_reconf *r, uint64_t v);

/* Keep the last report (best effort). */
void reconf_db_save_report(struct et_reconf *r, const uint8_t *buf, size_t len);

/*
 * The keys base's trusted_keys files name, then the changes pushes made
 * (kept in config.db), into a new *trust. 0 or -errno with err naming the file.
 */
int reconf_load_trust(struct et_reconf *r, const struct et_config *base,
                      struct et_sign_trust **trust, char *err, size_t errlen);

/* The key changes of a committed body applied to trust (already persisted). */
void reconf_apply_key_changes(struct et_sign_trust *trust, const Edgetel__V1__ConfigBody *b);

#endif
