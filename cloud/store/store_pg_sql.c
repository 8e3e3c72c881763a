/*
 * The PostgreSQL backend's statements: parameters as text, statements
 * prepared once per connection, results read as text, and errors mapped
 * to -errno by their SQLSTATE. See store_pg.h.
 */
#include "store_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgetel/log.h"

/* ---- parameters ---------------------------------------------------------- */

static int next_param(struct pg_params *p)
{
    /* More parameters than a statement of ours has is a bug in this file. */
    if (p->n >= STORE_PG_PARAMS_MAX)
        abort();
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    return p->n++;
}

void pg_text(struct pg_params *p, const char *s)
{
    int i = next_param(p);

    p->values[i] = s ? s : "";
}

void pg_int(struct pg_params *p, int64_t x)
{
    int i = next_param(p);

    snprintf(p->nums[i], sizeof(p->nums[i]), "%" PRId64, x);
    p->values[i] = p->nums[i];
}

void pg_u64(struct pg_params *p, uint64_t x)
{
    pg_int(p, x > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)x);
}

void pg_f64(struct pg_params *p, double x)
{
    int i = next_param(p);
    uint64_t bits;

    /* Binary float8 is big-endian IEEE 754: no digits lost to text. */
    memcpy(&bits, &x, sizeof(bits));
    for (int k = 0; k < 8; k++)
        p->nums[i][k] = (char)(bits >> (56 - 8 * k));
    p->values[i] = p->nums[i];
    p->lengths[i] = 8;
    p->formats[i] = 1;
}

void pg_null(struct pg_params *p)
{
    p->values[next_param(p)] = NULL;
}

void pg_blob(struct pg_params *p, const void *bytes, size_t n)
{
    int i = next_param(p);

    p->values[i] = bytes;
    p->lengths[i] = (int)n;
    p->formats[i] = 1;
}

/* ---- buffers ------------------------------------------------------------- */

void pg_buf_add(struct pg_buf *b, const void *bytes, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *grown;

        while (cap < b->len + n)
            cap *= 2;
        grown = realloc(b->p, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, bytes, n);
    b->len += n;
}

void pg_buf_str(struct pg_buf *b, const char *s)
{
    pg_buf_add(b, s, strlen(s));
}

void pg_buf_be16(struct pg_buf *b, uint16_t v)
{
    uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    pg_buf_add(b, x, sizeof(x));
}

void pg_buf_be32(struct pg_buf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

    pg_buf_add(b, x, sizeof(x));
}

void pg_buf_be64(struct pg_buf *b, uint64_t v)
{
    pg_buf_be32(b, (uint32_t)(v >> 32));
    pg_buf_be32(b, (uint32_t)v);
}

void pg_buf_free(struct pg_buf *b)
{
    free(b->p);
    *b = (struct pg_buf){ .p = NULL };
}

/*
 * Items are device ids, ids in hex, a Status's reason and agent version:
 * each is quoted and its quotes and backslashes escaped.
 */
void pg_buf_text_array(struct pg_buf *b, const char *first, size_t count, size_t stride)
{
    pg_buf_str(b, "{");
    for (size_t i = 0; i < count; i++) {
        const char *s = first + i * stride;

        pg_buf_str(b, i ? ",\"" : "\"");
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                pg_buf_add(b, "\\", 1);
            pg_buf_add(b, s, 1);
        }
        pg_buf_str(b, "\"");
    }
    pg_buf_add(b, "}", 2);   /* with the NUL: the buffer is a C string */
}

/* ---- running statements ------------------------------------------------ */

int store_pg_failed(struct store_pg *pg, int ret, const char *what, const char *message)
{
    if (ret < 0 && ret != -EEXIST && ret != -ENOENT) {
        size_t n;

        snprintf(pg->last_error, sizeof(pg->last_error), "%s: %s", what,
                 message && *message ? message : strerror(-ret));
        /* PostgreSQL's first line says it ("ERROR:  deadlock detected");
         * the DETAIL and HINT lines after it name processes and logs. */
        pg->last_error[strcspn(pg->last_error, "\n")] = '\0';
        n = strlen(pg->last_error);
        while (n && (pg->last_error[n - 1] == '\n' || pg->last_error[n - 1] == ' '))
            pg->last_error[--n] = '\0';
        et_log(pg->readonly ? ET_LOG_ERROR : ET_LOG_DEBUG, "store", "%s", pg->last_error);
    }
    return ret;
}

int store_pg_errno(struct store_pg *pg, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (PQstatus(pg->conn) != CONNECTION_OK)
        return -ECONNRESET;
    if (!state)
        return -EIO;
    if (strcmp(state, "23505") == 0)
        return -EEXIST;
    if (strcmp(state, "40P01") == 0)
        return -EDEADLK;
    if (strcmp(state, "40001") == 0)
        return -EAGAIN;
    if (strcmp(state, "53100") == 0)
        return -ENOSPC;
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0)
        return -ECONNRESET;
    if (strcmp(state, "25006") == 0)
        return -EROFS;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
        return -EINVAL;
    return -EIO;
}

/* The result's outcome: 0, or -errno with the last error kept. */
static int result_ret(struct store_pg *pg, PGresult *r, const char *what)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN)
        return 0;
    return store_pg_failed(pg, store_pg_errno(pg, r), what,
                           r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn));
}

int store_pg_run(struct store_pg *pg, enum store_pg_part part, int id, const char *sql,
                 const struct pg_params *p, PGresult **res, const char *what)
{
    static const char prefix[PG_PART_COUNT] = {
        [PG_PART_WRITER] = 'w', [PG_PART_READER] = 'r', [PG_PART_CONFIG] = 'c',
        [PG_PART_COMMIT] = 'k', [PG_PART_STREAM] = 's', [PG_PART_RETIME] = 't',
        [PG_PART_VIEW] = 'v', [PG_PART_DICT] = 'd',
    };
    const struct pg_params none = { .n = 0 };
    char name[16];
    PGresult *r;
    int ret;

    if (res)
        *res = NULL;
    if (!p)
        p = &none;
    snprintf(name, sizeof(name), "%c%d", prefix[part], id);
    if (!pg->prepared[part][id]) {
        r = PQprepare(pg->conn, name, sql, p->n, NULL);
        ret = result_ret(pg, r, what);
        PQclear(r);
        if (ret < 0)
            return ret;
        pg->prepared[part][id] = true;
    }
    r = PQexecPrepared(pg->conn, name, p->n, p->values, p->lengths, p->formats, 0);
    ret = result_ret(pg, r, what);
    if (ret == 0 && res)
        *res = r;
    else
        PQclear(r);
    return ret;
}

int store_pg_exec(struct store_pg *pg, const char *sql, const char *what)
{
    PGresult *r = PQexec(pg->conn, sql);
    int ret = result_ret(pg, r, what);

    PQclear(r);
    return ret;
}

/* ---- results ------------------------------------------------------------- */

const char *pg_col_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

int64_t pg_col_i64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

uint64_t pg_col_u64(const PGresult *res, int row, int col)
{
    int64_t v = pg_col_i64(res, row, col);

    return v < 0 ? 0 : (uint64_t)v;
}

bool pg_col_bool(const PGresult *res, int row, int col)
{
    const char *v = pg_col_text(res, row, col);

    return v[0] == 't' || (v[0] >= '1' && v[0] <= '9');
}

bool pg_col_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col);
}

double pg_col_f64(const PGresult *res, int row, int col)
{
    /* strtod reads "NaN", "Infinity" and "-Infinity", as PostgreSQL writes them. */
    return PQgetisnull(res, row, col) ? NAN : strtod(PQgetvalue(res, row, col), NULL);
}

void pg_ms_text(int64_t ms, char *out, size_t len)
{
    int64_t secs = ms / 1000, frac = ms % 1000;
    struct tm tm;
    time_t t;
    char day[40];

    /* Outside years 1 to 9999 (what the text below can say): the open
     * ends, as a query's INT64_MIN and INT64_MAX mean. */
    if (ms < INT64_C(-62135596800000)) {
        snprintf(out, len, "-infinity");
        return;
    }
    if (ms > INT64_C(253402300799999)) {
        snprintf(out, len, "infinity");
        return;
    }
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    t = (time_t)secs;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, len, "epoch");
        return;
    }
    strftime(day, sizeof(day), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, len, "%s.%03d+00", day, (int)frac);
}

void pg_col_value(const PGresult *res, int row, int col, struct et_store_value *v)
{
    switch (v->type) {
    case ET_TYPE_F64:
        v->u.f64 = pg_col_f64(res, row, col);
        break;
    case ET_TYPE_I64:
        v->u.i64 = pg_col_i64(res, row, col + 1);
        break;
    case ET_TYPE_BOOL:
        v->u.b = pg_col_bool(res, row, col + 2);
        break;
    case ET_TYPE_STR:
    default:
        v->type = ET_TYPE_STR;
        v->u.str = pg_col_text(res, row, col + 3);
        break;
    }
}
