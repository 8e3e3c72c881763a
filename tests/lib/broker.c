#define _GNU_SOURCE /* asprintf */

#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BROKER_EXE "/usr/sbin/mosquitto"
#define CTL_EXE ET_BINARY_DIR "/ctl/edgetelctl"
#define ACL_PLUGIN ET_BINARY_DIR "/broker/edgetel_acl.so"
/* The broker's own certificate: CN and file name. */
#define SERVER_NAME "broker"
#define BROKER_READY_MS 15000
#define BROKER_STOP_MS 5000
#define BROKER_PORT_TRIES 5
#define POLL_STEP_MS 10

struct broker_identity {
    struct broker_identity *next;
    char *id;
    bool foreign;
    char *cert_file;
    char *key_file;
};

struct et_test_broker {
    char dir[PATH_MAX];
    char host[INET_ADDRSTRLEN];  /* the address it listens on; 127.0.0.1 unless asked */
    char ca_file[PATH_MAX + 16];
    char conf_file[PATH_MAX + 32];
    char log_file[PATH_MAX + 32];
    int port;
    pid_t pid;                  /* 0 when not running */
    struct broker_identity *identities;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One polling step of a bounded wait; never the synchronisation itself. */
static void poll_step(void)
{
    struct timespec ts = { .tv_sec = 0, .tv_nsec = POLL_STEP_MS * 1000000L };

    nanosleep(&ts, NULL);
}

static void dump_log(const struct et_test_broker *b)
{
    char line[512];
    FILE *f = fopen(b->log_file, "r");

    if (!f)
        return;
    fprintf(stderr, "---- %s ----\n", b->log_file);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "---- end of broker log ----\n");
    fclose(f);
}

/* Run argv (argv[0] a path) with output appended to the broker log; wait for it. */
static int run_tool(const struct et_test_broker *b, char *const argv[])
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = open(b->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "broker: %s %s %s failed (status %d)\n", argv[0], argv[1],
                argv[2] ? argv[2] : "", status);
        dump_log(b);
        return -EIO;
    }
    return 0;
}

/*
 * edgetelctl ca, the fleet CA the project ships, makes every certificate:
 * "ca init" in DIR/ca (or DIR/foreign/ca, a second CA the broker does not
 * trust), then "ca issue" for the broker, aggregator instances
 * (aggregator-<instance>) and devices, into the issued/ beside it.
 */
static int ca_cmd(const struct et_test_broker *b, const char *dir, const char *cmd,
                  const char *kind, const char *name, const char *san)
{
    char ca_dir[PATH_MAX + 16], out[PATH_MAX + 16];
    char *argv[16];
    size_t n = 0;

    snprintf(ca_dir, sizeof(ca_dir), "%s/ca", dir);
    snprintf(out, sizeof(out), "%s/issued", dir);
    argv[n++] = CTL_EXE;
    argv[n++] = "ca";
    argv[n++] = (char *)cmd;
    if (kind)
        argv[n++] = (char *)kind;
    if (name)
        argv[n++] = (char *)name;
    argv[n++] = "--dir";
    argv[n++] = ca_dir;
    if (strcmp(cmd, "issue") == 0) {
        argv[n++] = "--out";
        argv[n++] = out;
    }
    if (san) {
        argv[n++] = "--san";
        argv[n++] = (char *)san;
    }
    argv[n] = NULL;
    return run_tool(b, argv);
}

/* The CA of dir and the broker's certificate, unless made already. */
static int make_ca(const struct et_test_broker *b, const char *dir)
{
    char path[PATH_MAX + 32];
    int rc;

    snprintf(path, sizeof(path), "%s/ca/ca.crt", dir);
    if (access(path, F_OK) == 0)
        return 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    rc = ca_cmd(b, dir, "init", NULL, NULL, NULL);
    /* A broker on another address than loopback names it in its certificate too. */
    if (rc == 0)
        rc = ca_cmd(b, dir, "issue", "server", SERVER_NAME,
                    strcmp(b->host, "127.0.0.1") != 0 ? b->host : NULL);
    return rc;
}

static int make_certs(const struct et_test_broker *b, const char *dir, const char *id)
{
    const char *kind = "device";
    int rc = make_ca(b, dir);

    if (rc)
        return rc;
    if (strncmp(id, "aggregator-", strlen("aggregator-")) == 0)
        kind = "aggregator";
    else if (strncmp(id, "issuer-", strlen("issuer-")) == 0)
        kind = "issuer";
    return ca_cmd(b, dir, "issue", kind, id, NULL);
}

int et_test_broker_revoke(struct et_test_broker *b, const char *id)
{
    if (!b || !id)
        return -EINVAL;
    return ca_cmd(b, b->dir, "revoke", NULL, id, NULL);
}

static int free_port(const struct et_test_broker *b)
{
    struct sockaddr_in addr = { .sin_family = AF_INET };
    socklen_t len = sizeof(addr);
    int fd;
    int port = -EADDRNOTAVAIL;

    if (inet_pton(AF_INET, b->host, &addr.sin_addr) != 1)
        return -EINVAL;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    else
        port = -errno;
    close(fd);
    return port;
}

static bool port_accepts(const struct et_test_broker *b)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)b->port) };
    int fd;
    bool ok;

    if (inet_pton(AF_INET, b->host, &addr.sin_addr) != 1)
        return false;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    ok = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return ok;
}

/* Write the shipped template with its @PLACEHOLDERS@ filled in. */
static int write_config(struct et_test_broker *b)
{
    char tmpl_path[] = ET_SOURCE_DIR "/packaging/mosquitto/edgetel.conf.in";
    char ca_dir[PATH_MAX + 16], server_cert[PATH_MAX + 32], server_key[PATH_MAX + 32];
    char persist[PATH_MAX + 16];
    char port[16];
    char line[1024];
    struct passwd *pw = getpwuid(geteuid());
    const char *user = pw ? pw->pw_name : "mosquitto";
    FILE *in = NULL;
    FILE *out = NULL;
    int rc;

    snprintf(ca_dir, sizeof(ca_dir), "%s/ca", b->dir);
    snprintf(server_cert, sizeof(server_cert), "%s/issued/" SERVER_NAME ".crt", b->dir);
    snprintf(server_key, sizeof(server_key), "%s/issued/" SERVER_NAME ".key", b->dir);
    snprintf(persist, sizeof(persist), "%s/persist", b->dir);
    snprintf(port, sizeof(port), "%d", b->port);
    rc = 0;
    if (mkdir(persist, 0700) != 0 && errno != EEXIST)
        return -errno;

    const struct { const char *key; const char *value; } subst[] = {
        { "@ET_MQTT_PORT@", port },
        { "@ET_MQTT_BIND@", b->host },
        { "@ET_CA_DIR@", ca_dir },
        { "@ET_SERVER_CERT@", server_cert },
        { "@ET_SERVER_KEY@", server_key },
        { "@ET_ACL_PLUGIN@", ACL_PLUGIN },
        { "@ET_PERSIST_DIR@", persist },
        /* Started as root (a CI container), mosquitto would drop to user
         * "mosquitto", which cannot read keys in our 0700 directory. */
        { "@ET_BROKER_USER@", user },
    };

    in = fopen(tmpl_path, "r");
    if (!in) {
        rc = -errno;
        fprintf(stderr, "broker: %s: %s\n", tmpl_path, strerror(errno));
        goto out;
    }
    out = fopen(b->conf_file, "w");
    if (!out) {
        rc = -errno;
        goto out;
    }
    while (fgets(line, sizeof(line), in)) {
        char *p = line;

        while (*p) {
            size_t i;

            for (i = 0; i < sizeof(subst) / sizeof(subst[0]); i++) {
                size_t klen = strlen(subst[i].key);

                if (strncmp(p, subst[i].key, klen) == 0) {
                    fputs(subst[i].value, out);
                    p += klen;
                    break;
                }
            }
            if (i == sizeof(subst) / sizeof(subst[0]))
                fputc(*p++, out);
        }
    }
out:
    if (out && fclose(out) != 0 && rc == 0)
        rc = -EIO;
    if (in)
        fclose(in);
    return rc;
}

static int reap(struct et_test_broker *b, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    int status;

    while (b->pid > 0) {
        pid_t r = waitpid(b->pid, &status, WNOHANG);

        if (r == b->pid || (r < 0 && errno == ECHILD)) {
            b->pid = 0;
            return 0;
        }
        if (r < 0 && errno != EINTR)
            return -errno;
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        poll_step();
    }
    return 0;
}

/* Tell a person reading the broker log what the first "failed" connection is. */
static void note_probes(const struct et_test_broker *b)
{
    FILE *log = fopen(b->log_file, "a");

    if (!log)
        return;
    fprintf(log, "tests/lib/broker.c: started pid %d; plain TCP probes until it listens on "
            "%s:%d (mosquitto logs each probe as a failed TLS connection)\n",
            (int)b->pid, b->host, b->port);
    fclose(log);
}

static int spawn(struct et_test_broker *b)
{
    int64_t deadline;
    pid_t parent = getpid();
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = open(b->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        /* The broker must not outlive a crashed test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl(BROKER_EXE, "mosquitto", "-c", b->conf_file, (char *)NULL);
        _exit(127);
    }
    b->pid = pid;
    note_probes(b);

    deadline = now_ms() + BROKER_READY_MS;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid) {
            b->pid = 0;
            fprintf(stderr, "broker: %s exited during start-up (status %d)\n", BROKER_EXE,
                    status);
            return -ECHILD;
        }
        if (port_accepts(b))
            return 0;
        if (now_ms() >= deadline) {
            fprintf(stderr, "broker: not listening on %s:%d after %d ms\n", b->host, b->port,
                    BROKER_READY_MS);
            kill(pid, SIGKILL);
            reap(b, BROKER_STOP_MS);
            return -ETIMEDOUT;
        }
        poll_step();
    }
}

static struct broker_identity *find_identity(const struct et_test_broker *b, const char *id,
                                             bool foreign)
{
    for (struct broker_identity *i = b->identities; i; i = i->next)
        if (i->foreign == foreign && strcmp(i->id, id) == 0)
            return i;
    return NULL;
}

static int add_identity(struct et_test_broker *b, const char *id, bool foreign,
                        struct broker_identity **out)
{
    struct broker_identity *i = find_identity(b, id, foreign);
    char dir[PATH_MAX + 16];
    int rc;

    if (i)
        goto found;
    snprintf(dir, sizeof(dir), "%s%s", b->dir, foreign ? "/foreign" : "");
    rc = make_certs(b, dir, id);
    if (rc)
        return rc;
    i = calloc(1, sizeof(*i));
    if (!i)
        return -ENOMEM;
    i->foreign = foreign;
    if (!(i->id = strdup(id)) || asprintf(&i->cert_file, "%s/issued/%s.crt", dir, id) < 0 ||
        asprintf(&i->key_file, "%s/issued/%s.key", dir, id) < 0) {
        free(i->id);
        free(i);
        return -ENOMEM;
    }
    i->next = b->identities;
    b->identities = i;
found:
    *out = i;
    return 0;
}

static int identity(struct et_test_broker *b, const char *id, bool foreign,
                    struct et_test_identity *out)
{
    struct broker_identity *i;
    int rc;

    if (!b || !id || !out)
        return -EINVAL;
    rc = add_identity(b, id, foreign, &i);
    if (rc)
        return rc;
    out->ca_file = b->ca_file;
    out->cert_file = i->cert_file;
    out->key_file = i->key_file;
    return 0;
}

int et_test_broker_identity(struct et_test_broker *b, const char *id,
                            struct et_test_identity *out)
{
    return identity(b, id, false, out);
}

int et_test_broker_foreign_identity(struct et_test_broker *b, const char *id,
                                    struct et_test_identity *out)
{
    return identity(b, id, true, out);
}

int et_test_broker_start(struct et_test_broker **out, const char *const *device_ids)
{
    return et_test_broker_start_at(out, device_ids, "127.0.0.1");
}

int et_test_broker_start_at(struct et_test_broker **out, const char *const *device_ids,
                            const char *host)
{
    struct et_test_broker *b;
    struct broker_identity *ignored;
    const char *tmp = getenv("TMPDIR");
    struct in_addr check;
    int rc;

    if (!out || !host || inet_pton(AF_INET, host, &check) != 1)
        return -EINVAL;
    *out = NULL;
    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    snprintf(b->host, sizeof(b->host), "%s", host);
    snprintf(b->dir, sizeof(b->dir), "%s/edgetel-broker-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(b->dir)) {
        rc = -errno;
        fprintf(stderr, "broker: cannot make a directory from %s: %s\n", b->dir, strerror(errno));
        free(b);
        return rc;
    }
    snprintf(b->ca_file, sizeof(b->ca_file), "%s/ca/ca.crt", b->dir);
    snprintf(b->conf_file, sizeof(b->conf_file), "%s/mosquitto.conf", b->dir);
    snprintf(b->log_file, sizeof(b->log_file), "%s/mosquitto.log", b->dir);

    rc = add_identity(b, ET_TEST_AGGREGATOR, false, &ignored);
    for (size_t i = 0; rc == 0 && device_ids && device_ids[i]; i++)
        rc = add_identity(b, device_ids[i], false, &ignored);
    if (rc)
        goto fail;

    /* Another process may take the free port between our probe and the
     * broker's bind; then the broker exits and we try another port. */
    for (int attempt = 0; attempt < BROKER_PORT_TRIES; attempt++) {
        b->port = free_port(b);
        if (b->port < 0) {
            rc = b->port;
            goto fail;
        }
        rc = write_config(b);
        if (rc)
            goto fail;
        rc = spawn(b);
        if (rc != -ECHILD)
            break;
    }
    if (rc)
        goto fail;
    *out = b;
    return 0;

fail:
    dump_log(b);
    et_test_broker_destroy(b);
    return rc;
}

int et_test_broker_stop(struct et_test_broker *b)
{
    if (!b)
        return -EINVAL;
    if (b->pid <= 0)
        return 0;
    kill(b->pid, SIGTERM);
    if (reap(b, BROKER_STOP_MS) == 0)
        return 0;
    fprintf(stderr, "broker: pid %d ignored SIGTERM for %d ms, killing it\n", (int)b->pid,
            BROKER_STOP_MS);
    kill(b->pid, SIGKILL);
    return reap(b, BROKER_STOP_MS);
}

int et_test_broker_kill(struct et_test_broker *b)
{
    if (!b)
        return -EINVAL;
    if (b->pid <= 0)
        return 0;
    kill(b->pid, SIGKILL);
    return reap(b, BROKER_STOP_MS);
}

int et_test_broker_restart(struct et_test_broker *b)
{
    int rc;

    if (!b)
        return -EINVAL;
    rc = et_test_broker_stop(b);
    if (rc)
        return rc;
    rc = spawn(b);
    if (rc)
        dump_log(b);
    return rc;
}

static int remove_tree(const char *dir)
{
    char *argv[] = { "/bin/rm", "-rf", "--", (char *)dir, NULL };
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

void et_test_broker_destroy(struct et_test_broker *b)
{
    if (!b)
        return;
    et_test_broker_stop(b);
    if (getenv("ET_TEST_KEEP_BROKER"))
        fprintf(stderr, "broker: keeping %s (ET_TEST_KEEP_BROKER is set)\n", b->dir);
    else if (b->dir[0])
        remove_tree(b->dir);
    while (b->identities) {
        struct broker_identity *i = b->identities;

        b->identities = i->next;
        free(i->id);
        free(i->cert_file);
        free(i->key_file);
        free(i);
    }
    free(b);
}

const char *et_test_broker_host(const struct et_test_broker *b)
{
    return b ? b->host : NULL;
}

int et_test_broker_port(const struct et_test_broker *b)
{
    return b ? b->port : -EINVAL;
}

bool et_test_broker_running(const struct et_test_broker *b)
{
    return b && b->pid > 0;
}

pid_t et_test_broker_pid(const struct et_test_broker *b)
{
    return b ? b->pid : 0;
}

const char *et_test_broker_ca_file(const struct et_test_broker *b)
{
    return b ? b->ca_file : NULL;
}

const char *et_test_broker_dir(const struct et_test_broker *b)
{
    return b ? b->dir : NULL;
}

void et_test_broker_mqtt_cfg(const struct et_test_broker *b, const struct et_test_identity *id,
                             const char *client_id, struct et_mqtt_cfg *cfg)
{
    *cfg = (struct et_mqtt_cfg){
        .host = b->host,
        .port = b->port,
        .client_id = client_id,
        .tls = true,
        .ca_file = b->ca_file,
        .cert_file = id ? id->cert_file : NULL,
        .key_file = id ? id->key_file : NULL,
        .keepalive_s = 5,
        .min_backoff_ms = 50,
        .max_backoff_ms = 1000,
        .max_inflight = 16,
    };
}
