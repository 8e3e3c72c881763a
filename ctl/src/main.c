/*
 * edgetelctl: the operator's view of an edgetel store.
 *
 *   edgetelctl devices                       the fleet: online, last seen, counts
 *   edgetelctl metrics [--device D]          metric names, units, sample counts
 *   edgetelctl query --device D --metric M [--since T] [--until T] [--csv]
 *   edgetelctl tail [--device D]             new samples as they land, until Ctrl-C
 *   edgetelctl quarantine [--device D]       batches kept aside for impossible times
 *   edgetelctl keys init [--dir DIR]         the operator's signing key pair (keys.c)
 *   edgetelctl config push|status|sign ...   signed configs for the boards (config_cmd.c)
 *   edgetelctl ca init|issue|revoke|crl|list the fleet CA (ca_cmd.c)
 *   edgetelctl ca serve --config FILE        its issuer: CSRs over MQTT (ca_serve.c)
 *   edgetelctl provision DEVICE ...          enrollment by claim, first boot (provision.c)
 *   edgetelctl store copy|upkeep ...         one store into another, partitions (store_cmd.c)
 *
 * Every command that reads the store takes --store STORE (default
 * ET_STORE_DEFAULT_PATH, the aggregator's default [store] path; a
 * PostgreSQL connection string opens that store), before or after the
 * command name. The store is opened read-only, except by config
 * push, which adds one desired config to it and writes nothing else.
 *
 * Exit status: 0 done, 1 the store could not be read or a name is not in
 * it, 2 a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/log.h"
#include "edgetel/parse.h"
#include "edgetel/report.h"
#include "edgetel/store.h"
#include "edgetel/store_open.h"
#include "edgetel/store_reader.h"
#include "edgetel/timefmt.h"
#include "edgetel/version.h"
#include "ca_cmd.h"
#include "provision.h"
#include "sign_cmd.h"
#include "store_cmd.h"

#define PROG "edgetelctl"
/* Samples read per poll in tail; more wait for the next round at once. */
#define TAIL_BATCH 1000

enum ctl_opt {
    OPT_STORE = 1 << 0,
    OPT_DEVICE = 1 << 1,
    OPT_METRIC = 1 << 2,
    OPT_SINCE = 1 << 3,
    OPT_UNTIL = 1 << 4,
    OPT_CSV = 1 << 5,
    OPT_INTERVAL = 1 << 6,
};

struct ctl_args {
    const char *command;
    unsigned given;           /* enum ctl_opt bits */
    const char *store;
    const char *device;
    const char *metric;
    const char *since;
    const char *until;
    const char *interval;
    bool csv;
};

struct ctl_command {
    const char *name;
    unsigned allowed;         /* enum ctl_opt bits besides --store */
    unsigned required;
    int (*run)(struct et_store_reader *r, const struct ctl_args *a);
    const char *synopsis;
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_devices(struct et_store_reader *r, const struct ctl_args *a);
static int cmd_metrics(struct et_store_reader *r, const struct ctl_args *a);
static int cmd_query(struct et_store_reader *r, const struct ctl_args *a);
static int cmd_tail(struct et_store_reader *r, const struct ctl_args *a);
static int cmd_quarantine(struct et_store_reader *r, const struct ctl_args *a);

static const struct ctl_command commands[] = {
    { "devices", 0, 0, cmd_devices,
      "devices                  every device: online, last seen (UTC and age), samples\n"
      "                           stored, current stream and since when, its acked seq,\n"
      "                           outbox and dropped samples" },
    { "metrics", OPT_DEVICE, 0, cmd_metrics,
      "metrics [--device D]     metric names, units and sample counts" },
    { "query", OPT_DEVICE | OPT_METRIC | OPT_SINCE | OPT_UNTIL | OPT_CSV,
      OPT_DEVICE | OPT_METRIC, cmd_query,
      "query --device D --metric M [--since T] [--until T] [--csv]\n"
      "                           samples of one metric in time order; T is ISO 8601\n"
      "                           (2026-11-22T16:05:00Z; UTC without an offset) or\n"
      "                           relative (-10m, -2h, -1d); --since is inclusive,\n"
      "                           --until exclusive; --csv writes CSV with a header" },
    { "tail", OPT_DEVICE | OPT_INTERVAL, 0, cmd_tail,
      "tail [--device D] [--interval DUR]\n"
      "                           print each new sample as it lands (\"time device metric\n"
      "                           value unit\"), polling every DUR (default 500ms),\n"
      "                           until Ctrl-C" },
    { "quarantine", OPT_DEVICE, 0, cmd_quarantine,
      "quarantine [--device D]  batches kept whole, not stored as samples, because their\n"
      "                           sample times are impossible: when, device, stream, seq,\n"
      "                           size and why (acknowledged: the device does not resend)" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Commands that take their own arguments, and --store given before them. */
struct ctl_own_command {
    const char *name;
    int (*main)(int argc, char **argv, const char *store);
    const char *synopsis;
};

static const struct ctl_own_command own_commands[] = {
    { "keys", et_ctl_keys_main,
      "keys init [--dir DIR]    make the operator's signing key pair in DIR (default\n"
      "                           $XDG_CONFIG_HOME/edgetel, else ~/.config/edgetel)" },
    { "config", et_ctl_config_main,
      "config push [--key PRIV] --device D|--group G [--deadline DUR] FILE\n"
      "                           check an agent config as the agent does, sign it with\n"
      "                           the fleet's next version and queue it in the store; the\n"
      "                           aggregator sends it to the board, or to every board whose\n"
      "                           [agent] groups names G (config --help)\n"
      "  config status [--device D] [--csv]\n"
      "                           per device: desired config, running version, last report\n"
      "  config sign [--key PRIV] --device D|--group G --version N FILE OUT\n"
      "                           sign a config into the file OUT instead" },
    { "store", et_ctl_store_main,
      "store copy FROM TO       copy a store into another (SQLite into PostgreSQL and\n"
      "                           back), with progress; run again after a stop, it goes on\n"
      "                           and stores nothing twice (store --help)\n"
      "  store upkeep STORE [--retention DUR]\n"
      "                           now what aggregators do every 10 minutes: partitions\n"
      "                           made ahead, days older than DUR dropped (PostgreSQL)" },
    { "ca", et_ctl_ca_main,
      "ca init|issue|revoke|crl|list|serve [--dir D] ...\n"
      "                           the fleet CA: certificates for the broker, the\n"
      "                           aggregators and the devices, the CRL, the issuer\n"
      "                           that signs the devices' CSRs (ca --help)" },
    { "provision", et_ctl_provision_main,
      "provision DEVICE [--boot DIR --broker HOST[:PORT]] ...\n"
      "                           register a device for enrollment by claim; with --boot,\n"
      "                           write what its SD card's boot partition needs\n"
      "                           (provision --help)" },
};
#define N_OWN_COMMANDS (sizeof(own_commands) / sizeof(own_commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: " PROG " [--store STORE] COMMAND [OPTIONS]\n"
                 "       " PROG " --help | --version\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %s\n", commands[i].synopsis);
    for (size_t i = 0; i < N_OWN_COMMANDS; i++)
        fprintf(out, "  %s\n", own_commands[i].synopsis);
    fprintf(out, "\noptions:\n"
                 "  --store STORE  the aggregator's store: its SQLite file (default %s,\n"
                 "                 the aggregator's default [store] path), or a PostgreSQL\n"
                 "                 connection string (postgresql://... or host=... dbname=...);\n"
                 "                 read only, but for config push and store copy's TO\n"
                 "  -h, --help     this text\n"
                 "  -V, --version  print the version\n", ET_STORE_DEFAULT_PATH);
}

static const char *opt_name(unsigned bit)
{
    switch (bit) {
    case OPT_DEVICE: return "--device";
    case OPT_METRIC: return "--metric";
    case OPT_SINCE: return "--since";
    case OPT_UNTIL: return "--until";
    case OPT_CSV: return "--csv";
    case OPT_INTERVAL: return "--interval";
    default: return "--store";
    }
}

/* ---- commands ------------------------------------------------------------- */

static int report_error(const struct ctl_args *a, int rc)
{
    fprintf(stderr, PROG " %s: store %s: %s\n", a->command, a->store,
            rc == -EIO ? "read or write error (see above)" : strerror(-rc));
    return 1;
}

static int cmd_devices(struct et_store_reader *r, const struct ctl_args *a)
{
    int rc = et_report_devices(r, stdout, wall_ms());

    return rc < 0 ? report_error(a, rc) : 0;
}

static int cmd_quarantine(struct et_store_reader *r, const struct ctl_args *a)
{
    int rc = et_report_quarantine(r, stdout, a->device);

    return rc < 0 ? report_error(a, rc) : 0;
}

static int check_names(struct et_store_reader *r, const struct ctl_args *a, const char *metric)
{
    char why[256];
    int rc = et_report_check(r, a->device, metric, why, sizeof(why));

    if (rc == -ENOENT) {
        fprintf(stderr, PROG " %s: %s\n", a->command, why);
        return 1;
    }
    return rc < 0 ? report_error(a, rc) : 0;
}

static int cmd_metrics(struct et_store_reader *r, const struct ctl_args *a)
{
    int rc;

    if (a->device && (rc = check_names(r, a, NULL)) != 0)
        return rc;
    rc = et_report_metrics(r, stdout, a->device);
    return rc < 0 ? report_error(a, rc) : 0;
}

static int parse_time_opt(const struct ctl_args *a, const char *opt, const char *text,
                          int64_t now, int64_t *out)
{
    char why[256];

    if (et_time_parse(text, now, out, why, sizeof(why)) < 0) {
        fprintf(stderr, PROG " %s: %s %s\n", a->command, opt, why);
        return 2;
    }
    return 0;
}

static int cmd_query(struct et_store_reader *r, const struct ctl_args *a)
{
    struct et_store_query q = {
        .device = a->device, .metric = a->metric, .since_ms = INT64_MIN, .until_ms = INT64_MAX,
    };
    int64_t now = wall_ms();
    char from[48], to[48];
    uint64_t rows = 0;
    int rc;

    if (a->since && (rc = parse_time_opt(a, "--since", a->since, now, &q.since_ms)) != 0)
        return rc;
    if (a->until && (rc = parse_time_opt(a, "--until", a->until, now, &q.until_ms)) != 0)
        return rc;
    if (q.since_ms >= q.until_ms) {
        et_time_format_iso(q.since_ms, from, sizeof(from));
        et_time_format_iso(q.until_ms, to, sizeof(to));
        fprintf(stderr, PROG " query: --since %s is not before --until %s\n", from, to);
        return 2;
    }
    if ((rc = check_names(r, a, a->metric)) != 0)
        return rc;
    rc = et_report_query(r, stdout, &q, a->csv, &rows);
    if (rc < 0)
        return report_error(a, rc);
    if (rows == 0 && !a->csv)
        fprintf(stderr, PROG " query: no samples of %s from %s in that time range\n",
                a->metric, a->device);
    return 0;
}

struct tail_ctx {
    int64_t last_id;
    unsigned rows;
};

static int tail_print(void *ctx, const struct et_store_sample *smp)
{
    struct tail_ctx *tc = ctx;

    tc->last_id = smp->id;
    tc->rows++;
    return et_report_tail_line(stdout, smp);
}

static int cmd_tail(struct et_store_reader *r, const struct ctl_args *a)
{
    struct tail_ctx tc = { .last_id = 0 };
    struct pollfd pfd = { .events = POLLIN };
    int64_t interval = 500;
    sigset_t set;
    int rc, n;

    if (a->interval && (et_parse_duration_ms(a->interval, &interval) < 0 || interval < 10 ||
                        interval > 3600 * 1000)) {
        fprintf(stderr, PROG " tail: --interval \"%s\": expected a duration from 10ms to 1h, "
                "like 500ms or 2s\n", a->interval);
        return 2;
    }
    if (a->device && (rc = check_names(r, a, NULL)) != 0)
        return rc;
    /* Ctrl-C ends the wait between polls; the signal is read, not handled. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
        (pfd.fd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
        fprintf(stderr, PROG " tail: cannot set up signal handling: %s\n", strerror(errno));
        return 1;
    }
    /* Only what lands from now on. */
    rc = et_store_last_sample_id(r, &tc.last_id);
    while (rc == 0) {
        /* A full page means more are waiting: read on before sleeping. */
        do {
            tc.rows = 0;
            rc = et_store_samples_after(r, tc.last_id, a->device, TAIL_BATCH, tail_print, &tc);
            fflush(stdout);
        } while (rc == 0 && tc.rows == TAIL_BATCH);
        if (rc != 0)
            break;
        n = poll(&pfd, 1, (int)interval);
        if (n > 0)
            break;   /* SIGINT or SIGTERM */
        if (n < 0 && errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    close(pfd.fd);
    return rc < 0 ? report_error(a, rc) : 0;
}

/* ---- arguments -------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct ctl_args *a)
{
    static const struct option opts[] = {
        { "store", required_argument, NULL, 's' },
        { "device", required_argument, NULL, 'd' },
        { "metric", required_argument, NULL, 'm' },
        { "since", required_argument, NULL, 'S' },
        { "until", required_argument, NULL, 'U' },
        { "interval", required_argument, NULL, 'i' },
        { "csv", no_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    /* GNU getopt permutes: options may come before or after the command. */
    while ((opt = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        switch (opt) {
        case 's': a->store = optarg; a->given |= OPT_STORE; break;
        case 'd': a->device = optarg; a->given |= OPT_DEVICE; break;
        case 'm': a->metric = optarg; a->given |= OPT_METRIC; break;
        case 'S': a->since = optarg; a->given |= OPT_SINCE; break;
        case 'U': a->until = optarg; a->given |= OPT_UNTIL; break;
        case 'i': a->interval = optarg; a->given |= OPT_INTERVAL; break;
        case 'C': a->csv = true; a->given |= OPT_CSV; break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf(PROG " %s\n", ET_VERSION);
            exit(0);
        default:
            fprintf(stderr, PROG ": try --help\n");
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, PROG ": no command given (devices, metrics, query, tail, quarantine, keys, "
                "config, ca; try --help)\n");
        return 2;
    }
    a->command = argv[optind];
    if (optind + 1 < argc) {
        fprintf(stderr, PROG " %s: unexpected argument \"%s\" (try --help)\n", a->command,
                argv[optind + 1]);
        return 2;
    }
    return 0;
}

/*
 * A command that takes its own arguments, after any --store PATH: its exit
 * status, or -1 when the command is not one of them.
 */
static int own_command(int argc, char **argv)
{
    const char *store = NULL;
    int i = 1;

    for (;;) {
        if (i + 1 < argc && strcmp(argv[i], "--store") == 0) {
            store = argv[i + 1];
            i += 2;
        } else if (i < argc && strncmp(argv[i], "--store=", 8) == 0) {
            store = argv[i] + 8;
            i++;
        } else {
            break;
        }
    }
    for (size_t c = 0; i < argc && c < N_OWN_COMMANDS; c++) {
        if (strcmp(argv[i], own_commands[c].name) == 0)
            return own_commands[c].main(argc - i, argv + i, store);
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct ctl_args a = { .store = ET_STORE_DEFAULT_PATH };
    const struct ctl_command *cmd = NULL;
    struct et_store *s = NULL;
    char err[256];
    int rc;

    et_log_init(PROG, ET_LOG_WARN);
    rc = own_command(argc, argv);
    if (rc >= 0)
        return rc;
    rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, a.command) == 0)
            cmd = &commands[i];
    }
    if (!cmd) {
        fprintf(stderr, PROG ": unknown command \"%s\" (devices, metrics, query, tail, "
                "quarantine, keys, config, ca, store; try --help)\n", a.command);
        return 2;
    }
    for (unsigned bit = OPT_DEVICE; bit <= OPT_INTERVAL; bit <<= 1) {
        if ((a.given & bit) && !(cmd->allowed & bit)) {
            fprintf(stderr, PROG " %s: %s does not apply to this command (try --help)\n",
                    cmd->name, opt_name(bit));
            return 2;
        }
        if ((cmd->required & bit) && !(a.given & bit)) {
            fprintf(stderr, PROG " %s: %s is required (try --help)\n", cmd->name,
                    opt_name(bit));
            return 2;
        }
    }

    rc = et_store_open(&s, NULL, a.store, ET_STORE_READONLY, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, PROG ": store %s: %s%s\n", a.store, err,
                rc == -ENOENT ? (a.given & OPT_STORE
                                 ? " (is it the aggregator's [store] path?)"
                                 : " (the default; give the aggregator's [store] path with"
                                   " --store PATH)")
                              : "");
        return 1;
    }
    rc = cmd->run(et_store_reader(s), &a);
    et_store_close(s);
    return rc;
}
