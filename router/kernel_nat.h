/* The kernel NAT data path's kernel side: nf_tables rules that DNAT new connections to the
 * router's write port straight to the current primary, and ctnetlink to end, count and
 * follow those flows. Raw nfnetlink (no libnftnl/libmnl: the release build is static musl);
 * every message is hand-encoded into a bounded buffer and every answer is validated.
 *
 * Only a SYN (without ACK) is DNAT'ed: when a flow's conntrack entry is gone (ended, or
 * idle past its timeout) the client's next segment is tracked afresh as a mid-stream
 * pickup, matches no rule, reaches the router's own port, which has no such connection,
 * and the client gets a reset. Without that match the pickup would be DNAT'ed again to the
 * same target and the "ended" flow would quietly go on. */
#ifndef APPLIANCE_ROUTER_KERNEL_NAT_H
#define APPLIANCE_ROUTER_KERNEL_NAT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* ct mark of NAT'ed flows: KNAT_MARK_MAGIC | origin << 8 | slot (slot = backend index 0..255).
 * origin KNAT_ORIGIN_LOCAL (client in this netns: nat output chain) or KNAT_ORIGIN_FWD
 * (client from elsewhere: nat prerouting chain, then masqueraded in postrouting). */
#define KNAT_MARK_MAGIC      0x41520000u
#define KNAT_MARK_MASK_MAGIC 0xffff0000u
enum { KNAT_ORIGIN_LOCAL = 1, KNAT_ORIGIN_FWD = 2 };

/* Longest table name accepted (the kernel's NFT_NAME_MAXLEN is 256 with the NUL). Names are
 * [A-Za-z0-9_.-]; anything else is refused before any message is sent. */
#define KNAT_TABLE_MAX 255

typedef struct kernel_nat kernel_nat;

typedef struct kernel_nat_target {
    struct sockaddr_in listen; /* the router's 5000; sin_addr INADDR_ANY = any local address */
    struct sockaddr_in target; /* the primary's postgres */
    uint8_t slot;              /* goes into the ct mark */
    uint32_t max_connections;  /* 0: no limit. Over it, new connections are NOT DNAT'ed
                                  (they land on the router's listener, which refuses them) */
    uint32_t idle_timeout_s;   /* 0: kernel default. Else conntrack established timeout of
                                  these flows (a ct timeout object); expiry ends the flow */
} kernel_nat_target;

/* Opens a netlink socket, creates table `ip <table>` with NFT_TABLE_F_OWNER (the kernel
 * removes the table when this socket closes, i.e. when the router dies: no stale DNAT
 * outliving the router), chains output (nat, hook output, prio -100), prerouting (nat,
 * prerouting, -100), postrouting (nat, postrouting, 100), empty. If a table of that name
 * exists and is not owned (left by an older run), it is replaced in the same batch; a table
 * owned by another live socket is an error. Tries to turn on net.netfilter.nf_conntrack_acct
 * (byte counters; a failure is not an error: kernel_nat_bytes_known() says 0). Returns NULL
 * with a reason naming the operation and errno in err, e.g. "nf_tables: create table
 * appliance_router_5000: Operation not permitted (needs CAP_NET_ADMIN)". The sockets are
 * close-on-exec, so a child that execs does not keep the table alive. */
kernel_nat *kernel_nat_open(const char *table, char *err, size_t errsz);
int kernel_nat_bytes_known(const kernel_nat *k);

/* A handle for conntrack calls only (end_flows, end_all_flows, flows_dump): its own netlink
 * socket, no table, no events (set() and events_* must not be used on it). For a thread
 * that walks conntrack off the event loop (router/ct_worker.h). NULL with err. */
kernel_nat *kernel_nat_ct_open(char *err, size_t errsz);

/* Replaces the rules in ONE nf_tables batch (atomic: no instant with both or neither):
 * t == NULL: no rules (every connection goes to the router's listener).
 * Otherwise, with L = t->listen, T = t->target (every match also requires tcp, SYN without ACK):
 *   output (only if L's address is not INADDR_ANY, and not if L is a loopback address while
 *   T is not: such a SYN could not leave the loopback device with its 127.x source):
 *     [max_connections] tcp, ip daddr L, dport L -> jump limit
 *     tcp, ip daddr L, dport L [, ct timeout set <obj>], ct mark set MARK(LOCAL, slot),
 *       dnat to T
 *   prerouting (only if T is not a loopback address: a forwarded packet DNAT'ed to 127.x
 *   is dropped as a martian): the same two, without the daddr match when L is
 *   INADDR_ANY, with MARK(FWD, slot)
 *   limit (a regular chain both jump to): ct count over N -> accept (no NAT: the
 *     connection lands on the router's listener). One rule, one count: local and forwarded
 *     clients share N.
 *   postrouting: ct mark MARK(FWD, slot) -> masquerade (the backend must answer via us)
 * Where neither chain gets a rule, every connection reaches the router's listener.
 * Local clients are not masqueraded: their source is the listen address (or whatever they
 * bound), which the backend must be able to answer directly (true on loopback and when L
 * is on the backend's network).
 * The ct timeout object (per idle_timeout_s) is created in the same batch under a new name
 * (the kernel cannot update one in place) and the previous one deleted there.
 * Returns 0, or -1 with the kernel's reason in err, naming the failing message (e.g.
 * "nf_tables: add rule output (dnat to 10.0.0.2:5432): ..."). On failure the previous rules
 * stay. Note: the connection count restarts with each set() (the kernel keeps it in the
 * rule), so connections made before it are not counted against the new limit. */
int kernel_nat_set(kernel_nat *k, const kernel_nat_target *t, char *err, size_t errsz);

/* Deletes every conntrack entry whose mark says slot (either origin): the flows to a
 * demoted/down primary end; the client's next segment is answered with a reset (by the
 * new target, or by the router's listener). The kernel does not count a filtered flush, so
 * the number returned is that of the entries a dump just before the flush found. Returns
 * that number or -1 with err. */
int kernel_nat_end_flows(kernel_nat *k, uint8_t slot, char *err, size_t errsz);

/* Deletes every conntrack entry with our magic, whatever the slot. When a table goes (the
 * router exits), the kernel stops translating its flows (measured on 6.18: their clients'
 * next segments are reset), but the entries stay, marked, until they time out (5 days by
 * default), and a new router's dump would count them as live flows of its own slots.
 * Calling this at start clears them. Returns the number a dump found just before, or -1
 * with err. */
int kernel_nat_end_all_flows(kernel_nat *k, char *err, size_t errsz);

/* Per-slot flow figures from one conntrack dump filtered by mark (kernel-side filter):
 * live = entries not in TIME_WAIT/CLOSE, bytes from the client (orig direction) and to it
 * (reply direction), counted over the entries present now. Returns 0 or -1 with err. */
typedef struct kernel_nat_flows {
    uint64_t live, bytes_in, bytes_out;
} kernel_nat_flows;
int kernel_nat_flows_dump(kernel_nat *k, kernel_nat_flows out[256], char *err, size_t errsz);

/* Conntrack NEW, UPDATE and DESTROY events (a second, non-blocking netlink socket subscribed
 * to NFNLGRP_CONNTRACK_NEW, _UPDATE and _DESTROY): fd for the caller's epoll; drain calls cb
 * for each event whose mark has our magic, with its kind. UPDATE: a state change of a flow
 * (e.g. into FIN_WAIT or TIME_WAIT; a handful per flow, never per packet): a caller that
 * counts live flows by dumps knows to look again. On DESTROY, bytes are the flow's final
 * counters (the kernel sends counters with DESTROY only; 0 otherwise).
 * Returns 0, 1 if events were lost (ENOBUFS: the caller resyncs with flows_dump), -1 err.
 * One call reads at most 256 datagrams (the fd stays readable if more are queued). */
enum { KNAT_EV_DESTROY = 0, KNAT_EV_NEW = 1, KNAT_EV_UPDATE = 2 };
int kernel_nat_events_fd(const kernel_nat *k);
typedef void (*kernel_nat_event_cb)(void *arg, uint8_t slot, int kind, uint64_t bytes_in,
                                    uint64_t bytes_out);
int kernel_nat_events_drain(kernel_nat *k, kernel_nat_event_cb cb, void *arg);

/* Whether this network namespace forwards IPv4 (net.ipv4.ip_forward, read now): 1, 0, or -1
 * if unreadable. The prerouting rules (clients from elsewhere) need it: without forwarding
 * the DNAT'ed SYN is dropped and such clients time out, so a caller should warn. The module
 * does not turn it on (that makes the namespace a router for all traffic). */
int kernel_nat_forwarding(void);

/* Deletes the table (rules gone at once) and closes the sockets. NULL is fine. */
void kernel_nat_close(kernel_nat *k);

/* ---- Netlink answer parsing, exposed for the fuzz target and the unit test ----
 *
 * kernel_nat_parse() validates a buffer of netlink messages as received from one recv()
 * (header lengths, 4-byte alignment, every attribute's length against its container,
 * nested attributes to a fixed depth) and reports each message it understands through cb.
 * It never reads outside [buf, buf+len) whatever the bytes, and always terminates (every
 * step advances by at least 4 bytes). */
enum knat_msg_kind {
    KNAT_MSG_ACK,   /* NLMSG_ERROR: error 0 (an ack) or a positive errno */
    KNAT_MSG_DONE,  /* NLMSG_DONE: the end of a dump */
    KNAT_MSG_CT,    /* a ctnetlink conntrack entry (dump answer or event) */
    KNAT_MSG_TABLE, /* an nf_tables table (answer to a table lookup) */
    KNAT_MSG_OTHER, /* valid but not ours to decode (skipped) */
};

typedef struct kernel_nat_msg {
    enum knat_msg_kind kind;
    uint32_t seq;
    int error;      /* ACK: 0 or positive errno */
    int ct_destroy; /* CT: 1 for IPCTNL_MSG_CT_DELETE (a DESTROY event), 0 for CT_NEW */
    int ct_update;  /* CT: a CT_NEW without NLM_F_CREATE: an UPDATE event (or a dump entry) */
    int has_mark;   /* CT */
    uint32_t mark;  /* CT */
    int tcp_state;  /* CT: TCP_CONNTRACK_* or -1 if absent */
    uint64_t bytes_orig, bytes_reply; /* CT: 0 when the kernel sent no counters */
    uint32_t table_flags;             /* TABLE */
    int table_has_owner;              /* TABLE: NFTA_TABLE_OWNER present */
    uint32_t table_owner;             /* TABLE: owning netlink port id */
} kernel_nat_msg;

/* cb returns 0 to go on, anything else to stop (kernel_nat_parse then returns that value).
 * Returns 0 when the whole buffer is valid, -1 with the first defect described in err
 * (messages before it were reported), or cb's non-zero value. */
typedef int (*kernel_nat_msg_cb)(void *arg, const kernel_nat_msg *m);
int kernel_nat_parse(const void *buf, size_t len, kernel_nat_msg_cb cb, void *arg, char *err,
                     size_t errsz);

#ifdef APPLIANCE_TEST_BUILD
/* Tests only: when set, the next kernel_nat_set() adds one more message, a rule for a chain
 * that does not exist, so the kernel rejects that batch (atomicity, error naming). */
extern int kernel_nat_test_fail_next_set;
#endif

/* The table name check kernel_nat_open applies (0 ok, -1 with the reason in err). */
int kernel_nat_table_name_ok(const char *table, char *err, size_t errsz);

#endif
