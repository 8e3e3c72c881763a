/*
 * The end-to-end fixture's enrollment side: the cloud issuer (edgetelctl
 * ca serve) on the test broker's CA, claims from edgetelctl provision,
 * and a claim given to an agent's data directory. See e2e.h.
 */
#define _GNU_SOURCE
#include "e2e.h"
#include "e2e_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#define CTL_BIN ET_BINARY_DIR "/ctl/edgetelctl"
#define CTL_TIMEOUT_MS 30000
#define ISSUER_READY_MS 15000

const char *et_e2e_ca_dir(struct et_e2e *e)
{
    snprintf(e->ca_dir, sizeof(e->ca_dir), "%s/ca", et_test_broker_dir(e->broker));
    return e->ca_dir;
}

int et_e2e_ctl(struct et_e2e *e, const char *log, const char *const args[])
{
    const char *argv[32] = { CTL_BIN };
    char name[128];
    size_t n = 1;

    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    snprintf(name, sizeof(name), "%s.log", log);
    return et_test_run(et_test_env_path(e->env, name), argv, CTL_TIMEOUT_MS);
}

static bool issuer_ready(void *ctx)
{
    return et_proc_log_contains(ctx, "taking requests on");
}

struct et_proc *et_e2e_start_issuer(struct et_e2e *e, const char *lifetime)
{
    struct et_test_identity id;
    char mqtt[8192];
    const char *conf, *ca_dir = et_e2e_ca_dir(e);
    const char *argv[] = { CTL_BIN, "ca", "serve", "--dir", ca_dir, "--config", NULL, NULL };
    struct et_proc *p;
    int rc;

    rc = et_test_broker_identity(e->broker, ET_E2E_ISSUER, &id);
    if (rc < 0)
        fail_msg("e2e: no certificate for %s: %s", ET_E2E_ISSUER, strerror(-rc));
    e2e_mqtt_section(e, &id, mqtt, sizeof(mqtt));
    conf = et_test_env_write(e->env, "issuer.conf",
                             "[issuer]\n"
                             "device_lifetime = %s\n"
                             "log_level = debug\n"
                             "\n"
                             "%s", lifetime, mqtt);
    argv[6] = conf;
    p = et_test_env_start(e->env, "issuer", argv);
    e2e_watch(e, p);
    /* Subscribed: a request before that would be dropped by the broker. */
    et_test_wait_until(issuer_ready, p, ISSUER_READY_MS);
    return p;
}

const char *et_e2e_provision(struct et_e2e *e, const char *device, const char *valid)
{
    char name[128];
    const char *out;
    int rc;

    snprintf(name, sizeof(name), "claim-%s", device);
    out = et_test_env_path(e->env, name);
    {
        const char *args[] = { "provision", device, "--dir", et_e2e_ca_dir(e), "--valid", valid,
                               "--out", out, NULL };

        rc = et_e2e_ctl(e, name, args);
    }
    if (rc != 0)
        fail_msg("e2e: edgetelctl provision %s failed (%d): see %s/%s.log", device, rc,
                 et_test_env_dir(e->env), name);
    return out;
}

static void copy(const char *from, const char *to, mode_t mode)
{
    char buf[8192];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ssize_t n;

    if (in < 0 || out < 0)
        fail_msg("e2e: copy %s to %s: %s", from, to, strerror(errno));
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            fail_msg("e2e: write %s: %s", to, strerror(errno));
    fchmod(out, mode);
    close(in);
    close(out);
}

void et_e2e_give_claim(struct et_e2e *e, const char *claim_dir, const char *device,
                       const char *name)
{
    char dir[128], from[4200], to[4200];

    snprintf(dir, sizeof(dir), "%s-data", name ? name : device);
    mkdir(et_test_env_path(e->env, dir), 0700);
    snprintf(dir, sizeof(dir), "%s-data/identity", name ? name : device);
    mkdir(et_test_env_path(e->env, dir), 0700);
    snprintf(from, sizeof(from), "%s/claim-%s.crt", claim_dir, device);
    snprintf(to, sizeof(to), "%s/claim.crt", et_test_env_path(e->env, dir));
    copy(from, to, 0644);
    snprintf(from, sizeof(from), "%s/claim-%s.key", claim_dir, device);
    snprintf(to, sizeof(to), "%s/claim.key", et_test_env_path(e->env, dir));
    copy(from, to, 0600);
}
