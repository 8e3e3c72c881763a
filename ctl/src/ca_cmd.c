/*
 * edgetelctl ca: the fleet CA on the operator's machine (common/ca/, et_ca).
 *
 *   ca init   [--dir D] [--days N]          root and issuing CA, empty CRL
 *   ca issue  server NAME [--san NAME]...   the broker (127.0.0.1, localhost, NAME, ...)
 *   ca issue  aggregator INSTANCE           an aggregator instance: aggregator-INSTANCE
 *   ca issue  issuer INSTANCE               the cloud issuer (ca serve): issuer-INSTANCE
 *   ca issue  device ID [--csr FILE]        a device, from a key made here or a CSR
 *             [--out DIR] [--days N | --minutes M]   (every issue)
 *   ca revoke NAME                          revoke its certificates, write the CRL
 *   ca crl    [--days N]                    write the CRL again (before it ends)
 *   ca list                                 every certificate issued
 *   ca serve  --config FILE                 the cloud issuer: sign devices' CSRs over
 *                                           MQTT (ca_serve.c, its rules issuer.c)
 *
 * The CA directory is --dir, else $XDG_CONFIG_HOME/edgetel/ca, else
 * ~/.config/edgetel/ca. Exit status: 0 done, 1 failed, 2 a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ca_cmd.h"
#include "ca_serve.h"
#include "edgetel/ca.h"
#include "edgetel/sign.h"
#include "edgetel/text.h"
#include "edgetel/timefmt.h"
#include "sign_cmd.h"

#define PROG "edgetelctl ca"
#define DAY_S 86400LL
#define LEAF_DAYS 825
#define MAX_SAN 16
#define CSR_MAX 16384

struct ca_args {
    const char *dir;
    const char *config;        /* serve */
    const char *out;
    const char *csr;
    const char *san[MAX_SAN];
    size_t n_san;
    int64_t lifetime_s;        /* 0: the default */
    char **rest;               /* the words after the subcommand */
    int n_rest;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgetelctl ca init   [--dir D] [--days N]\n"
            "       edgetelctl ca issue  server NAME [--san NAME|ADDRESS]...\n"
            "       edgetelctl ca issue  aggregator INSTANCE\n"
            "       edgetelctl ca issue  issuer INSTANCE\n"
            "       edgetelctl ca issue  device ID [--csr FILE]\n"
            "                            [--out DIR] [--days N | --minutes M]\n"
            "       edgetelctl ca revoke NAME [--dir D]\n"
            "       edgetelctl ca crl    [--dir D] [--days N]\n"
            "       edgetelctl ca list   [--dir D]\n"
            "       edgetelctl ca serve  [--dir D] --config FILE\n"
            "\n"
            "The fleet CA: a root CA and an issuing CA (ECDSA P-256) in D (default\n"
            "$XDG_CONFIG_HOME/edgetel/ca, else ~/.config/edgetel/ca). init makes them\n"
            "(the issuing CA for N days, default 3650) and an empty CRL; D/ca.crt is\n"
            "what the broker, the aggregators and the agents trust, D/crl.pem what the\n"
            "broker reads as its crlfile. issue writes OUT/NAME.crt (the certificate and\n"
            "the issuing CA's) and, without --csr, a new key OUT/NAME.key (0600); OUT\n"
            "defaults to D/issued. A server certificate names 127.0.0.1, localhost, NAME\n"
            "and each --san; an aggregator instance is named aggregator-INSTANCE, the\n"
            "client id the broker binds to it, and the issuer that signs the devices'\n"
            "CSRs (ca serve) issuer-INSTANCE. Device ids reserved for others\n"
            "(aggregator*, ops*, issuer*, claim*, broker, server, localhost, ca, a\n"
            "server's name) are refused. Certificates last %d days unless --days or\n"
            "--minutes says.\n"
            "revoke writes D/crl.pem; restart the broker to make it read it. crl writes\n"
            "it again, valid for N days (default 365): a broker with an expired CRL\n"
            "refuses every client. serve is the cloud issuer: it takes the devices'\n"
            "CSRs from the broker and answers each (enrollment by claim, renewal); FILE\n"
            "is its config ([issuer] device_lifetime, share_group; [mqtt] host, port,\n"
            "ca, cert, key of an issuer-INSTANCE certificate).\n", LEAF_DAYS);
}

int et_ctl_ca_dir(const char *given, char *buf, size_t len)
{
    if (given) {
        if (snprintf(buf, len, "%s", given) >= (int)len) {
            fprintf(stderr, "edgetelctl: --dir: name too long\n");
            return 2;
        }
        return 0;
    }
    if (et_ctl_key_dir(buf, len - 4) != 0) {
        fprintf(stderr, "edgetelctl: neither XDG_CONFIG_HOME nor HOME is set: give --dir D\n");
        return 2;
    }
    strcat(buf, "/ca");
    return 0;
}

static int parse_count(const char *opt, const char *text, int64_t unit, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || *end || v <= 0 || v > 100LL * 365 * DAY_S / unit) {
        fprintf(stderr, PROG ": %s \"%s\": expected a positive whole number\n", opt, text);
        return 2;
    }
    *out = v * unit;
    return 0;
}

static int parse_args(int argc, char **argv, struct ca_args *a)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "out", required_argument, NULL, 'o' },
        { "csr", required_argument, NULL, 'c' },
        { "san", required_argument, NULL, 's' },
        { "days", required_argument, NULL, 'D' },
        { "minutes", required_argument, NULL, 'M' },
        { "config", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool days = false, minutes = false;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': a->dir = optarg; break;
        case 'o': a->out = optarg; break;
        case 'c': a->csr = optarg; break;
        case 'C': a->config = optarg; break;
        case 's':
            if (a->n_san == MAX_SAN) {
                fprintf(stderr, PROG ": at most %d --san\n", MAX_SAN);
                return 2;
            }
            a->san[a->n_san++] = optarg;
            break;
        case 'D':
            days = true;
            if ((rc = parse_count("--days", optarg, DAY_S, &a->lifetime_s)))
                return rc;
            break;
        case 'M':
            minutes = true;
            if ((rc = parse_count("--minutes", optarg, 60, &a->lifetime_s)))
                return rc;
            break;
        case 'h': usage(stdout); exit(0);
        default: fprintf(stderr, PROG ": try ca --help\n"); return 2;
        }
    }
    if (days && minutes) {
        fprintf(stderr, PROG ": --days and --minutes: give one\n");
        return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, PROG ": expected init, issue, revoke, crl, list or serve (try ca "
                "--help)\n");
        return 2;
    }
    a->rest = argv + optind;
    a->n_rest = argc - optind;
    return 0;
}

static int fail(const char *err)
{
    fprintf(stderr, PROG ": %s\n", err);
    return 1;
}

/* The words a subcommand takes after its name, and the options it allows. */
static int expect(const struct ca_args *a, int words, bool issue_opts, bool lifetime)
{
    if (a->n_rest != words + 1) {
        fprintf(stderr, PROG " %s: %s (try ca --help)\n", a->rest[0],
                a->n_rest <= words ? "missing arguments" : "too many arguments");
        return 2;
    }
    if (!issue_opts && (a->out || a->csr || a->n_san)) {
        fprintf(stderr, PROG " %s: --out, --csr and --san go with issue\n", a->rest[0]);
        return 2;
    }
    if (a->config && strcmp(a->rest[0], "serve") != 0) {
        fprintf(stderr, PROG " %s: --config goes with serve\n", a->rest[0]);
        return 2;
    }
    if (!lifetime && a->lifetime_s) {
        fprintf(stderr, PROG " %s: takes no --days or --minutes\n", a->rest[0]);
        return 2;
    }
    return 0;
}

static int cmd_init(const struct ca_args *a, const char *dir)
{
    struct et_ca_init_opts o = { .issuing_lifetime_s = a->lifetime_s };
    char err[512];
    int rc = expect(a, 0, false, true);

    if (rc)
        return rc;
    if (et_ca_init(dir, &o, (int64_t)time(NULL), err, sizeof(err)) != 0)
        return fail(err);
    printf("fleet CA made in %s\n"
           "  %s/" ET_CA_TRUST "  give it to the broker (cafile), the aggregators and the "
           "agents ([mqtt] ca)\n"
           "  %s/" ET_CA_CRL "  the broker's crlfile\n"
           "  %s/" ET_CA_ROOT_KEY " and " ET_CA_ISSUING_KEY "  the keys (0600); the root's is "
           "needed again only for a new issuing CA: keep it offline\n",
           dir, dir, dir, dir);
    return 0;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    if (!f)
        return -errno;
    buf = malloc(CSR_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    n = fread(buf, 1, CSR_MAX, f);
    fclose(f);
    if (n == 0 || n == CSR_MAX) {
        free(buf);
        return -EINVAL;
    }
    buf[n] = '\0';
    *data = buf;
    /* Mbed TLS counts a PEM's NUL in its length. */
    *len = strstr((char *)buf, "-----BEGIN") ? n + 1 : n;
    return 0;
}

static int write_cert(const char *path, const char *pem)
{
    char tmp[PATH_MAX + 96];
    FILE *f;
    int rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    if (fputs(pem, f) < 0)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        remove(tmp);
    return rc;
}

static int cmd_issue(const struct ca_args *a, const char *dir)
{
    struct et_ca_request req = { .alt_names = a->san, .n_alt_names = a->n_san };
    char name[ET_CA_NAME_MAX + 16], out[PATH_MAX], crt_path[PATH_MAX + 80],
        key_path[PATH_MAX + 80], err[512], until[48];
    struct et_ca *ca = NULL;
    struct et_ca_cert info;
    uint8_t *csr = NULL;
    size_t csr_len = 0;
    char *pem = NULL;
    int rc = expect(a, 2, true, true);

    if (rc)
        return rc;
    if (et_ca_kind_parse(a->rest[1], &req.kind) != 0) {
        fprintf(stderr, PROG " issue: \"%s\": expected server, aggregator, issuer or device\n",
                a->rest[1]);
        return 2;
    }
    if (req.kind == ET_CA_CLAIM) {
        fprintf(stderr, PROG " issue: a claim is made by edgetelctl provision DEVICE, which "
                "registers the device with it\n");
        return 2;
    }
    if (a->n_san && req.kind != ET_CA_SERVER) {
        fprintf(stderr, PROG " issue: --san goes with a server certificate\n");
        return 2;
    }
    if (req.kind == ET_CA_AGGREGATOR &&
        strncmp(a->rest[2], ET_CA_AGGREGATOR_PREFIX, strlen(ET_CA_AGGREGATOR_PREFIX)) != 0)
        snprintf(name, sizeof(name), ET_CA_AGGREGATOR_PREFIX "%s", a->rest[2]);
    else if (req.kind == ET_CA_ISSUER &&
             strncmp(a->rest[2], ET_CA_ISSUER_PREFIX, strlen(ET_CA_ISSUER_PREFIX)) != 0)
        snprintf(name, sizeof(name), ET_CA_ISSUER_PREFIX "%s", a->rest[2]);
    else
        snprintf(name, sizeof(name), "%s", a->rest[2]);
    req.name = name;
    req.lifetime_s = a->lifetime_s ? a->lifetime_s : LEAF_DAYS * DAY_S;

    if (et_ca_open(&ca, dir, err, sizeof(err)) != 0)
        return fail(err);
    /* Checked before a key is made for it. */
    if (et_ca_name_check(ca, req.kind, name, err, sizeof(err)) != 0) {
        rc = fail(err);
        goto out;
    }
    if (a->out)
        snprintf(out, sizeof(out), "%s", a->out);
    else
        et_ca_path(ca, "issued", out, sizeof(out));
    if ((rc = et_sign_make_dir(out)) != 0) {
        fprintf(stderr, PROG " issue: %s: cannot create: %s\n", out, strerror(-rc));
        rc = 1;
        goto out;
    }
    if (snprintf(crt_path, sizeof(crt_path), "%s/%s.crt", out, name) >= (int)sizeof(crt_path) ||
        snprintf(key_path, sizeof(key_path), "%s/%s.key", out, name) >= (int)sizeof(key_path)) {
        fprintf(stderr, PROG " issue: %s: name too long\n", out);
        rc = 2;
        goto out;
    }
    if (a->csr) {
        if ((rc = read_file(a->csr, &csr, &csr_len)) != 0) {
            fprintf(stderr, PROG " issue: CSR %s: %s\n", a->csr,
                    rc == -EINVAL ? "empty or too large" : strerror(-rc));
            rc = 1;
            goto out;
        }
    } else if ((rc = et_ca_make_key_csr(key_path, name, &csr, &csr_len, err, sizeof(err)))) {
        rc = fail(err);
        goto out;
    }
    if (et_ca_issue_csr(ca, &req, csr, csr_len, (int64_t)time(NULL), &pem, &info, err,
                        sizeof(err)) != 0) {
        if (!a->csr)
            remove(key_path);
        rc = fail(err);
        goto out;
    }
    if ((rc = write_cert(crt_path, pem)) != 0) {
        fprintf(stderr, PROG " issue: %s: %s (issued as serial %s all the same)\n", crt_path,
                strerror(-rc), info.serial);
        rc = 1;
        goto out;
    }
    et_time_format_iso(info.not_after * 1000, until, sizeof(until));
    printf("issued %s %s: serial %s, valid until %s\n  certificate %s\n", et_ca_kind_name(info.kind),
           info.name, info.serial, until, crt_path);
    if (!a->csr)
        printf("  key %s (0600)\n", key_path);
    rc = 0;
out:
    free(pem);
    free(csr);
    et_ca_close(ca);
    return rc;
}

static int cmd_revoke(const struct ca_args *a, const char *dir)
{
    struct et_ca *ca = NULL;
    char err[512], path[PATH_MAX];
    size_t n = 0;
    int rc = expect(a, 1, false, false);

    if (rc)
        return rc;
    if (et_ca_open(&ca, dir, err, sizeof(err)) != 0)
        return fail(err);
    rc = et_ca_revoke(ca, a->rest[1], (int64_t)time(NULL), &n, err, sizeof(err));
    if (rc == 0) {
        et_ca_path(ca, ET_CA_CRL, path, sizeof(path));
        printf("revoked %zu certificate%s of %s; %s written: restart the broker to read it\n",
               n, n == 1 ? "" : "s", a->rest[1], path);
    }
    et_ca_close(ca);
    return rc ? fail(err) : 0;
}

static int cmd_crl(const struct ca_args *a, const char *dir)
{
    struct et_ca *ca = NULL;
    char err[512], path[PATH_MAX];
    int rc = expect(a, 0, false, true);

    if (rc)
        return rc;
    if (et_ca_open(&ca, dir, err, sizeof(err)) != 0)
        return fail(err);
    rc = et_ca_write_crl(ca, (int64_t)time(NULL), a->lifetime_s, err, sizeof(err));
    if (rc == 0) {
        et_ca_path(ca, ET_CA_CRL, path, sizeof(path));
        printf("%s written, valid for %lld days\n", path,
               (long long)((a->lifetime_s ? a->lifetime_s : 365 * DAY_S) / DAY_S));
    }
    et_ca_close(ca);
    return rc ? fail(err) : 0;
}

static int print_cert(void *ctx, const struct et_ca_cert *c)
{
    char until[48], revoked[48] = "-";
    char name[4 * ET_CA_NAME_MAX + 4];

    (void)ctx;
    et_time_format_iso(c->not_after * 1000, until, sizeof(until));
    if (c->revoked_at)
        et_time_format_iso(c->revoked_at * 1000, revoked, sizeof(revoked));
    et_text_escape(c->name, name, sizeof(name));
    printf("%-32s  %-10s  %-24s  %-20s  %s\n", c->serial, et_ca_kind_name(c->kind), name, until,
           revoked);
    return 0;
}

static int cmd_serve(const struct ca_args *a, const char *dir)
{
    int rc = expect(a, 0, false, false);

    return rc ? rc : et_ctl_ca_serve(dir, a->config);
}

static int cmd_list(const struct ca_args *a, const char *dir)
{
    struct et_ca *ca = NULL;
    char err[512];
    int rc = expect(a, 0, false, false);

    if (rc)
        return rc;
    if (et_ca_open(&ca, dir, err, sizeof(err)) != 0)
        return fail(err);
    printf("%-32s  %-10s  %-24s  %-20s  %s\n", "SERIAL", "KIND", "NAME", "NOT AFTER (UTC)",
           "REVOKED");
    et_ca_list(ca, print_cert, NULL);
    et_ca_close(ca);
    return 0;
}

int et_ctl_ca_main(int argc, char **argv, const char *store)
{
    static const struct {
        const char *name;
        int (*run)(const struct ca_args *a, const char *dir);
    } subs[] = {
        { "init", cmd_init }, { "issue", cmd_issue }, { "revoke", cmd_revoke },
        { "crl", cmd_crl }, { "list", cmd_list }, { "serve", cmd_serve },
    };
    struct ca_args a = { 0 };

    (void)store;   /* the CA lives in its own directory, not in the store */
    char dir[PATH_MAX];
    int rc = parse_args(argc, argv, &a);

    if (rc)
        return rc;
    if ((rc = et_ctl_ca_dir(a.dir, dir, sizeof(dir))))
        return rc;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(a.rest[0], subs[i].name) == 0)
            return subs[i].run(&a, dir);
    }
    fprintf(stderr, PROG ": unknown subcommand \"%s\": expected init, issue, revoke, crl, "
            "list or serve (try ca --help)\n", a.rest[0]);
    return 2;
}
