/* The kernel NAT write path (data_path.forward: nat|auto): keeps nf_tables' DNAT rule for
 * 5000 in step with the router's write target, ends the kernel's flows to a target that was
 * withdrawn, and folds those flows into the 8404 counters.
 *
 * The router still decides everything (DCS leader key + /primary checks, hold window,
 * refusals); only the bytes of 5000's sessions bypass it. While no rule is installed (no
 * target, an IPv6 or unresolved target, a kernel error) connections land on the router's
 * own 5000 listener and the proxy handles them as in proxy mode. Differences from the
 * proxy, by nature of NAT: a session to a withdrawn target ends by reset on its next
 * segment, not by an immediate close; a failed connect to the target is the client's (no
 * retry); connection limit and idle timeout are the kernel's (conntrack). */
#ifndef APPLIANCE_ROUTER_NAT_PATH_H
#define APPLIANCE_ROUTER_NAT_PATH_H

#include <stddef.h>

#include "router/router.h"

/* Opens the kernel side (an nf_tables table owned by this process, so it vanishes with
 * it), installs the rule for the current target and starts following changes. The
 * listener address must be numeric IPv4 (0.0.0.0 included). Returns 0, or -1 with the
 * reason in err (r->nat stays NULL: the proxy carries 5000). Main loop only. */
int nat_path_start(router *r, char *err, size_t errsz);

/* Brings the rule in line with r->write_target and the configuration (called by
 * proxy_targets_changed; cheap when nothing changed). */
void nat_path_sync(router *r);

/* Reads pending conntrack events now: the proxy calls it before judging
 * limits.max_connections for a client that reached its 5000 listener while a rule is
 * installed (the kernel's own limit sent it there), so the flows just forwarded count. */
void nat_path_count_new(router *r);

/* Ends the flows of the installed target, deletes the table, frees. */
void nat_path_stop(router *r);

/* Sessions forwarded by the kernel so far, and a one-word state for logs and stats:
 * "off", "installed", "idle" (no target: the proxy takes 5000), "failed". */
uint64_t nat_path_sessions_total(const router *r);
const char *nat_path_state(const router *r);

#endif
