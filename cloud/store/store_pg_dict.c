/*
 * The PostgreSQL writer's streams' metric dictionaries (store_writer.h:
 * dict_put, dict_get; schema 2, table dictionaries). The rules are
 * cloud/ingest_dict.c's; the SQLite backend's are the same two statements.
 * An entry is kept inside the writer's open transaction, so it is kept
 * exactly when the batch that brought it is. Two instances keeping the
 * same entry at once: the second waits for the first's commit and keeps
 * nothing (ON CONFLICT DO NOTHING); entries are immutable, so both meant
 * the same. A read sees what other instances committed (READ COMMITTED),
 * which is what ingest asks the store for when its memory misses.
 */
#include "store_pg.h"

#include <errno.h>
#include <stdlib.h>

enum dict_stmt {
    D_PUT,
    D_GET,
    D_COUNT
};

static const char *const dict_sql[D_COUNT] = {
    [D_PUT] =
        "INSERT INTO dictionaries (device, stream, dict_id, idx, metric_id, type, scale)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (device, stream, dict_id, idx) DO NOTHING",
    [D_GET] =
        "SELECT idx, metric_id, type, scale FROM dictionaries"
        " WHERE device = $1 AND stream = $2 AND dict_id = $3",
};

static int run(struct store_pg *pg, enum dict_stmt id, const struct pg_params *p,
               PGresult **res, const char *what)
{
    return store_pg_run(pg, PG_PART_DICT, id, dict_sql[id], p, res, what);
}

/* A dictionary's id is the seq of its first batch: the same bound as a seq. */
int store_pg_dict_put(struct et_store_writer *w, const char *device, const char *stream,
                      uint64_t dict_id, const struct et_store_dict_entry *e)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    if (dict_id > ET_STORE_SEQ_MAX)
        return -ERANGE;
    pg_text(&p, device);
    pg_text(&p, stream);
    pg_u64(&p, dict_id);
    pg_int(&p, e->idx);
    pg_int(&p, e->metric_id);
    pg_int(&p, e->type);
    pg_f64(&p, e->scale);
    ret = run(pg, D_PUT, &p, &r, "keeping a metric dictionary");
    PQclear(r);
    return ret;
}

int store_pg_dict_get(struct et_store_writer *w, const char *device, const char *stream,
                      uint64_t dict_id, et_store_dict_cb cb, void *ctx)
{
    struct store_pg *pg = store_pg_of_writer(w);
    struct pg_params p = { .n = 0 };
    PGresult *r;
    int ret;

    if (dict_id > ET_STORE_SEQ_MAX)
        return 0;   /* none could be kept */
    pg_text(&p, device);
    pg_text(&p, stream);
    pg_u64(&p, dict_id);
    ret = run(pg, D_GET, &p, &r, "reading a metric dictionary");
    for (int i = 0; ret == 0 && i < PQntuples(r); i++) {
        struct et_store_dict_entry e = {
            .idx = (uint32_t)pg_col_i64(r, i, 0),
            .metric_id = pg_col_i64(r, i, 1),
            .type = (int)pg_col_i64(r, i, 2),
            .scale = pg_col_f64(r, i, 3),
        };

        ret = cb(ctx, &e);
    }
    PQclear(r);
    return ret;
}
