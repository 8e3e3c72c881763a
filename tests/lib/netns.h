/*
 * A network namespace the test makes, joined to the test's own by a veth
 * pair on a private /30, for partitions that no RST announces: a program
 * started inside (et_test_netns_argv()) reaches a broker listening on the
 * host end's address (et_test_broker_start_at()), and taking the host end
 * down drops every packet both ways in silence until it comes up again.
 *
 * The /30 comes from 198.18.0.0/15, the range set aside for network
 * benchmarks (RFC 2544), chosen by the test's pid and skipped when an
 * interface of this machine already has an address in it. The namespace is
 * named edgetel-<pid>, the veth ends etv<pid>h (host) and etv<pid>n.
 *
 * Needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root) and the ip command
 * (iproute2); et_test_netns_create() says which is missing, for a skip.
 * If the test process dies without et_test_netns_destroy(), the namespace
 * (and the veth pair with it) stays until `ip netns del edgetel-<pid>`;
 * made from a private mount namespace (smallfs.h), it goes with the test's
 * processes and leaves only an empty file /run/netns/edgetel-<pid>.
 */
#ifndef EDGETEL_TEST_NETNS_H
#define EDGETEL_TEST_NETNS_H

#include <stdbool.h>
#include <stddef.h>

struct et_test_netns;

/**
 * Make the namespace and the veth pair, both ends up with their
 * addresses. The ip commands' output goes to log_path (copied). Returns 0,
 * or -errno with a sentence in why (what is missing: root, ip, a free
 * subnet).
 */
int et_test_netns_create(struct et_test_netns **out, const char *log_path, char *why,
                         size_t why_len);

/** The namespace's name, for `ip netns exec` (owned by ns). */
const char *et_test_netns_name(const struct et_test_netns *ns);

/** The host end's address (listen here) and the inner end's (owned by ns). */
const char *et_test_netns_host_addr(const struct et_test_netns *ns);
const char *et_test_netns_inner_addr(const struct et_test_netns *ns);

/**
 * Take the host end down (the partition: packets are dropped, neither
 * side is told) or bring it up again. Returns 0 or -errno.
 */
int et_test_netns_set_link(struct et_test_netns *ns, bool up);

/** Whether the link is up (as last set). */
bool et_test_netns_link_up(const struct et_test_netns *ns);

/**
 * argv run inside the namespace: "ip netns exec NAME argv...". ip execs
 * the program in place, so the pid et_proc_start() records is the
 * program's own and a signal reaches it. Writes at most cap pointers
 * (NULL-terminated; the strings are borrowed from ns and argv) and
 * returns 0, or -ENOSPC when cap is too small.
 */
int et_test_netns_argv(const struct et_test_netns *ns, const char *const argv[],
                       const char **out, size_t cap);

/** Delete the namespace and the veth pair. NULL is a no-op. */
void et_test_netns_destroy(struct et_test_netns *ns);

#endif
