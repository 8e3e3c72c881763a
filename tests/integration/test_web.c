/*
 * The web view of a real edgetel-aggregator (issue 15): a real broker and
 * agent, the aggregator with [http] on a free loopback port, and a store
 * that also holds a device with hostile names. Over plain HTTP (a small
 * client here): the JSON API shows the agent's data arriving, /metrics
 * passes promtool, a token is required where one is set, methods, bodies,
 * foreign Host headers and oversized requests are refused. Then the pages
 * in headless Chromium: the fleet page lists the device, the device page
 * plots sim.counter with as many points as the API gives for the same
 * range, the hostile device's names are shown as text and obeyed nowhere
 * (dygraphs writes its axis title as HTML: this test is how that was found);
 * screenshots go to the test's directory and build/tests/web-screenshots/.
 *
 * Without chromium or promtool those parts are skipped, saying so, unless
 * ET_REQUIRE_TOOLS is set (scripts/test.sh sets it: deps.sh installs both).
 * With ET_TEST_STORE=postgresql (ctest's integration_test_web_pg) the
 * store is a PostgreSQL schema of the test's own, which the web view's
 * thread opens read-only as the aggregator's [store] names it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "edgetel/store_open.h"
#include "web_data.h"

#define TOKEN "0123456789abcdef0123456789abcdef"
#define SCREENSHOTS ET_BINARY_DIR "/tests/web-screenshots"

struct http_reply {
    int status;
    char *text;            /* the whole reply, headers and body */
    const char *body;
};

/* One request (HTTP/1.0, the connection closes after it); fails the test when it cannot connect. */
static void http(int port, const char *request, struct http_reply *r)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { .tv_sec = 20 };
    size_t len = 0, cap = 1 << 16;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;

    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        fail_msg("http: cannot connect to 127.0.0.1:%d: %s", port, strerror(errno));
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    r->text = malloc(cap + 1);
    assert_non_null(r->text);
    while ((n = read(fd, r->text + len, cap - len)) > 0) {
        len += (size_t)n;
        if (len == cap) {
            cap *= 2;
            r->text = realloc(r->text, cap + 1);
            assert_non_null(r->text);
        }
    }
    close(fd);
    r->text[len] = '\0';
    r->status = 0;
    sscanf(r->text, "HTTP/1.%*d %d", &r->status);
    r->body = strstr(r->text, "\r\n\r\n");
    r->body = r->body ? r->body + 4 : "";
}

static void get(int port, const char *path, const char *headers, struct http_reply *r)
{
    char req[8192];

    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n%s\r\n", path, port,
             headers ? headers : "");
    http(port, req, r);
}

/* The port the aggregator said it serves on, waited for in its log. */
struct port_wait {
    struct et_proc *p;
    int port;
};

static bool port_said(void *ctx)
{
    struct port_wait *pw = ctx;
    const char *needle = "serving the fleet view on http://127.0.0.1:";
    char line[512];
    FILE *f = fopen(et_proc_log_path(pw->p), "r");

    while (f && fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, needle);

        if (at)
            pw->port = atoi(at + strlen(needle));
    }
    if (f)
        fclose(f);
    return pw->port > 0;
}

static int served_port(struct et_proc *p)
{
    struct port_wait pw = { .p = p };

    et_test_wait_until(port_said, &pw, 20000);
    return pw.port;
}

struct fleet_wait {
    int port;
};

/* The API shows dev1 online with samples of today. */
static bool dev1_shown(void *ctx)
{
    struct fleet_wait *fw = ctx;
    struct http_reply r;
    const char *at;
    bool ok;

    get(fw->port, "/api/v1/fleet", NULL, &r);
    at = strstr(r.body, "{\"id\":\"dev1\",\"online\":true");
    ok = r.status == 200 && at && !strstr(at, "\"samples_today\":0,") &&
         !strstr(at, "\"samples_today\":null");
    free(r.text);
    return ok;
}

static bool have(const char *tool)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    if (system(cmd) == 0)
        return true;
    if (getenv("ET_REQUIRE_TOOLS"))
        fail_msg("%s is missing: scripts/deps.sh installs it", tool);
    return false;
}

static void check_promtool(struct et_e2e *e, int port)
{
    struct http_reply r;
    const char *path = et_test_env_path(e->env, "metrics.txt");
    const char *argv[] = { "sh", "-c", "promtool check metrics < \"$0\"", path, NULL };
    FILE *f;

    get(port, "/metrics", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "edgetel_device_online{device=\"dev1\"} 1"));
    assert_non_null(strstr(r.body, "edgetel_device_online{device=\"evil\\\"<script>dev\"} 1"));
    assert_non_null(strstr(r.body, "edgetel_aggregator_commit_seconds_count "));
    /* Telemetry is shared between the two instances, Status goes to both. */
    assert_null(strstr(r.body, "edgetel_aggregator_messages_total 0\n"));
    assert_null(strstr(r.body, "edgetel_aggregator_statuses_total 0\n"));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(r.body, f);
    fclose(f);
    free(r.text);
    if (!have("promtool")) {
        fprintf(stderr, "test_web: promtool not installed: /metrics not checked by it\n");
        return;
    }
    if (et_test_run(et_test_env_path(e->env, "promtool.log"), argv, 30000) != 0)
        fail_msg("promtool check metrics refused /metrics (see promtool.log, metrics.txt)");
}

static void check_refusals(int port, int token_port)
{
    struct http_reply r;
    char req[40000];

    get(port, "/api/v1/fleet", "", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.text, "Content-Security-Policy: default-src 'self'"));
    assert_non_null(strstr(r.text, "X-Content-Type-Options: nosniff"));
    free(r.text);
    http(port, "POST /api/v1/fleet HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}",
         &r);
    assert_int_equal(r.status, 405);
    free(r.text);
    http(port, "GET /api/v1/fleet HTTP/1.0\r\nHost: attacker.example\r\n\r\n", &r);
    assert_int_equal(r.status, 403);
    free(r.text);
    /* Headers past the request's memory bound: refused, not buffered. */
    snprintf(req, sizeof(req), "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Big: %0*d\r\n\r\n",
             36000, 0);
    http(port, req, &r);
    assert_true(r.status == 431 || r.status == 413 || r.status == 0);
    free(r.text);
    /* The instance with a token: none, a wrong one, the right one. */
    get(token_port, "/api/v1/fleet", NULL, &r);
    assert_int_equal(r.status, 401);
    free(r.text);
    get(token_port, "/metrics", "Authorization: Bearer " TOKEN "x\r\n", &r);
    assert_int_equal(r.status, 401);
    free(r.text);
    get(token_port, "/metrics", "Authorization: Bearer " TOKEN "\r\n", &r);
    assert_int_equal(r.status, 200);
    free(r.text);
    get(token_port, "/", NULL, &r);   /* the page itself holds no data */
    assert_int_equal(r.status, 200);
    free(r.text);
}

/* Headless Chromium: the page after its scripts ran, into DIR/name.html, and a screenshot. */
static char *chromium_page(struct et_e2e *e, const char *name, const char *url)
{
    char profile[256], shot[256], shot_arg[300], dom[256], profile_arg[300];
    /* As root (CI) Chromium refuses to start without --no-sandbox; the
     * pages are our own, served from loopback. */
    const char *argv[] = { "chromium", "--headless", "--disable-gpu", "--no-sandbox",
                           "--virtual-time-budget=10000", profile_arg, "--dump-dom", url, NULL };
    const char *shot_argv[] = { "chromium", "--headless", "--disable-gpu", "--no-sandbox",
                                "--virtual-time-budget=10000", profile_arg,
                                "--window-size=1400,1000", shot_arg, url, NULL };
    char *text;
    FILE *f;
    long size;

    snprintf(profile, sizeof(profile), "%s/chromium-profile", et_test_env_dir(e->env));
    snprintf(profile_arg, sizeof(profile_arg), "--user-data-dir=%s", profile);
    snprintf(dom, sizeof(dom), "%s/%s.html", et_test_env_dir(e->env), name);
    if (et_test_run(dom, argv, 90000) != 0)
        fail_msg("chromium --dump-dom %s failed (see %s)", url, dom);
    snprintf(shot, sizeof(shot), "%s/%s.png", et_test_env_dir(e->env), name);
    snprintf(shot_arg, sizeof(shot_arg), "--screenshot=%s", shot);
    if (et_test_run(et_test_env_path(e->env, "chromium-shot.log"), shot_argv, 90000) != 0)
        fail_msg("chromium --screenshot of %s failed", url);
    {
        const char *cp[] = { "cp", shot, SCREENSHOTS, NULL };

        mkdir(SCREENSHOTS, 0755);
        et_test_run(et_test_env_path(e->env, "cp.log"), cp, 10000);
    }
    f = fopen(dom, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    return text;
}

static void check_pages(struct et_e2e *e, int port)
{
    char url[512], api[512], want[64];
    struct http_reply r;
    long long now, points;
    struct timespec ts;
    char *dom;

    if (!have("chromium")) {
        fprintf(stderr, "test_web: chromium not installed: the pages are not loaded\n");
        return;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    dom = chromium_page(e, "fleet", url);
    assert_non_null(strstr(dom, "data-device=\"dev1\""));
    assert_non_null(strstr(dom, "<td class=\"ok\">online</td>"));
    assert_non_null(strstr(dom, "data-device=\"evil&quot;&lt;script&gt;dev\""));
    assert_non_null(strstr(dom, ">evil\"&lt;script&gt;dev</a>"));
    assert_null(strstr(dom, "<script>dev"));
    free(dom);

    /* dev1's sim.counter over a fixed range, as the API plots it. */
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (long long)ts.tv_sec * 1000;
    snprintf(api, sizeof(api), "/api/v1/series?device=dev1&metric=sim.counter&from=%lld&to=%lld"
             "&points=1000", now - 600000, now + 1);
    get(port, api, NULL, &r);
    assert_int_equal(r.status, 200);
    points = web_json_int(r.body, "points");
    assert_true(points > 0);
    free(r.text);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/device?id=dev1&metric=sim.counter&from=%lld"
             "&to=%lld&points=1000", port, now - 600000, now + 1);
    dom = chromium_page(e, "device", url);
    assert_non_null(strstr(dom, "data-state=\"plotted\""));
    snprintf(want, sizeof(want), "data-points=\"%lld\"", points);
    if (!strstr(dom, want))
        fail_msg("the device page did not plot %lld points (%s): see device.html", points, want);
    assert_non_null(strstr(dom, "data-metric=\"sim.counter\""));
    assert_non_null(strstr(dom, "class=\"dygraph-legend\""));
    free(dom);

    /* The hostile device: its names are text; nothing of them runs. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/device?id=evil%%22%%3Cscript%%3Edev", port);
    dom = chromium_page(e, "hostile", url);
    assert_non_null(strstr(dom, "<title>edgetel evil\"&lt;script&gt;dev</title>"));
    assert_non_null(strstr(dom, "&lt;img src=x onerror=\"document.title='PWNED'\"&gt;"));
    assert_null(strstr(dom, "<img src=\"x\""));
    assert_null(strstr(dom, "<b>"));
    assert_non_null(strstr(dom, "room=&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(dom, "data-state=\"plotted\""));
    free(dom);
}

static int setup(void **state)
{
    const char *store = getenv("ET_TEST_STORE");
    int rc = et_e2e_create((struct et_e2e **)state, "web");

    if (rc == 0 && store && strcmp(store, "postgresql") == 0)
        et_e2e_use_postgresql(*state);
    return rc;
}

static int teardown(void **state)
{
    et_e2e_destroy(*state);
    return 0;
}

static void test_web_view(void **state)
{
    struct et_e2e *e = *state;
    struct et_e2e_agent_opts agent = { .sim_interval_ms = 200 };
    struct fleet_wait fw;
    struct et_store *s;
    char err[256], extra[512];
    const char *token;
    int port, token_port;
    struct timespec ts;

    /* The hostile device is in the store before the aggregator starts. */
    clock_gettime(CLOCK_REALTIME, &ts);
    assert_int_equal(et_store_open(&s, e->store_type, e->store_path, 0, err, sizeof(err)), 0);
    assert_int_equal(web_data_hostile(et_store_writer(s), (int64_t)ts.tv_sec * 1000,
                                      strcmp(e->store_type, "sqlite") == 0), 0);
    et_store_close(s);

    et_e2e_start_broker(e);
    e->aggregator_extra = "\n[http]\nenabled = true\naddress = 127.0.0.1\nport = 0\n";
    et_e2e_start_aggregator(e);
    token = et_test_env_write(e->env, "token", "%s\n", TOKEN);
    chmod(token, 0600);
    snprintf(extra, sizeof(extra), "\n[http]\nenabled = true\nport = 0\ntoken_file = %s\n",
             token);
    e->aggregator_extra = extra;
    token_port = served_port(et_e2e_start_aggregator(e));
    port = served_port(e->aggregator);
    et_e2e_start_agent(e, &agent);
    fw.port = port;
    et_test_wait_until(dev1_shown, &fw, 60000);

    check_refusals(port, token_port);
    check_promtool(e, port);
    check_pages(e, port);
    et_e2e_pass(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_web_view, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
