/*
 * edgetelctl provision: register a device for enrollment by claim and
 * write what its board needs.
 *
 *   provision DEVICE [--dir CA] [--valid DUR] [--out DIR]
 *       the claim only: OUT/claim-DEVICE.crt and .key (OUT: CA/claims)
 *   provision DEVICE --boot DIR --broker HOST[:PORT] [--dir CA] [--valid DUR]
 *             [--operator-key PUB] [--template FILE] [--etc DIR] [--data-dir DIR]
 *       a freshly flashed board's first boot, in DIR (the SD card's boot
 *       partition, /boot/firmware/edgetel/ on Raspberry Pi OS):
 *         agent.conf    [agent] device_id (and data_dir, trusted_keys),
 *                       [mqtt] host, port, ca; no cert or key: the board
 *                       makes its own and enrolls with the claim. With
 *                       --template, that file's sections too.
 *         ca.crt        the fleet CA the board trusts
 *         claim.crt, claim.key   the bootstrap credential (et_ca_claim_issue)
 *         operator.pub  the operator's key for signed config, when there is one
 *       The agent moves them to ETC (default /etc/edgetel: the config, the
 *       CA, the operator key) and DATA_DIR/identity/ (the claim) at its
 *       first start, and deletes the claim from the boot partition.
 *
 * The claim lasts --valid (default 7d): until then, one board may enroll
 * as DEVICE, once. Running provision again for a device replaces its claim.
 */
#define _GNU_SOURCE
#include "provision.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/ca.h"
#include "edgetel/ca_claim.h"
#include "edgetel/config.h"
#include "edgetel/ini.h"
#include "edgetel/parse.h"
#include "edgetel/sign.h"
#include "edgetel/timefmt.h"
#include "ca_cmd.h"
#include "sign_cmd.h"

#define PROG "edgetelctl provision"
#define DEFAULT_VALID "7d"
#define DEFAULT_ETC "/etc/edgetel"
#define FILE_MAX (256 * 1024)

struct provision_args {
    const char *device;
    const char *dir;           /* the CA */
    const char *out;
    const char *boot;
    const char *broker;
    const char *operator_key;
    const char *template_file;
    const char *etc;
    const char *data_dir;
    int64_t valid_s;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgetelctl provision DEVICE [--dir CA] [--valid DUR] [--out DIR]\n"
            "       edgetelctl provision DEVICE --boot DIR --broker HOST[:PORT] [--dir CA]\n"
            "                  [--valid DUR] [--operator-key PUB] [--template FILE]\n"
            "                  [--etc DIR] [--data-dir DIR]\n"
            "\n"
            "Registers DEVICE with the fleet CA (CA, as for ca) for enrollment by claim and\n"
            "makes its bootstrap credential, claim-DEVICE: a certificate that can do\n"
            "nothing but ask the issuer (edgetelctl ca serve) for DEVICE's certificate,\n"
            "once, within DUR (default " DEFAULT_VALID "). The board's key is made on the board.\n"
            "\n"
            "Without --boot: OUT/claim-DEVICE.crt and .key (OUT defaults to CA/claims).\n"
            "With --boot DIR: what a freshly flashed board needs on its boot partition\n"
            "(copy DIR to /boot/firmware/edgetel/): agent.conf, ca.crt, claim.crt,\n"
            "claim.key and operator.pub (--operator-key, default the key of keys init).\n"
            "The agent moves them into ETC (default " DEFAULT_ETC ") and its data\n"
            "directory at its first start and deletes the claim from the card.\n"
            "--template FILE adds that agent config's sections (collectors, [outbox], ...);\n"
            "provision sets device_id, data_dir, trusted_keys, host, port and ca itself.\n");
}

static int parse_args(int argc, char **argv, struct provision_args *a)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "out", required_argument, NULL, 'o' },
        { "boot", required_argument, NULL, 'b' },
        { "broker", required_argument, NULL, 'B' },
        { "operator-key", required_argument, NULL, 'k' },
        { "template", required_argument, NULL, 't' },
        { "etc", required_argument, NULL, 'e' },
        { "data-dir", required_argument, NULL, 'D' },
        { "valid", required_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *valid = DEFAULT_VALID;
    int64_t ms;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': a->dir = optarg; break;
        case 'o': a->out = optarg; break;
        case 'b': a->boot = optarg; break;
        case 'B': a->broker = optarg; break;
        case 'k': a->operator_key = optarg; break;
        case 't': a->template_file = optarg; break;
        case 'e': a->etc = optarg; break;
        case 'D': a->data_dir = optarg; break;
        case 'v': valid = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: fprintf(stderr, PROG ": try provision --help\n"); return 2;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, PROG ": %s (try provision --help)\n",
                optind >= argc ? "which device? give its id" : "one device at a time");
        return 2;
    }
    a->device = argv[optind];
    if (et_parse_duration_ms(valid, &ms) != 0 || ms < 1000 || ms > 366LL * 86400 * 1000) {
        fprintf(stderr, PROG ": --valid \"%s\": expected a duration from 1s to 366d, like 7d\n",
                valid);
        return 2;
    }
    a->valid_s = ms / 1000;
    if (a->boot && a->out) {
        fprintf(stderr, PROG ": --boot and --out: give one\n");
        return 2;
    }
    if (a->boot && !a->broker) {
        fprintf(stderr, PROG ": --boot needs --broker HOST[:PORT]: where the board connects\n");
        return 2;
    }
    if (!a->boot && (a->broker || a->operator_key || a->template_file || a->etc ||
                     a->data_dir)) {
        fprintf(stderr, PROG ": --broker, --operator-key, --template, --etc and --data-dir "
                "go with --boot\n");
        return 2;
    }
    return 0;
}

/* ---- files ------------------------------------------------------------------------- */

static int read_all(const char *path, char **text)
{
    char err[512];
    size_t len;
    int rc = et_ini_read_file(path, FILE_MAX, text, &len, err, sizeof(err));

    if (rc)
        fprintf(stderr, PROG ": %s\n", err);
    return rc;
}

/* Write text to path, replacing what was there. */
static int write_all(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "we");
    int rc = 0;

    if (!f)
        return -errno;
    if (fwrite(text, 1, len, f) != len)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static int copy_file(const char *from, const char *to)
{
    char *text = NULL;
    int rc = read_all(from, &text);

    if (rc == 0)
        rc = write_all(to, text, strlen(text));
    free(text);
    return rc;
}

/* ---- the board's agent.conf ----------------------------------------------------------- */

/* "HOST" or "HOST:PORT"; an IPv6 address (two colons or more) without a port. */
static int split_broker(const char *broker, char *host, size_t cap, int *port)
{
    const char *colon = strchr(broker, ':');
    size_t n = strlen(broker);
    char *end;
    long p = 8883;

    if (colon && !strchr(colon + 1, ':')) {
        n = (size_t)(colon - broker);
        p = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || p < 1 || p > 65535)
            return -EINVAL;
    }
    if (n == 0 || n >= cap)
        return -EINVAL;
    memcpy(host, broker, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

/* Whether line is the header [name] (blanks around ignored). */
static bool header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);

    while (len && (*line == ' ' || *line == '\t'))
        line++, len--;
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
        len--;
    return len == n + 2 && line[0] == '[' && strncasecmp(line + 1, name, n) == 0 &&
           line[len - 1] == ']';
}

/*
 * The template (may be NULL) with provision's [agent] and [mqtt] keys:
 * right after the template's own header of each, or as sections of their
 * own before it. A key the template sets too is then "given twice", which
 * the parse that follows reports with its line.
 */
static char *compose(const char *template_text, const char *agent_keys, const char *mqtt_keys,
                     const char *intro)
{
    bool has_agent = false, has_mqtt = false;
    const char *p, *nl;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);

    if (!m)
        return NULL;
    for (p = template_text; p && *p; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        has_agent |= header_is(p, nl ? (size_t)(nl - p) : strlen(p), "agent");
        has_mqtt |= header_is(p, nl ? (size_t)(nl - p) : strlen(p), "mqtt");
    }
    fputs(intro, m);
    if (!has_agent)
        fprintf(m, "[agent]\n%s\n", agent_keys);
    if (!has_mqtt)
        fprintf(m, "[mqtt]\n%s\n", mqtt_keys);
    for (p = template_text; p && *p; p = nl ? nl + 1 : p + strlen(p)) {
        size_t n;

        nl = strchr(p, '\n');
        n = nl ? (size_t)(nl - p) : strlen(p);
        fprintf(m, "%.*s\n", (int)n, p);
        if (header_is(p, n, "agent"))
            fputs(agent_keys, m);
        else if (header_is(p, n, "mqtt"))
            fputs(mqtt_keys, m);
    }
    if (fclose(m) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* The board's agent.conf into *out, checked as the agent will check it. */
static int board_config(const struct provision_args *a, const char *etc, bool operator_key,
                        char **out)
{
    char host[256], agent_keys[1024], mqtt_keys[1024], intro[256], when[48], err[512],
        name[PATH_MAX + 16];
    char *template_text = NULL;
    struct et_config cfg;
    int port;

    *out = NULL;
    if (split_broker(a->broker, host, sizeof(host), &port) != 0) {
        fprintf(stderr, PROG ": --broker \"%s\": expected HOST or HOST:PORT\n", a->broker);
        return 2;
    }
    if (a->template_file && read_all(a->template_file, &template_text) != 0)
        return 1;
    snprintf(agent_keys, sizeof(agent_keys), "device_id = %s\n%s%s%s%s%s%s", a->device,
             a->data_dir ? "data_dir = " : "", a->data_dir ? a->data_dir : "",
             a->data_dir ? "\n" : "", operator_key ? "trusted_keys = " : "",
             operator_key ? etc : "", operator_key ? "/" ET_CTL_PUBLIC_KEY "\n" : "");
    snprintf(mqtt_keys, sizeof(mqtt_keys), "host = %s\nport = %d\nca = %s/ca.crt\n"
             "; no cert and key: the board makes its key and enrolls with its claim\n",
             host, port, etc);
    et_time_format_iso((int64_t)time(NULL) * 1000, when, sizeof(when));
    snprintf(intro, sizeof(intro), "; %s's agent config, from edgetelctl provision at %s.\n"
             "; The agent moves it to %s/agent.conf at its first start.\n\n", a->device,
             when, etc);
    *out = compose(template_text, agent_keys, mqtt_keys, intro);
    free(template_text);
    if (!*out)
        return 1;
    snprintf(name, sizeof(name), "%s/agent.conf", a->boot);
    if (et_config_parse(*out, name, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": the board's config would not be taken: %s%s\n", err,
                a->template_file ? " (provision sets device_id, data_dir, trusted_keys, "
                                   "host, port and ca: leave them out of the template)" : "");
        goto fail;
    }
    if (cfg.mqtt.cert_file || cfg.mqtt.key_file || cfg.mqtt.insecure) {
        fprintf(stderr, PROG ": --template %s sets [mqtt] %s: a board enrolled by claim makes "
                "its own key and connects with mutual TLS; leave it out\n", a->template_file,
                cfg.mqtt.insecure ? "insecure" : "cert or key");
        et_config_free(&cfg);
        goto fail;
    }
    et_config_free(&cfg);
    return 0;
fail:
    free(*out);
    *out = NULL;
    return 1;
}

/* ---- the command ------------------------------------------------------------------- */

static void say_claim(const struct et_ca_claim *c)
{
    char until[48];

    et_time_format_iso(c->expires * 1000, until, sizeof(until));
    printf("registered %s for enrollment by claim: claim serial %s, valid until %s\n",
           c->device, c->serial, until);
}

/* The claim alone, into OUT. */
static int claim_only(const struct provision_args *a, struct et_ca *ca)
{
    char out[PATH_MAX], crt[PATH_MAX + 96], key[PATH_MAX + 96], err[512];
    struct et_ca_claim c;
    char *pem = NULL;
    int rc;

    if (a->out)
        snprintf(out, sizeof(out), "%s", a->out);
    else
        et_ca_path(ca, "claims", out, sizeof(out));
    snprintf(crt, sizeof(crt), "%s/claim-%s.crt", out, a->device);
    snprintf(key, sizeof(key), "%s/claim-%s.key", out, a->device);
    if ((rc = et_sign_make_dir(out)) != 0) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", out, strerror(-rc));
        return 1;
    }
    unlink(key);
    if (et_ca_claim_issue(ca, a->device, a->valid_s, (int64_t)time(NULL), key, &pem, &c, err,
                          sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    rc = write_all(crt, pem, strlen(pem));
    free(pem);
    if (rc) {
        fprintf(stderr, PROG ": %s: %s\n", crt, strerror(-rc));
        return 1;
    }
    say_claim(&c);
    printf("  %s\n  %s (0600)\nOn the board: DATA_DIR/identity/claim.crt and claim.key "
           "(0600, the agent's user), or the boot partition with --boot.\n", crt, key);
    return 0;
}

/* The operator's public key to give the board: --operator-key, or keys init's if it made one. */
static const char *operator_key(const struct provision_args *a, char *buf, size_t len)
{
    if (a->operator_key)
        return a->operator_key;
    if (et_ctl_key_dir(buf, len - sizeof(ET_CTL_PUBLIC_KEY) - 1) != 0)
        return NULL;
    strcat(buf, "/" ET_CTL_PUBLIC_KEY);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

static int boot_folder(const struct provision_args *a, struct et_ca *ca)
{
    static const char *const files[] = { "agent.conf", "ca.crt", "claim.crt", "claim.key",
                                         ET_CTL_PUBLIC_KEY };
    char path[PATH_MAX + 32], from[PATH_MAX], keybuf[PATH_MAX], err[512];
    const char *etc = a->etc ? a->etc : DEFAULT_ETC;
    const char *pub = operator_key(a, keybuf, sizeof(keybuf));
    struct et_sign_key *k = NULL;
    struct et_ca_claim c;
    char *conf = NULL, *pem = NULL;
    int rc;

    if (pub && et_sign_key_load_public(pub, &k, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": --operator-key: %s\n", err);
        return 1;
    }
    et_sign_key_destroy(k);
    if ((rc = board_config(a, etc, pub != NULL, &conf)) != 0)
        return rc;
    if ((rc = et_sign_make_dir(a->boot)) != 0) {
        fprintf(stderr, PROG ": %s: cannot create: %s\n", a->boot, strerror(-rc));
        goto fail;
    }
    /* A folder provisioned before: its files are replaced, the old claim with the rest. */
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", a->boot, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/claim.key", a->boot);
    if (et_ca_claim_issue(ca, a->device, a->valid_s, (int64_t)time(NULL), path, &pem, &c, err,
                          sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/claim.crt", a->boot);
    if ((rc = write_all(path, pem, strlen(pem))) != 0)
        goto write_failed;
    et_ca_path(ca, ET_CA_TRUST, from, sizeof(from));
    snprintf(path, sizeof(path), "%s/ca.crt", a->boot);
    if ((rc = copy_file(from, path)) != 0)
        goto write_failed;
    snprintf(path, sizeof(path), "%s/" ET_CTL_PUBLIC_KEY, a->boot);
    if (pub && (rc = copy_file(pub, path)) != 0)
        goto write_failed;
    snprintf(path, sizeof(path), "%s/agent.conf", a->boot);
    if ((rc = write_all(path, conf, strlen(conf))) != 0)
        goto write_failed;
    say_claim(&c);
    printf("wrote %s: agent.conf, ca.crt, claim.crt, claim.key%s\n"
           "Copy it to the board's boot partition as /boot/firmware/edgetel/; at its first "
           "start the agent\nmoves the files to %s and its data directory, deletes the "
           "claim from the card,\nmakes its own key and enrolls as %s (edgetelctl ca serve "
           "must be running).\n", a->boot, pub ? ", " ET_CTL_PUBLIC_KEY : " (no operator key: "
           "the board takes no pushed config)", etc, a->device);
    free(pem);
    free(conf);
    return 0;
write_failed:
    fprintf(stderr, PROG ": %s: %s\n", path, strerror(-rc));
fail:
    free(pem);
    free(conf);
    return 1;
}

int et_ctl_provision_main(int argc, char **argv, const char *store)
{
    struct provision_args a = { 0 };
    char dir[PATH_MAX], err[512];
    struct et_ca *ca = NULL;
    int rc = parse_args(argc, argv, &a);

    (void)store;   /* claims live in the CA directory, not in the store */

    if (rc || (rc = et_ctl_ca_dir(a.dir, dir, sizeof(dir))) != 0)
        return rc;
    if (et_ca_open(&ca, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    rc = a.boot ? boot_folder(&a, ca) : claim_only(&a, ca);
    et_ca_close(ca);
    return rc;
}
