/*
 * A network namespace and a veth pair made with the ip command. See netns.h.
 */
#define _GNU_SOURCE
#include "netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#define IP_EXE "ip"
#define IP_TIMEOUT_MS 10000
/* 198.18.0.0/15 holds 32768 subnets of four addresses. */
#define NETNS_BASE 0xc6120000u
#define NETNS_SUBNETS 32768u
#define NETNS_TRIES 16

struct et_test_netns {
    char *log_path;
    char name[32];
    char host_if[16];
    char inner_if[16];
    char host_addr[INET_ADDRSTRLEN];
    char inner_addr[INET_ADDRSTRLEN];
    bool made;          /* the namespace exists: destroy deletes it */
    bool link_up;
};

static int ip(struct et_test_netns *ns, const char *const argv[])
{
    return et_test_run(ns->log_path, argv, IP_TIMEOUT_MS);
}

/* Whether an interface of this machine has an address in the /30 at base. */
static bool subnet_in_use(uint32_t base)
{
    struct ifaddrs *list, *i;
    bool used = false;

    if (getifaddrs(&list) != 0)
        return true;
    for (i = list; i && !used; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        uint32_t a = ntohl(((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);

        used = (a & ~3u) == base;
    }
    freeifaddrs(list);
    return used;
}

static void addr_text(uint32_t host_order, char *out)
{
    struct in_addr a = { .s_addr = htonl(host_order) };

    inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

/* Pick a free /30 and write the two addresses. */
static int pick_subnet(struct et_test_netns *ns)
{
    uint32_t start = (uint32_t)getpid() % NETNS_SUBNETS;

    for (uint32_t t = 0; t < NETNS_TRIES; t++) {
        uint32_t base = NETNS_BASE + ((start + t * 7919u) % NETNS_SUBNETS) * 4u;

        if (subnet_in_use(base))
            continue;
        addr_text(base + 1, ns->host_addr);
        addr_text(base + 2, ns->inner_addr);
        return 0;
    }
    return -EADDRINUSE;
}

static int make(struct et_test_netns *ns, char *why, size_t why_len)
{
    char host_cidr[INET_ADDRSTRLEN + 4];
    char inner_cidr[INET_ADDRSTRLEN + 4];
    int rc;

    rc = ip(ns, (const char *const[]){ IP_EXE, "netns", "add", ns->name, NULL });
    if (rc == -ENOENT) {
        snprintf(why, why_len, "no ip command (install iproute2)");
        return rc;
    }
    if (rc < 0) {
        snprintf(why, why_len, "ip netns add %s failed (it needs root; see %s)", ns->name,
                 ns->log_path);
        return -EPERM;
    }
    ns->made = true;
    rc = pick_subnet(ns);
    if (rc < 0) {
        snprintf(why, why_len, "no free /30 in 198.18.0.0/15 after %d tries", NETNS_TRIES);
        return rc;
    }
    snprintf(host_cidr, sizeof(host_cidr), "%s/30", ns->host_addr);
    snprintf(inner_cidr, sizeof(inner_cidr), "%s/30", ns->inner_addr);
    const char *const *steps[] = {
        (const char *const[]){ IP_EXE, "link", "add", ns->host_if, "type", "veth", "peer",
                               "name", ns->inner_if, "netns", ns->name, NULL },
        (const char *const[]){ IP_EXE, "addr", "add", host_cidr, "dev", ns->host_if, NULL },
        (const char *const[]){ IP_EXE, "link", "set", ns->host_if, "up", NULL },
        (const char *const[]){ IP_EXE, "-n", ns->name, "addr", "add", inner_cidr, "dev",
                               ns->inner_if, NULL },
        (const char *const[]){ IP_EXE, "-n", ns->name, "link", "set", ns->inner_if, "up",
                               NULL },
        (const char *const[]){ IP_EXE, "-n", ns->name, "link", "set", "lo", "up", NULL },
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        rc = ip(ns, steps[i]);
        if (rc < 0) {
            snprintf(why, why_len, "ip %s %s ... failed: %s (see %s)", steps[i][1],
                     steps[i][2], strerror(-rc), ns->log_path);
            return rc;
        }
    }
    ns->link_up = true;
    return 0;
}

int et_test_netns_create(struct et_test_netns **out, const char *log_path, char *why,
                         size_t why_len)
{
    struct et_test_netns *ns;
    int rc;

    *out = NULL;
    snprintf(why, why_len, "out of memory");
    ns = calloc(1, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    ns->log_path = strdup(log_path);
    if (!ns->log_path) {
        free(ns);
        return -ENOMEM;
    }
    snprintf(ns->name, sizeof(ns->name), "edgetel-%d", (int)getpid());
    snprintf(ns->host_if, sizeof(ns->host_if), "etv%dh", (int)getpid());
    snprintf(ns->inner_if, sizeof(ns->inner_if), "etv%dn", (int)getpid());
    rc = make(ns, why, why_len);
    if (rc < 0) {
        et_test_netns_destroy(ns);
        return rc;
    }
    why[0] = '\0';
    *out = ns;
    return 0;
}

const char *et_test_netns_name(const struct et_test_netns *ns)
{
    return ns->name;
}

const char *et_test_netns_host_addr(const struct et_test_netns *ns)
{
    return ns->host_addr;
}

const char *et_test_netns_inner_addr(const struct et_test_netns *ns)
{
    return ns->inner_addr;
}

int et_test_netns_set_link(struct et_test_netns *ns, bool up)
{
    int rc = ip(ns, (const char *const[]){ IP_EXE, "link", "set", ns->host_if,
                                            up ? "up" : "down", NULL });

    if (rc == 0)
        ns->link_up = up;
    return rc;
}

bool et_test_netns_link_up(const struct et_test_netns *ns)
{
    return ns->link_up;
}

int et_test_netns_argv(const struct et_test_netns *ns, const char *const argv[],
                       const char **out, size_t cap)
{
    const char *prefix[] = { IP_EXE, "netns", "exec", ns->name };
    size_t n = 0;

    while (argv[n])
        n++;
    if (cap < 4 + n + 1)
        return -ENOSPC;
    for (size_t i = 0; i < 4; i++)
        out[i] = prefix[i];
    for (size_t i = 0; i <= n; i++)
        out[4 + i] = argv[i];
    return 0;
}

void et_test_netns_destroy(struct et_test_netns *ns)
{
    if (!ns)
        return;
    if (ns->made) {
        /* The veth pair goes with the namespace that holds one end. */
        if (ip(ns, (const char *const[]){ IP_EXE, "netns", "del", ns->name, NULL }) < 0)
            fprintf(stderr, "netns: cannot delete %s (see %s)\n", ns->name, ns->log_path);
    }
    free(ns->log_path);
    free(ns);
}
