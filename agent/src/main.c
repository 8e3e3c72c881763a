/*
 * edgetel-agent: command line (--check, --once --print), signals, and the
 * hand-over to the agent core.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "bootdir.h"
#include "collect.h"
#include "identity.h"
#include "reconf.h"
#include "edgetel/sign.h"
#include "edgetel/ca.h"
#include "edgetel/agent.h"
#include "edgetel/config.h"
#include "edgetel/log.h"
#include "edgetel/notify.h"
#include "edgetel/platform.h"
#include "edgetel/sqlite.h"
#include "edgetel/version.h"

#define DEFAULT_CONFIG "/etc/edgetel/agent.conf"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: edgetel-agent [--config FILE] [--once --print] [--check] [--log-level L]\n"
            "                     [--boot-dir DIR] [--user USER]\n"
            "       edgetel-agent --list-drivers\n"
            "       edgetel-agent [--config FILE] --forget-push\n"
            "       edgetel-agent [--config FILE] --import-boot [--boot-dir DIR] [--user USER]\n"
            "\n"
            "Collects system metrics and sensor readings, keeps them in an SQLite\n"
            "outbox while offline, and sends them over MQTT with mutual TLS to an\n"
            "edgetel aggregator. Data leaves the outbox only when the aggregator\n"
            "acknowledges it is stored.\n"
            "\n"
            "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
            "      --once          run every enabled collector once and exit\n"
            "      --print         with --once: print the values for a person (like `sensors`)\n"
            "      --check         check the configuration and exit\n"
            "      --list-drivers  list the built-in drivers and the keys each takes\n"
            "      --forget-push   forget the config pushed from the cloud: the local file\n"
            "                      runs from the next start (the agent must be stopped)\n"
            "      --boot-dir DIR  first boot: take agent.conf, ca.crt, operator.pub and the\n"
            "                      claim from DIR (edgetelctl provision --boot) at start, and\n"
            "                      delete them there (default " ET_BOOT_DIR_DEFAULT ")\n"
            "      --import-boot   only that, then exit (systemd's ExecStartPre=+, as root)\n"
            "      --user USER     as root: the data directory and the claim belong to USER\n"
            "\n"
            "SIGHUP reads the config file again; a file that does not parse keeps the\n"
            "running config. A config pushed from the cloud, once committed, wins over\n"
            "the file's keys except device_id, data_dir, trusted_keys and groups.\n"
            "  -l, --log-level L   error, warn, info or debug (overrides [agent] log_level)\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n"
            "\n"
            "Exit status: 0 on success, 1 when --once --print saw a collector fail,\n"
            "2 on a usage or configuration error, 3 on a runtime error.\n");
}

/* ---- --once --print: one round of every collector, for a person ------------- */

static const char *unit_for_person(const char *unit)
{
    if (strcmp(unit, "Cel") == 0)
        return "°C";
    if (strcmp(unit, "By") == 0)
        return "B";
    if (strcmp(unit, "1") == 0)
        return "";
    return unit;
}

static int print_value(void *ctx, const char *metric, const char *unit, const struct et_value *v)
{
    FILE *out = ctx;
    const char *dot = strchr(metric, '.');
    const char *chan = dot ? dot + 1 : metric;
    const char *u = unit_for_person(unit ? unit : "");
    double bytes = v->type == ET_TYPE_I64 ? (double)v->u.i64
                   : v->type == ET_TYPE_F64 ? v->u.f64 : 0;

    if (unit && strcmp(unit, "By") == 0 && bytes >= 1024.0) {
        static const char *const prefixes[] = { "KiB", "MiB", "GiB", "TiB" };
        int k = -1;

        while (bytes >= 1024.0 && k < 3) {
            bytes /= 1024.0;
            k++;
        }
        fprintf(out, "  %-28s %14.2f %s\n", chan, bytes, prefixes[k]);
        return 0;
    }
    switch (v->type) {
    case ET_TYPE_F64:
        fprintf(out, "  %-28s %14.3f %s\n", chan, v->u.f64, u);
        break;
    case ET_TYPE_I64:
        fprintf(out, "  %-28s %14" PRId64 " %s\n", chan, v->u.i64, u);
        break;
    case ET_TYPE_BOOL:
        fprintf(out, "  %-28s %14s %s\n", chan, v->u.b ? "yes" : "no", u);
        break;
    case ET_TYPE_STR:
        fprintf(out, "  %-28s %14s %s\n", chan, v->u.str, u);
        break;
    }
    return 0;
}

/* 0 when every collector produced values, 1 when any failed. */
static int print_once(const struct et_config *cfg, FILE *out)
{
    struct et_collector *cs = calloc(cfg->n_collectors ? cfg->n_collectors : 1, sizeof(*cs));
    int failed = 0;
    int64_t now_ms = et_time_mono_ms();
    const struct timespec settle = { .tv_sec = 0, .tv_nsec = 250 * 1000 * 1000 };

    if (!cs)
        return 1;
    /* Probe everything first, then give rate-style collectors (CPU) a
     * quarter second to have something to measure. */
    for (size_t i = 0; i < cfg->n_collectors; i++) {
        if (!cfg->collectors[i].enabled || et_collector_init(&cs[i], &cfg->collectors[i]) != 0)
            continue;
        et_collector_probe(&cs[i], now_ms);
    }
    nanosleep(&settle, NULL);
    now_ms = et_time_mono_ms();
    for (size_t i = 0; i < cfg->n_collectors; i++) {
        const struct et_collector_cfg *cc = &cfg->collectors[i];

        if (!cc->enabled) {
            fprintf(out, "%s (%s): disabled\n\n", cc->name, cc->type);
            continue;
        }
        if (!et_collector_built_in(&cs[i])) {
            fprintf(out, "%s (%s): FAILED: driver not built in\n\n", cc->name, cc->type);
            failed = 1;
            continue;
        }
        if (et_collector_absent(&cs[i])) {
            /* Absent hardware is a fact about the board, not a failure. */
            fprintf(out, "%s (%s): not present: %s\n\n", cc->name, cc->type,
                    et_collector_reason(&cs[i]));
            continue;
        }
        if (!et_collector_running(&cs[i])) {
            fprintf(out, "%s (%s): FAILED: %s\n\n", cc->name, cc->type,
                    et_collector_reason(&cs[i]));
            failed = 1;
            continue;
        }
        fprintf(out, "%s (%s, every %.1fs%s%s)\n", cc->name, cc->type, cc->interval_ms / 1000.0,
                cc->tags ? "; " : "", cc->tags ? cc->tags : "");
        int rc = et_collector_round(&cs[i], now_ms, print_value, out);

        if (rc < 0) {
            fprintf(out, "  FAILED: %s\n", et_collector_reason(&cs[i]));
            failed = 1;
        } else if (!et_collector_ok(&cs[i])) {
            fprintf(out, "  PROBLEM: %s\n", et_collector_reason(&cs[i]));
            failed = 1;
        }
        fputc('\n', out);
    }
    for (size_t i = 0; i < cfg->n_collectors; i++)
        et_collector_fini(&cs[i]);
    free(cs);
    return failed;
}

/* Every [agent] trusted_keys file readable as a P-256 public key. */
static int check_trusted_keys(const struct et_config *cfg)
{
    for (size_t i = 0; i < cfg->n_trusted_key_files; i++) {
        struct et_sign_key *k = NULL;
        char why[512];

        if (et_sign_key_load_public(cfg->trusted_key_files[i], &k, why, sizeof(why)) != 0) {
            fprintf(stderr, "edgetel-agent: config: %s: [agent] trusted_keys: %s\n", cfg->path,
                    why);
            return -EINVAL;
        }
        et_sign_key_destroy(k);
    }
    return 0;
}

/*
 * What mutual TLS will need, checked before anything runs: the files (CA,
 * certificate, a key nobody else can read), and that the certificate is
 * this device's. The broker takes the certificate's name as the client id
 * and lets it use only <root>/v1/<name>/, so a certificate of another
 * name would connect and have every batch refused.
 */
static int check_tls(const struct et_config *cfg, char *err, size_t errlen)
{
    char cn[ET_CA_NAME_MAX + 1], why[400];
    int rc;

    if (et_config_own_identity(cfg)) {
        /* The board's own: the CA file, and keys nobody else can read (identity.h). */
        if (access(cfg->mqtt.ca_file, R_OK) != 0) {
            snprintf(err, errlen, "[mqtt] ca %s: %s", cfg->mqtt.ca_file,
                     errno == ENOENT ? "no such file" : strerror(errno));
            return -errno;
        }
        rc = et_identity_check(cfg->data_dir, cfg->device_id, cfg->mqtt.ca_file,
                               et_time_wall_ms() / 1000, why, sizeof(why));
        snprintf(err, errlen, "%s", why);
        return rc;
    }
    rc = et_mqtt_settings_check_files(&cfg->mqtt, err, errlen);

    if (rc || !cfg->mqtt.host || !cfg->mqtt.host[0] || cfg->mqtt.insecure)
        return rc;
    rc = et_ca_cert_identity(cfg->mqtt.cert_file, cn, sizeof(cn), NULL, why, sizeof(why));
    if (rc) {
        snprintf(err, errlen, "[mqtt] cert: %s", why);
        return rc;
    }
    if (strcmp(cn, cfg->device_id) != 0) {
        snprintf(err, errlen, "[mqtt] cert %s is for \"%s\", not for this device (device_id "
                 "\"%s\"): the broker takes the certificate's name as the client id and "
                 "topics; give the board its own (edgetelctl ca issue device %s)",
                 cfg->mqtt.cert_file, cn, cfg->device_id, cfg->device_id);
        return -EINVAL;
    }
    return 0;
}

/* How often the STATUS= line is looked at (an outbox count), at most. */
#define STATUS_EVERY_MS 2000

/*
 * The loop: SIGHUP reloads the config, SIGINT and SIGTERM stop. Under
 * systemd (notify.h) READY=1 goes once the config is valid and the outbox
 * open (et_agent_create) and connecting began; every pass feeds the
 * watchdog, so a loop that hangs is restarted; STATUS= says connected or
 * not and the backlog.
 */
static int run(struct et_agent *agent, int sfd, const char *config_path)
{
    struct et_notify notify;
    int64_t next_status_ms = 0;
    char status[256];
    int rc = et_agent_start(agent);

    et_notify_init(&notify, et_time_mono_ms());
    if (rc == 0) {
        et_agent_status_line(agent, status, sizeof(status));
        et_notify_ready(&notify, status);
    }
    while (rc == 0) {
        struct signalfd_siginfo si;
        int64_t now_ms = et_time_mono_ms();

        et_notify_watchdog(&notify, now_ms);
        if (now_ms >= next_status_ms) {
            et_agent_status_line(agent, status, sizeof(status));
            et_notify_status(&notify, status);
            next_status_ms = now_ms + STATUS_EVERY_MS;
        }
        rc = et_agent_step(agent, sfd, et_notify_max_wait_ms(&notify, now_ms, 1000));
        if (rc != 1)
            continue;
        if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) && si.ssi_signo == SIGHUP) {
            et_info("agent", "SIGHUP: reading %s again", config_path);
            et_agent_reload(agent);
            rc = 0;
        }
    }
    et_notify_stopping(&notify);
    et_agent_stop(agent);
    return rc < 0 ? rc : 0;
}

int main(int argc, char **argv)
{
    enum { OPT_ONCE = 256, OPT_PRINT, OPT_CHECK, OPT_LIST_DRIVERS, OPT_FORGET_PUSH,
           OPT_BOOT_DIR, OPT_IMPORT_BOOT, OPT_USER };
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "once", no_argument, NULL, OPT_ONCE },
        { "print", no_argument, NULL, OPT_PRINT },
        { "check", no_argument, NULL, OPT_CHECK },
        { "list-drivers", no_argument, NULL, OPT_LIST_DRIVERS },
        { "forget-push", no_argument, NULL, OPT_FORGET_PUSH },
        { "boot-dir", required_argument, NULL, OPT_BOOT_DIR },
        { "import-boot", no_argument, NULL, OPT_IMPORT_BOOT },
        { "user", required_argument, NULL, OPT_USER },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = DEFAULT_CONFIG;
    const char *level_arg = NULL;
    bool once = false, print = false, check = false, forget = false, import_only = false;
    struct et_boot_import boot = { .boot_dir = ET_BOOT_DIR_DEFAULT };
    enum et_log_level level = ET_LOG_INFO;
    struct et_config cfg;
    struct et_agent *agent = NULL;
    char err[512] = "";
    int opt, rc;

    et_log_init("edgetel-agent", ET_LOG_INFO);
    /* Before anything opens a database: the agent's resident set (issue 13). */
    if (et_sqlite_small_footprint() < 0)
        et_debug("agent", "SQLite was in use before main(): its default memory settings stay");
    /* journald stamps each line itself; a file or a terminal needs ours. */
    et_log_set_timestamps(!et_log_under_journald());
    while ((opt = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'l': level_arg = optarg; break;
        case OPT_ONCE: once = true; break;
        case OPT_PRINT: print = true; break;
        case OPT_CHECK: check = true; break;
        case OPT_FORGET_PUSH: forget = true; break;
        case OPT_BOOT_DIR: boot.boot_dir = optarg; break;
        case OPT_IMPORT_BOOT: import_only = true; break;
        case OPT_USER: boot.user = optarg; break;
        case OPT_LIST_DRIVERS: return et_drivers_print(stdout) ? 3 : 0;
        case 'h': usage(stdout); return 0;
        case 'V': printf("edgetel-agent %s\n", ET_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgetel-agent: unexpected argument \"%s\" (see --help)\n", argv[optind]);
        return 2;
    }
    if (print && !once) {
        fprintf(stderr, "edgetel-agent: --print goes with --once\n");
        return 2;
    }
    if (level_arg && et_log_parse_level(level_arg, &level) != 0) {
        fprintf(stderr, "edgetel-agent: --log-level \"%s\": expected error, warn, info or debug\n",
                level_arg);
        return 2;
    }

    /* First boot: what the boot partition holds becomes the config and the claim. */
    boot.config_path = config_path;
    if (import_only || (!check && !once && !forget)) {
        rc = et_boot_import(&boot, err, sizeof(err));
        if (rc < 0)
            fprintf(stderr, "edgetel-agent: first boot: %s\n", err);
        if (rc < 0 && rc != -EACCES)
            return 2;
        if (import_only) {
            if (rc == 0)
                printf("%s: nothing to import\n", boot.boot_dir);
            return rc < 0 ? 3 : 0;
        }
    } else {
        char probe[4200];

        snprintf(probe, sizeof(probe), "%s/agent.conf", boot.boot_dir);
        if (access(probe, F_OK) == 0 || (snprintf(probe, sizeof(probe), "%s/claim.key",
                                                  boot.boot_dir), access(probe, F_OK) == 0))
            printf("%s holds first-boot files: they are taken at the next start\n",
                   boot.boot_dir);
    }

    rc = et_config_load(config_path, &cfg, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "edgetel-agent: config: %s\n", err);
        return 2;
    }
    et_log_init("edgetel-agent", level_arg ? level : cfg.log_level);
    if (!once && !forget && (rc = check_tls(&cfg, err, sizeof(err))) != 0) {
        fprintf(stderr, "edgetel-agent: %s\n", err);
        et_config_free(&cfg);
        return 2;
    }
    if (check) {
        if (et_config_own_identity(&cfg))
            printf("%s\n", err);
        rc = check_trusted_keys(&cfg);
        if (rc == 0)
            printf("%s: OK (%zu collectors, %zu trusted keys)\n", config_path, cfg.n_collectors,
                   cfg.n_trusted_key_files);
        et_config_free(&cfg);
        return rc ? 2 : 0;
    }
    if (forget) {
        rc = et_reconf_forget(&cfg, err, sizeof(err));
        if (rc == -ENOENT) {
            printf("%s/config.db: none; no config was pushed to this data directory\n",
                   cfg.data_dir);
            rc = 0;
        } else if (rc) {
            fprintf(stderr, "edgetel-agent: %s\n", err);
        }
        else
            printf("%s/config.db: the pushed config is forgotten; %s runs from the next start\n",
                   cfg.data_dir, config_path);
        et_config_free(&cfg);
        return rc ? 3 : 0;
    }
    if (once) {
        rc = print_once(&cfg, stdout);
        et_config_free(&cfg);
        return rc ? 1 : 0;
    }

    /* Signals become a descriptor the loop polls; block them before any
     * thread exists so Paho's threads inherit the mask. */
    sigset_t mask;

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    if (sfd < 0) {
        fprintf(stderr, "edgetel-agent: signalfd: %s\n", strerror(errno));
        et_config_free(&cfg);
        return 3;
    }

    rc = et_agent_create(&agent, &cfg, et_mqtt_paho(), err, sizeof(err));
    if (rc) {
        fprintf(stderr, "edgetel-agent: %s\n", err[0] ? err : strerror(-rc));
        et_config_free(&cfg);
        close(sfd);
        return rc == -EINVAL || rc == -EPERM ? 2 : 3;
    }
    rc = run(agent, sfd, config_path);
    et_agent_destroy(agent);
    et_config_free(&cfg);
    close(sfd);
    return rc ? 3 : 0;
}
