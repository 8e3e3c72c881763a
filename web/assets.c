/*
 * The pages, their scripts and style sheets (web/www/, built into the
 * program by web/embed.cmake so that nothing needs installing beside it),
 * and Debian's dygraphs (libjs-dygraphs, read from its folder at start).
 * Nothing comes from elsewhere: no CDN, no download.
 */
#include "web_priv.h"

#include <stdlib.h>
#include <string.h>

/* Made by web/embed.cmake in the build tree from web/www/. */
struct web_file {
    const char *name;
    const unsigned char *data;
    size_t len;
};
extern const struct web_file web_files[];
extern const size_t web_n_files;

static const struct {
    const char *path;
    const char *file;
} routes[] = {
    { "/", "index.html" },
    { "/index.html", "index.html" },
    { "/device", "device.html" },
    { "/static/app.js", "app.js" },
    { "/static/fleet.js", "fleet.js" },
    { "/static/device.js", "device.js" },
    { "/static/style.css", "style.css" },
};

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (dot && strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (dot && strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (dot && strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    return "application/octet-stream";
}

static void send_copy(struct web_answer *a, const char *name, const void *data, size_t len)
{
    et_web_out_add(&a->out, data, len);
    a->resp->cache = true;
    web_finish(a, type_of(name));
}

bool web_asset(struct et_web *w, const char *path, struct web_answer *a)
{
    if (strcmp(path, "/static/dygraph.min.js") == 0 ||
        strcmp(path, "/static/dygraph.min.css") == 0) {
        bool js = path[strlen(path) - 1] == 's' && path[strlen(path) - 2] == 'j';
        const char *data = js ? w->dygraphs_js : w->dygraphs_css;

        if (!data)
            web_error(a, 404, "dygraphs is not installed here (Debian's libjs-dygraphs)");
        else
            send_copy(a, path, data, js ? w->dygraphs_js_len : w->dygraphs_css_len);
        return true;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(path, routes[i].path) != 0)
            continue;
        for (size_t f = 0; f < web_n_files; f++)
            if (strcmp(web_files[f].name, routes[i].file) == 0) {
                send_copy(a, web_files[f].name, web_files[f].data, web_files[f].len);
                return true;
            }
    }
    return false;
}
