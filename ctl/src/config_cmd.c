/*
 * edgetelctl config sign --key PRIV --device D|--group G --version N
 *                        [--deadline DUR] [--add-key PUB]... [--remove-key ID]...
 *                        FILE OUT
 *
 * Parses FILE with the agent's own config code (et_config_load: the same
 * rows, the same whole-file checks, the same "file:line: what is wrong"),
 * so a file the board would refuse is refused here, before it is signed.
 * Then encodes it as a ConfigBody, signs it with the operator's private
 * key and writes the SignedConfig bytes to OUT. Handing OUT to the
 * aggregator (config push) is the next step.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/config_wire.h"
#include "edgetel/parse.h"
#include "edgetel/sign.h"
#include "sign_cmd.h"

#define PROG "edgetelctl config"
/* More key changes in one push than any rotation needs. */
#define MAX_KEY_CHANGES 8

struct sign_args {
    const char *key, *device, *group, *version, *deadline, *file, *out;
    const char *add[MAX_KEY_CHANGES];
    size_t n_add;
    uint8_t remove[MAX_KEY_CHANGES][ET_SIGN_KEY_ID_LEN];
    size_t n_remove;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: edgetelctl config sign [--key PRIV] --device D|--group G --version N\n"
               "                              [--deadline DUR] [--add-key PUB]... "
               "[--remove-key ID]... FILE OUT\n"
               "  FILE is an agent config, checked as the agent checks it; OUT receives the\n"
               "  signed config. PRIV defaults to the key of \"edgetelctl keys init\". N must\n"
               "  be above the version the boards run. DUR: the commit deadline (default 2m).\n"
               "  --add-key trusts another operator key from then on; --remove-key ID (16\n"
               "  hex digits, as keys init prints) stops trusting one.\n");
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

static int parse_sign_args(int argc, char **argv, struct sign_args *a)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "device", required_argument, NULL, 'd' },
        { "group", required_argument, NULL, 'g' },
        { "version", required_argument, NULL, 'v' },
        { "deadline", required_argument, NULL, 'D' },
        { "add-key", required_argument, NULL, 'a' },
        { "remove-key", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'k': a->key = optarg; break;
        case 'd': a->device = optarg; break;
        case 'g': a->group = optarg; break;
        case 'v': a->version = optarg; break;
        case 'D': a->deadline = optarg; break;
        case 'a':
            if (a->n_add == MAX_KEY_CHANGES) {
                fprintf(stderr, PROG " sign: at most %d --add-key\n", MAX_KEY_CHANGES);
                return 2;
            }
            a->add[a->n_add++] = optarg;
            break;
        case 'r':
            if (a->n_remove == MAX_KEY_CHANGES || parse_key_id(optarg, a->remove[a->n_remove])) {
                fprintf(stderr, PROG " sign: --remove-key \"%s\": expected a key id of 16 hex "
                        "digits (at most %d)\n", optarg, MAX_KEY_CHANGES);
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
    if (optind >= argc || strcmp(argv[optind], "sign") != 0) {
        fprintf(stderr, PROG ": expected \"config sign ...\" (try config --help)\n");
        return 2;
    }
    if (argc - optind != 3) {
        fprintf(stderr, PROG " sign: give FILE and OUT (try config --help)\n");
        return 2;
    }
    a->file = argv[optind + 1];
    a->out = argv[optind + 2];
    if (!a->device == !a->group) {
        fprintf(stderr, PROG " sign: give exactly one of --device D and --group G\n");
        return 2;
    }
    if (!a->version) {
        fprintf(stderr, PROG " sign: --version N is required (above the version the boards "
                "run)\n");
        return 2;
    }
    return 0;
}

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

static int cmd_sign(const struct sign_args *a)
{
    struct et_config c;
    struct et_config_push p = { .device_id = a->device, .group = a->group };
    struct et_sign_key *key = NULL, *add[MAX_KEY_CHANGES] = { NULL };
    char keypath[4200], err[1024], hex[ET_SIGN_KEY_ID_TEXT], *end;
    uint8_t *buf = NULL, id[ET_SIGN_KEY_ID_LEN];
    struct timespec now;
    size_t len = 0;
    int64_t deadline = 0;
    int rc, status = 1;

    memset(&c, 0, sizeof(c));
    errno = 0;
    p.version = strtoull(a->version, &end, 10);
    if (errno || *end || !*a->version || a->version[0] == '-' || p.version == 0) {
        fprintf(stderr, PROG " sign: --version \"%s\": expected a whole number from 1\n",
                a->version);
        return 2;
    }
    if (a->deadline && (et_parse_duration_ms(a->deadline, &deadline) || deadline <= 0)) {
        fprintf(stderr, PROG " sign: --deadline \"%s\": expected a duration like 2m\n",
                a->deadline);
        return 2;
    }
    p.commit_deadline_ms = (uint64_t)deadline;
    if (a->key) {
        snprintf(keypath, sizeof(keypath), "%s", a->key);
    } else {
        if (et_ctl_key_dir(keypath, sizeof(keypath) - sizeof(ET_CTL_PRIVATE_KEY) - 1)) {
            fprintf(stderr, PROG " sign: neither XDG_CONFIG_HOME nor HOME is set: give "
                    "--key PRIV\n");
            return 2;
        }
        strcat(keypath, "/" ET_CTL_PRIVATE_KEY);
    }

    /* The file first: a config the board would refuse is never signed. */
    rc = et_config_load(a->file, &c, err, sizeof(err));
    if (rc) {
        fprintf(stderr, PROG " sign: %s\n", err);
        goto out;
    }
    rc = et_sign_key_load_private(keypath, &key, err, sizeof(err));
    if (rc) {
        fprintf(stderr, PROG " sign: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < a->n_add; i++) {
        rc = et_sign_key_load_public(a->add[i], &add[i], err, sizeof(err));
        if (rc) {
            fprintf(stderr, PROG " sign: --add-key: %s\n", err);
            goto out;
        }
    }
    p.add_keys = (const struct et_sign_key *const *)add;
    p.n_add_keys = a->n_add;
    p.remove_ids = (const uint8_t (*)[ET_SIGN_KEY_ID_LEN])a->remove;
    p.n_remove_ids = a->n_remove;
    clock_gettime(CLOCK_REALTIME, &now);
    p.signed_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    rc = et_config_sign(&c, &p, key, &buf, &len, err, sizeof(err));
    if (rc) {
        fprintf(stderr, PROG " sign: %s\n", err);
        goto out;
    }
    rc = write_out(a->out, buf, len);
    if (rc) {
        fprintf(stderr, PROG " sign: %s: cannot write: %s\n", a->out, strerror(-rc));
        goto out;
    }
    et_sign_key_id(key, id);
    printf("signed config v%" PRIu64 " for %s %s with key %s: %s (%zu bytes)\n", p.version,
           a->device ? "device" : "group", a->device ? a->device : a->group,
           et_sign_key_id_text(id, hex), a->out, len);
    status = 0;
out:
    free(buf);
    for (size_t i = 0; i < a->n_add; i++)
        et_sign_key_destroy(add[i]);
    et_sign_key_destroy(key);
    et_config_free(&c);
    return status;
}

int et_ctl_config_main(int argc, char **argv)
{
    struct sign_args a = { 0 };
    int rc = parse_sign_args(argc, argv, &a);

    if (rc)
        return rc;
    return cmd_sign(&a);
}
