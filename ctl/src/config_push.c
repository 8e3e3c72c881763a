/*
 * edgetelctl config push and config status: the aggregator's store.
 *
 * push is the one command that writes to the store, and only this: in one
 * write transaction it takes the fleet's next version (the highest desired
 * version + 1), signs the config with it and adds the desired config. The
 * transaction makes two pushes at once take two versions; the version is
 * inside the signature, so it is chosen before signing. The aggregator
 * sends the config to the boards (config_relay.h); edgetelctl never talks
 * to the broker.
 *
 * status reads a store opened read-only, as the other commands do.
 */
#include "config_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edgetel/report.h"
#include "edgetel/store_config.h"
#include "edgetel/store_open.h"
#include "edgetel/store_writer.h"

/* The store keeps what a board takes, and no more. */
_Static_assert(ET_STORE_CONFIG_SIGNED_MAX == ET_CONFIG_SIGNED_MAX,
               "the store's limit on a signed config is the board's");

/* "user@host", for a person reading the store. */
static void pushed_by(char *buf, size_t len)
{
    const char *user = getenv("USER");
    struct passwd *pw;
    char host[256];

    if (!user || !*user) {
        pw = getpwuid(getuid());
        user = pw ? pw->pw_name : "?";
    }
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "?");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, len, "%s@%s", user, host);
}

static int store_error(const struct config_args *a, int rc, const char *what)
{
    fprintf(stderr, PROG_CONFIG " %s: store %s: %s: %s\n", a->sub, a->store, what,
            rc == -EBUSY ? "busy: an aggregator held it too long; try again"
            : rc == -EPROTO ? "this store predates pushed configs: start an aggregator of this "
                              "version on it once, or run config push"
            : rc == -EIO ? "read or write error (see above)" : strerror(-rc));
    return 1;
}

/*
 * Versions a device says it runs or reported, above which none is taken:
 * a hostile board's claim of 2^64-1 must not end the fleet's counter.
 */
#define REPORTED_VERSION_MAX (UINT64_C(1) << 53)

/* The highest version any device runs or reported, as the store recorded it. */
static int highest_reported(void *ctx, const struct et_store_device_config *dc)
{
    uint64_t *top = ctx;
    uint64_t v = dc->running_version;

    if (dc->has_report && dc->report.version > v)
        v = dc->report.version;
    if (v > *top && v < REPORTED_VERSION_MAX)
        *top = v;
    return 0;
}

/*
 * Sign in as the fleet's next version and add it, in one transaction. The
 * next version is above every desired one and every one a board reports:
 * boards that ran pushes from another store (a store started afresh, a
 * fleet moved to a new one) would refuse a lower version as a replay.
 */
static int queue(const struct config_args *a, struct et_store *s, struct config_inputs *in,
                 uint64_t *version)
{
    struct et_store_writer *w = et_store_writer(s);
    struct et_store_config *sc = et_store_config(s);
    char who[320], source[PATH_MAX];
    struct timespec now;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc;

    pushed_by(who, sizeof(who));
    if (!realpath(a->file, source))
        snprintf(source, sizeof(source), "%s", a->file);
    rc = et_store_begin(w);
    if (rc < 0)
        return store_error(a, rc, "cannot start a write");
    rc = et_store_desired_top(sc, version);
    if (rc == 0) {
        uint64_t desired = *version;

        rc = et_store_config_devices(sc, NULL, highest_reported, version);
        if (rc == 0 && *version > desired)
            fprintf(stderr, PROG_CONFIG " push: note: boards report running v%" PRIu64 ", above this "
                    "store's v%" PRIu64 " (pushed through another store?): this push goes above "
                    "it\n", *version, desired);
    }
    if (rc < 0) {
        et_store_rollback(w);
        return store_error(a, rc, "reading the highest version");
    }
    (*version)++;
    if (ctl_config_inputs_sign(in, *version, &buf, &len)) {
        et_store_rollback(w);
        return 1;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    rc = et_store_desired_add(sc, &(struct et_store_desired){
        .version = *version,
        .kind = a->device ? ET_CONFIG_TARGET_DEVICE : ET_CONFIG_TARGET_GROUP,
        .target = a->device ? a->device : a->group,
        .signed_config = buf,
        .signed_len = len,
        .key_id = in->key_id,
        .deadline_ms = in->push.commit_deadline_ms,
        .created_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
        .pushed_by = who,
        .source = source,
    });
    free(buf);
    if (rc == 0)
        rc = et_store_commit(w);   /* rolled back by itself when it fails */
    else
        et_store_rollback(w);
    return rc < 0 ? store_error(a, rc, "cannot add the config") : 0;
}

int ctl_config_push(const struct config_args *a)
{
    struct config_inputs in;
    struct et_store *s = NULL;
    struct stat st;
    uint64_t version = 0;
    char err[512];
    int rc;

    rc = ctl_config_inputs_load(a, &in);
    if (rc)
        return rc;
    /* Opened for writing, a missing file would become a new empty store:
     * a mistyped path must not swallow the push. */
    if (strcmp(et_store_type_of(a->store), "sqlite") == 0 && stat(a->store, &st) != 0) {
        fprintf(stderr, PROG_CONFIG " push: store %s: %s (give the aggregator's [store] path "
                "with --store PATH)\n", a->store, strerror(errno));
        ctl_config_inputs_free(&in);
        return 1;
    }
    rc = et_store_open(&s, NULL, a->store, 0, err, sizeof(err));
    if (rc < 0) {
        if (rc == -EUCLEAN)
            fprintf(stderr, PROG_CONFIG " push: %s\n", err);   /* names the file */
        else
            fprintf(stderr, PROG_CONFIG " push: store %s: %s\n", a->store, err);
        ctl_config_inputs_free(&in);
        return 1;
    }
    rc = queue(a, s, &in, &version);
    et_store_close(s);
    if (rc == 0)
        printf("config v%" PRIu64 " for %s %s (key %s) queued in %s; the aggregator sends it "
               "to %s\n", version, a->device ? "device" : "group",
               a->device ? a->device : a->group, in.key_id, a->store,
               a->device ? "the board" : "every board whose [agent] groups names it");
    ctl_config_inputs_free(&in);
    return rc;
}

int ctl_config_status(const struct config_args *a)
{
    struct et_store *s = NULL;
    struct timespec now;
    char err[256];
    int rc;

    rc = et_store_open(&s, NULL, a->store, ET_STORE_READONLY, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, PROG_CONFIG " status: store %s: %s\n", a->store, err);
        return 1;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    rc = et_report_config_status(et_store_config(s), stdout, a->device, a->csv,
                                 (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    et_store_close(s);
    if (rc == -ENOENT) {
        fprintf(stderr, PROG_CONFIG " status: device %s is not in the store (edgetelctl "
                "devices lists them)\n", a->device);
        return 1;
    }
    return rc < 0 ? store_error(a, rc, "cannot read") : 0;
}
