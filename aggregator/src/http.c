/*
 * The aggregator's HTTP server on libmicrohttpd (http.h): the daemon, its
 * limits, TLS, the token and the Host check; every answer is et_web's.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <microhttpd.h>

#include "edgetel/log.h"
#include "edgetel/store_open.h"

#define IDLE_TIMEOUT_S 30
#define REQUEST_MEMORY (32 * 1024)
#define TOKEN_MAX 256
#define TOKEN_MIN 16
#define PEM_MAX (64 * 1024)

static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'";

struct et_agg_http {
    struct MHD_Daemon *daemon;
    bool tls;
    bool loopback;
    char *store_type;
    char *store_target;           /* a path or a connection string */
    char token[TOKEN_MAX + 1];    /* "" when none */
    size_t token_len;
    char *cert_pem, *key_pem;
    struct et_web_limits lim;
    char *dygraphs_dir;
    /* the server thread's own */
    struct et_store *store;
    struct et_web *web;
    int64_t next_open_ms;
    /* from the main thread */
    pthread_mutex_t lock;
    struct et_web_health health;
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- files: the token, the TLS pair ------------------------------------------ */

/* A small file whole; refused when others may read it and private is set. */
static int read_small(const char *what, const char *path, bool private, size_t max, char **out)
{
    struct stat sb;
    FILE *f = fopen(path, "rb");
    size_t n;
    char *buf;

    *out = NULL;
    if (!f) {
        et_error("http", "[http] %s %s: %s", what, path, strerror(errno));
        return -errno;
    }
    if (fstat(fileno(f), &sb) != 0 || (private && (sb.st_mode & 077))) {
        et_error("http", "[http] %s %s may be read by others (mode %03o): chmod 600 %s",
                 what, path, (unsigned)(sb.st_mode & 0777), path);
        fclose(f);
        return -EACCES;
    }
    buf = malloc(max + 1);
    n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > max) {
        et_error("http", "[http] %s %s: %s", what, path,
                 !buf ? "out of memory" : n ? "too large" : "empty");
        free(buf);
        return -EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int read_token(struct et_agg_http *h, const char *path)
{
    char *text;
    size_t n;
    int rc = read_small("token_file", path, true, TOKEN_MAX + 2, &text);

    if (rc < 0)
        return rc;
    n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        text[--n] = '\0';
    if (n < TOKEN_MIN || n > TOKEN_MAX || strpbrk(text, " \t\r\n")) {
        et_error("http", "[http] token_file %s: expected one line of %d to %d characters "
                 "without spaces (openssl rand -hex 32 makes one)", path, TOKEN_MIN, TOKEN_MAX);
        free(text);
        return -EINVAL;
    }
    memcpy(h->token, text, n + 1);
    h->token_len = n;
    free(text);
    return 0;
}

/* ---- a request ------------------------------------------------------------------ */

/* Equal in time independent of where they differ: both padded to TOKEN_MAX. */
static bool token_ok(const struct et_agg_http *h, const char *given)
{
    char padded[TOKEN_MAX] = { 0 };
    size_t n = given ? strlen(given) : 0;
    unsigned char diff = n != h->token_len;

    memcpy(padded, given ? given : "", n < TOKEN_MAX ? n : TOKEN_MAX);
    if (n > TOKEN_MAX)
        diff = 1;
    for (size_t i = 0; i < TOKEN_MAX; i++)
        diff |= (unsigned char)(padded[i] ^ (i < h->token_len ? h->token[i] : 0));
    return diff == 0;
}

static bool authorized(const struct et_agg_http *h, struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);

    if (!auth || strncmp(auth, "Bearer ", 7) != 0)
        return false;
    return token_ok(h, auth + 7);
}

/* Host names loopback: 127.x, localhost or [::1], with or without a port. */
static bool host_loopback(const char *host)
{
    char name[64];
    const char *end;
    size_t n;

    if (!host)
        return true;   /* HTTP/1.0 without Host: nothing for a rebinding page to use */
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (!end)
            return false;
        host++;
    } else {
        end = strchr(host, ':');
        if (!end)
            end = host + strlen(host);
    }
    n = (size_t)(end - host);
    if (n == 0 || n >= sizeof(name))
        return false;
    memcpy(name, host, n);
    name[n] = '\0';
    return strcmp(name, "localhost") == 0 || et_agg_http_loopback(name);
}

static const char *arg_of(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result send_answer(struct et_agg_http *h, struct MHD_Connection *c,
                                   struct et_web_response *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char disposition[128];

    resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, r->cache ? "no-cache"
                                                                           : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    if (h->tls)
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    if (r->status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"edgetel\"");
    if (r->filename[0]) {
        snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s\"", r->filename);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    }
    ret = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_error(struct et_agg_http *h, struct MHD_Connection *c, int status,
                                  const char *why)
{
    struct et_web_response r = { .status = status, .content_type = "application/json" };
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", why);

    r.body = strdup(body);
    r.len = r.body ? (size_t)n : 0;
    return send_answer(h, c, &r);
}

/* The store and the view, made by this thread at its first request (again later if it failed). */
static bool ready(struct et_agg_http *h)
{
    char err[256];
    int64_t now = wall_ms();
    int rc;

    if (h->web)
        return true;
    if (now < h->next_open_ms)
        return false;
    h->next_open_ms = now + 5000;
    rc = et_store_open(&h->store, h->store_type, h->store_target, ET_STORE_READONLY, err,
                       sizeof(err));
    if (rc < 0) {
        char name[256];

        /* A connection string may hold a password: never logged. */
        et_store_describe(h->store_target, name, sizeof(name));
        et_error("http", "%s store %s (read-only): %s", h->store_type, name, err);
        return false;
    }
    rc = et_web_create(&h->web, et_store_reader(h->store), et_store_config(h->store), &h->lim);
    if (rc < 0) {
        et_store_close(h->store);
        h->store = NULL;
        return false;
    }
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct et_agg_http *h = cls;
    struct et_web_request req = { .path = url, .arg = arg_of, .arg_ctx = c };
    struct et_web_response resp;
    struct et_web_health health;
    const char *length;
    bool api;
    int64_t t0;

    (void)version;
    (void)upload_data;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return send_error(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD");
    length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (*upload_data_size || (length && strcmp(length, "0") != 0))
        return send_error(h, c, MHD_HTTP_CONTENT_TOO_LARGE, "a GET has no body");
    if (!*req_cls) {
        *req_cls = h;   /* the headers are in; answer on the next call */
        return MHD_YES;
    }
    api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/metrics") == 0;
    if (!h->token_len && !host_loopback(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                     MHD_HTTP_HEADER_HOST)))
        return send_error(h, c, MHD_HTTP_FORBIDDEN, "this server answers to a loopback Host "
                          "only; set [http] token_file to serve other names");
    if (api && h->token_len && !authorized(h, c))
        return send_error(h, c, MHD_HTTP_UNAUTHORIZED, "Authorization: Bearer TOKEN needed");
    if (!ready(h))
        return send_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, "the store cannot be read yet");
    pthread_mutex_lock(&h->lock);
    health = h->health;
    pthread_mutex_unlock(&h->lock);
    req.now_ms = wall_ms();
    req.health = &health;
    t0 = req.now_ms;
    et_web_handle(h->web, &req, &resp);
    et_debug("http", "%s %s: %d, %zu bytes, %lld ms", method, url, resp.status, resp.len,
             (long long)(wall_ms() - t0));
    return send_answer(h, c, &resp);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    et_vlog(ET_LOG_WARN, "http", fmt, ap);
}

/* ---- start and stop -------------------------------------------------------------- */

/* The numeric address and port as a socket address; IPv6 adds its flag. */
static int bind_address(const struct et_agg_http_cfg *c, struct sockaddr_storage *ss,
                        unsigned *flags)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, c->address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)c->port);
        return 0;
    }
    if (inet_pton(AF_INET6, c->address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)c->port);
        *flags |= MHD_USE_IPv6;
        return 0;
    }
    return -EINVAL;   /* the config check refused it already */
}

static int setup(struct et_agg_http *h, const struct et_agg_config *cfg)
{
    const struct et_agg_http_cfg *c = &cfg->http;
    int rc;

    h->store_type = strdup(et_agg_store_types[cfg->store_type]);
    h->store_target = strdup(et_agg_store_target(cfg));
    h->dygraphs_dir = strdup(c->dygraphs_dir);
    if (!h->store_type || !h->store_target || !h->dygraphs_dir)
        return -ENOMEM;
    h->lim.max_points = c->max_points;
    h->lim.dygraphs_dir = h->dygraphs_dir;
    h->loopback = et_agg_http_loopback(c->address);
    if (c->token_file) {
        rc = read_token(h, c->token_file);
        if (rc < 0)
            return rc;
    }
    if (!c->tls_cert)
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        et_error("http", "[http] tls_cert: this libmicrohttpd was built without TLS");
        return -ENOTSUP;
    }
    rc = read_small("tls_cert", c->tls_cert, false, PEM_MAX, &h->cert_pem);
    if (rc == 0)
        rc = read_small("tls_key", c->tls_key, true, PEM_MAX, &h->key_pem);
    h->tls = rc == 0;
    return rc;
}

int et_agg_http_start(struct et_agg_http **out, const struct et_agg_config *cfg)
{
    const struct et_agg_http_cfg *c = &cfg->http;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    unsigned per_ip = c->max_connections / 4 ? c->max_connections / 4 : 1;
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *info;
    struct et_agg_http *h;
    int rc;

    *out = NULL;
    if (!c->enabled)
        return 0;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    pthread_mutex_init(&h->lock, NULL);
    rc = setup(h, cfg);
    if (rc == 0)
        rc = bind_address(c, &ss, &flags);
    if (rc < 0)
        goto fail;
    if (h->tls)
        flags |= MHD_USE_TLS;
    {
        struct MHD_OptionItem opts[] = {
            { MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL },
            { MHD_OPTION_SOCK_ADDR, 0, &ss },
            { MHD_OPTION_CONNECTION_LIMIT, (intptr_t)c->max_connections, NULL },
            { MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)per_ip, NULL },
            { MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S, NULL },
            { MHD_OPTION_CONNECTION_MEMORY_LIMIT, REQUEST_MEMORY, NULL },
            { h->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->cert_pem },
            { MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem },
            { MHD_OPTION_END, 0, NULL },
        };

        h->daemon = MHD_start_daemon(flags, (uint16_t)c->port, NULL, NULL, on_request, h,
                                     MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    }
    if (!h->daemon) {
        et_error("http", "cannot serve on %s port %d (in use? see above)", c->address, c->port);
        rc = -EADDRINUSE;
        goto fail;
    }
    info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    et_info("http", "serving the fleet view on %s://%s%s%s:%u/ (%s%s)", h->tls ? "https" : "http",
            (flags & MHD_USE_IPv6) ? "[" : "", c->address, (flags & MHD_USE_IPv6) ? "]" : "",
            info ? (unsigned)info->port : (unsigned)c->port,
            h->token_len ? "token required" : "no token",
            h->loopback ? ", loopback only" : "");
    *out = h;
    return 0;
fail:
    et_agg_http_stop(h);
    return rc;
}

void et_agg_http_publish(struct et_agg_http *h, const struct et_web_health *health)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->health = *health;
    pthread_mutex_unlock(&h->lock);
}

void et_agg_http_stop(struct et_agg_http *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);   /* joins its thread: the store is ours again */
    et_web_destroy(h->web);
    et_store_close(h->store);
    pthread_mutex_destroy(&h->lock);
    free(h->store_type);
    free(h->store_target);
    free(h->dygraphs_dir);
    free(h->cert_pem);
    free(h->key_pem);
    free(h);
}
