/*
 * The web view's front: creating it, routing a GET to its answer, and the
 * pieces every answer shares (web.h, web_priv.h).
 */
#include "web_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/log.h"

#define DEFAULT_MAX_BODY (8u * 1024 * 1024)
#define DEFAULT_MAX_POINTS 5000
#define DEFAULT_MAX_DEVICES 10000
#define DEFAULT_MAX_METRICS 2000
#define DEFAULT_DYGRAPHS_DIR "/usr/share/javascript/dygraphs"
/* Larger than Debian's dygraph.min.js (about 130 KiB) with room to spare. */
#define DYGRAPHS_MAX_BYTES (4 * 1024 * 1024)

const double et_web_commit_bounds[ET_WEB_COMMIT_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

void et_web_health_commit(struct et_web_health *h, double seconds)
{
    h->commits++;
    h->commit_seconds += seconds;
    for (size_t i = 0; i < ET_WEB_COMMIT_BUCKETS; i++)
        if (seconds <= et_web_commit_bounds[i])
            h->commit_le[i]++;
}

/* A whole file of at most max bytes into *data, or NULL (said once) when it cannot be read. */
static void read_file(const char *dir, const char *name, char **data, size_t *len)
{
    char path[512];
    FILE *f;
    long size;

    *data = NULL;
    *len = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f) {
        et_warn("http", "%s: %s: the device page's plots need Debian's libjs-dygraphs", path,
                strerror(errno));
        return;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && size <= DYGRAPHS_MAX_BYTES &&
        fseek(f, 0, SEEK_SET) == 0 && (*data = malloc((size_t)size)) != NULL) {
        if (fread(*data, 1, (size_t)size, f) == (size_t)size) {
            *len = (size_t)size;
        } else {
            free(*data);
            *data = NULL;
        }
    }
    if (!*data)
        et_warn("http", "%s: cannot be read (empty, over %d bytes, or an I/O error)", path,
                DYGRAPHS_MAX_BYTES);
    fclose(f);
}

int et_web_create(struct et_web **out, struct et_store_reader *r, struct et_store_config *sc,
                  const struct et_web_limits *lim)
{
    struct et_web *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (!w)
        return -ENOMEM;
    w->r = r;
    w->sc = sc;
    if (lim)
        w->lim = *lim;
    if (!w->lim.max_body)
        w->lim.max_body = DEFAULT_MAX_BODY;
    if (!w->lim.max_points)
        w->lim.max_points = DEFAULT_MAX_POINTS;
    if (!w->lim.max_devices)
        w->lim.max_devices = DEFAULT_MAX_DEVICES;
    if (!w->lim.max_metrics)
        w->lim.max_metrics = DEFAULT_MAX_METRICS;
    if (!w->lim.dygraphs_dir)
        w->lim.dygraphs_dir = DEFAULT_DYGRAPHS_DIR;
    read_file(w->lim.dygraphs_dir, "dygraph.min.js", &w->dygraphs_js, &w->dygraphs_js_len);
    read_file(w->lim.dygraphs_dir, "dygraph.min.css", &w->dygraphs_css, &w->dygraphs_css_len);
    w->lim.dygraphs_dir = NULL;   /* the caller's string: not kept */
    *out = w;
    return 0;
}

void et_web_destroy(struct et_web *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_tracks; i++)
        free(w->tracks[i].id);
    free(w->tracks);
    free(w->dygraphs_js);
    free(w->dygraphs_css);
    free(w);
}

void web_finish(struct web_answer *a, const char *content_type)
{
    struct et_web_response *resp = a->resp;

    if (a->out.full) {
        et_web_out_free(&a->out);
        web_error(a, 503, "result too large: ask for a shorter range or fewer points");
        return;
    }
    resp->content_type = content_type;
    resp->body = et_web_out_take(&a->out, &resp->len);
}

void web_error(struct web_answer *a, int status, const char *why)
{
    et_web_out_free(&a->out);
    et_web_out_str(&a->out, "{\"error\":");
    et_web_out_json_str(&a->out, why);
    et_web_out_str(&a->out, "}\n");
    a->resp->status = status;
    a->resp->filename[0] = '\0';
    a->resp->content_type = "application/json";
    a->resp->body = et_web_out_take(&a->out, &a->resp->len);
}

void web_store_error(struct web_answer *a, int rc, const char *what)
{
    char why[160];

    if (rc == -ENOENT) {
        snprintf(why, sizeof(why), "%s: not found", what);
        web_error(a, 404, why);
        return;
    }
    snprintf(why, sizeof(why), "%s: the store failed (%s)", what, strerror(-rc));
    web_error(a, 503, why);
}

bool web_arg_int(const struct et_web_request *req, const char *name, int64_t def, int64_t lo,
                 int64_t hi, int64_t *out)
{
    const char *v = req->arg(req->arg_ctx, name);
    char *end;
    long long x;

    if (!v || !*v) {
        *out = def;
        return true;
    }
    errno = 0;
    x = strtoll(v, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return false;
    *out = x;
    return true;
}

void et_web_handle(struct et_web *w, const struct et_web_request *req,
                   struct et_web_response *resp)
{
    struct web_answer a = { .resp = resp };

    *resp = (struct et_web_response){ .status = 200 };
    et_web_out_init(&a.out, w->lim.max_body);
    if (strcmp(req->path, "/api/v1/fleet") == 0)
        web_fleet(w, req, &a);
    else if (strcmp(req->path, "/api/v1/device") == 0)
        web_device(w, req, &a);
    else if (strcmp(req->path, "/api/v1/series") == 0)
        web_series(w, req, &a);
    else if (strcmp(req->path, "/metrics") == 0)
        web_metrics(w, req, &a);
    else if (!web_asset(w, req->path, &a))
        web_error(&a, 404, "no such page: see docs/HTTP_API.md");
}
