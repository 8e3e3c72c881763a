/*
 * edgetelctl config: signed configuration from the operator's machine.
 *
 *   config sign [--key PRIV] --device D|--group G --version N [--deadline DUR]
 *               [--add-key PUB]... [--remove-key ID]... FILE OUT
 *   config push [--key PRIV] --device D|--group G [--deadline DUR]
 *               [--add-key PUB]... [--remove-key ID]... FILE      (config_push.c)
 *   config status [--device D] [--csv]                            (config_push.c)
 *
 * sign and push parse FILE with the agent's own config code (et_config_load:
 * the same rows, the same whole-file checks, the same "file:line: what is
 * wrong"), so a file the board would refuse is refused here, before it is
 * signed; then encode it as a ConfigBody and sign it with the operator's
 * private key. sign writes the SignedConfig to OUT; push queues it in the
 * aggregator's store with the fleet's next version, for the aggregator to
 * send. [agent] data_dir is not carried: it is the board's own.
 */
#include "config_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/parse.h"
#include "edgetel/store.h"
#include "sign_cmd.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgetelctl [--store PATH] config push [--key PRIV] --device D|--group G\n"
            "                  [--deadline DUR] [--add-key PUB]... [--remove-key ID]... FILE\n"
            "       edgetelctl [--store PATH] config status [--device D] [--csv]\n"
            "       edgetelctl config sign [--key PRIV] --device D|--group G --version N\n"
            "                  [--deadline DUR] [--add-key PUB]... [--remove-key ID]... FILE OUT\n"
            "\n"
            "  push checks FILE, an agent config, as the agent does, signs it for one board\n"
            "  (--device) or for every board whose file says [agent] groups = G, ... (--group),\n"
            "  and queues it in the aggregator's store with the fleet's next version; the\n"
            "  aggregator sends it to the boards, which verify, apply, and commit or revert.\n"
            "  Versions are one counter for the whole fleet: a board runs the newest config\n"
            "  for itself or any of its groups. [agent] data_dir is never sent: it stays the\n"
            "  board's own.\n"
            "  status shows per device its desired config, the version it runs, and its\n"
            "  last report (with --device, its recent reports too).\n"
            "  sign writes the signed config to OUT instead, with the version N given.\n"
            "\n"
            "  PRIV defaults to the key of \"edgetelctl keys init\" (it must be readable by its\n"
            "  owner only). DUR: the commit deadline (default 2m). --add-key trusts another\n"
            "  operator key from then on; --remove-key ID (16 hex digits, as keys init\n"
            "  prints) stops trusting one. PATH: the aggregator's store (default %s).\n",
            ET_STORE_DEFAULT_PATH);
}

static int parse_key_id(const char *s, uint8_t id[ET_SIGN_KEY_ID_LEN])
{
    if (strlen(s) != 2 * ET_SIGN_KEY_ID_LEN)
        return -EINVAL;
    for (size_t i = 0; i < ET_SIGN_KEY_ID_LEN; i++) {
        unsigned v;

        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
            return -EINVAL;
        id[i] = (uint8_t)v;
    }
    return 0;
}

/* Options each subcommand takes, and how many names follow it. */
enum {
    OPT_KEY = 1 << 0, OPT_DEVICE = 1 << 1, OPT_GROUP = 1 << 2, OPT_VERSION = 1 << 3,
    OPT_DEADLINE = 1 << 4, OPT_ADD = 1 << 5, OPT_REMOVE = 1 << 6, OPT_CSV = 1 << 7,
    OPT_STORE = 1 << 8,
};
#define OPT_SIGNING (OPT_KEY | OPT_DEVICE | OPT_GROUP | OPT_DEADLINE | OPT_ADD | OPT_REMOVE)

static const struct {
    const char *name;
    unsigned allowed;
    int names;                /* FILE [OUT] */
    const char *what;         /* the names, for a message */
} subs[] = {
    { "sign", OPT_SIGNING | OPT_VERSION, 2, "FILE and OUT" },
    { "push", OPT_SIGNING | OPT_STORE, 1, "FILE" },
    { "status", OPT_DEVICE | OPT_CSV | OPT_STORE, 0, "nothing" },
};

static const char *const opt_names[] = {
    "--key", "--device", "--group", "--version", "--deadline", "--add-key", "--remove-key",
    "--csv", "--store",
};

static int parse_config_args(int argc, char **argv, struct config_args *a, unsigned *given)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "device", required_argument, NULL, 'd' },
        { "group", required_argument, NULL, 'g' },
        { "version", required_argument, NULL, 'v' },
        { "deadline", required_argument, NULL, 'D' },
        { "add-key", required_argument, NULL, 'a' },
        { "remove-key", required_argument, NULL, 'r' },
        { "csv", no_argument, NULL, 'C' },
        { "store", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'k': a->key = optarg; *given |= OPT_KEY; break;
        case 'd': a->device = optarg; *given |= OPT_DEVICE; break;
        case 'g': a->group = optarg; *given |= OPT_GROUP; break;
        case 'v': a->version = optarg; *given |= OPT_VERSION; break;
        case 'D': a->deadline = optarg; *given |= OPT_DEADLINE; break;
        case 'C': a->csv = true; *given |= OPT_CSV; break;
        case 's': a->store = optarg; *given |= OPT_STORE; break;
        case 'a':
            *given |= OPT_ADD;
            if (a->n_add == CTL_MAX_KEY_CHANGES) {
                fprintf(stderr, PROG_CONFIG ": at most %d --add-key\n", CTL_MAX_KEY_CHANGES);
                return 2;
            }
            a->add[a->n_add++] = optarg;
            break;
        case 'r':
            *given |= OPT_REMOVE;
            if (a->n_remove == CTL_MAX_KEY_CHANGES ||
                parse_key_id(optarg, a->remove[a->n_remove])) {
                fprintf(stderr, PROG_CONFIG ": --remove-key \"%s\": expected a key id of 16 "
                        "hex digits (at most %d)\n", optarg, CTL_MAX_KEY_CHANGES);
                return 2;
            }
            a->n_remove++;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, PROG_CONFIG ": expected sign, push or status (try config --help)\n");
        return 2;
    }
    a->sub = argv[optind];
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(subs[i].name, a->sub) != 0)
            continue;
        for (unsigned bit = 0; bit < sizeof(opt_names) / sizeof(opt_names[0]); bit++) {
            if ((*given & (1u << bit)) && !(subs[i].allowed & (1u << bit))) {
                fprintf(stderr, PROG_CONFIG " %s: %s does not apply (try config --help)\n",
                        a->sub, opt_names[bit]);
                return 2;
            }
        }
        if (argc - optind - 1 != subs[i].names) {
            fprintf(stderr, PROG_CONFIG " %s: give %s (try config --help)\n", a->sub,
                    subs[i].what);
            return 2;
        }
        a->file = subs[i].names > 0 ? argv[optind + 1] : NULL;
        a->out = subs[i].names > 1 ? argv[optind + 2] : NULL;
        if ((subs[i].allowed & OPT_GROUP) && !a->device == !a->group) {
            fprintf(stderr, PROG_CONFIG " %s: give exactly one of --device D and --group G\n",
                    a->sub);
            return 2;
        }
        return 0;
    }
    fprintf(stderr, PROG_CONFIG ": unknown command \"%s\": expected sign, push or status (try "
            "config --help)\n", a->sub);
    return 2;
}

/* ---- signing -------------------------------------------------------------- */

int ctl_config_inputs_load(const struct config_args *a, struct config_inputs *in)
{
    char keypath[4200], err[1024];
    uint8_t id[ET_SIGN_KEY_ID_LEN];
    int64_t deadline = 0;
    int rc;

    memset(in, 0, sizeof(*in));
    if (a->deadline && (et_parse_duration_ms(a->deadline, &deadline) || deadline <= 0)) {
        fprintf(stderr, PROG_CONFIG " %s: --deadline \"%s\": expected a duration like 2m\n",
                a->sub, a->deadline);
        return 2;
    }
    if (a->key) {
        snprintf(keypath, sizeof(keypath), "%s", a->key);
    } else {
        if (et_ctl_key_dir(keypath, sizeof(keypath) - sizeof(ET_CTL_PRIVATE_KEY) - 1)) {
            fprintf(stderr, PROG_CONFIG " %s: neither XDG_CONFIG_HOME nor HOME is set: give "
                    "--key PRIV\n", a->sub);
            return 2;
        }
        strcat(keypath, "/" ET_CTL_PRIVATE_KEY);
    }
    in->push = (struct et_config_push){
        .device_id = a->device,
        .group = a->group,
        .commit_deadline_ms = (uint64_t)deadline,
        .add_keys = (const struct et_sign_key *const *)in->add,
        .n_add_keys = a->n_add,
        .remove_ids = (const uint8_t (*)[ET_SIGN_KEY_ID_LEN])a->remove,
        .n_remove_ids = a->n_remove,
    };

    /* The file first: a config the board would refuse is never signed. */
    rc = et_config_load(a->file, &in->config, err, sizeof(err));
    if (rc == 0) {
        /* The board keeps its own data directory (config.proto, AgentConfig). */
        free(in->config.data_dir);
        in->config.data_dir = NULL;
        rc = et_sign_key_load_private(keypath, &in->key, err, sizeof(err));
    }
    for (size_t i = 0; rc == 0 && i < a->n_add; i++) {
        rc = et_sign_key_load_public(a->add[i], &in->add[i], err, sizeof(err));
        if (rc)
            snprintf(err + strlen(err), sizeof(err) - strlen(err), " (--add-key)");
    }
    if (rc) {
        fprintf(stderr, PROG_CONFIG " %s: %s\n", a->sub, err);
        ctl_config_inputs_free(in);
        return 1;
    }
    et_sign_key_id(in->key, id);
    et_sign_key_id_text(id, in->key_id);
    return 0;
}

int ctl_config_inputs_sign(struct config_inputs *in, uint64_t version, uint8_t **out,
                           size_t *len)
{
    struct timespec now;
    char err[1024];

    clock_gettime(CLOCK_REALTIME, &now);
    in->push.version = version;
    in->push.signed_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (et_config_sign(&in->config, &in->push, in->key, out, len, err, sizeof(err)) == 0)
        return 0;
    fprintf(stderr, PROG_CONFIG ": %s\n", err);
    return 1;
}

void ctl_config_inputs_free(struct config_inputs *in)
{
    for (size_t i = 0; i < CTL_MAX_KEY_CHANGES; i++)
        et_sign_key_destroy(in->add[i]);
    et_sign_key_destroy(in->key);
    et_config_free(&in->config);
    memset(in, 0, sizeof(*in));
}

/* ---- config sign ---------------------------------------------------------- */

/* OUT written whole or not at all: a temporary file renamed over it. */
static int write_out(const char *path, const uint8_t *buf, size_t len)
{
    char tmp[4200];
    size_t done = 0;
    int fd, rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    while (done < len && !rc) {
        ssize_t w = write(fd, buf + done, len - done);

        if (w < 0 && errno != EINTR)
            rc = -errno;
        else if (w > 0)
            done += (size_t)w;
    }
    if (!rc && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

static int cmd_sign(const struct config_args *a)
{
    struct config_inputs in;
    uint64_t version;
    uint8_t *buf = NULL;
    size_t len = 0;
    char *end;
    int rc;

    if (!a->version) {
        fprintf(stderr, PROG_CONFIG " sign: --version N is required (above the version the "
                "boards run; config push chooses it for you)\n");
        return 2;
    }
    errno = 0;
    version = strtoull(a->version, &end, 10);
    if (errno || *end || !*a->version || a->version[0] == '-' || version == 0) {
        fprintf(stderr, PROG_CONFIG " sign: --version \"%s\": expected a whole number from 1\n",
                a->version);
        return 2;
    }
    rc = ctl_config_inputs_load(a, &in);
    if (rc)
        return rc;
    rc = ctl_config_inputs_sign(&in, version, &buf, &len);
    if (rc == 0 && (rc = write_out(a->out, buf, len)) != 0) {
        fprintf(stderr, PROG_CONFIG " sign: %s: cannot write: %s\n", a->out, strerror(-rc));
        rc = 1;
    }
    if (rc == 0)
        printf("signed config v%" PRIu64 " for %s %s with key %s: %s (%zu bytes)\n", version,
               a->device ? "device" : "group", a->device ? a->device : a->group, in.key_id,
               a->out, len);
    free(buf);
    ctl_config_inputs_free(&in);
    return rc;
}

int et_ctl_config_main(int argc, char **argv, const char *store)
{
    struct config_args a = { .store = store };
    unsigned given = 0;
    int rc = parse_config_args(argc, argv, &a, &given);

    if (rc)
        return rc;
    if (!a.store)
        a.store = ET_STORE_DEFAULT_PATH;
    if (strcmp(a.sub, "sign") == 0)
        return cmd_sign(&a);
    if (strcmp(a.sub, "push") == 0)
        return ctl_config_push(&a);
    return ctl_config_status(&a);
}
