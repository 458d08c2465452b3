/* The router's shared state: backends with their health and counters, the two proxy
 * listeners, client sessions, and the DCS view. Owned by one event loop. */
#ifndef APPLIANCE_ROUTER_ROUTER_H
#define APPLIANCE_ROUTER_ROUTER_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "evloop.h"
#include "router/buffer_pool.h"
#include "router/check_state.h"
#include "router/config.h"

enum { LSN_PRIMARY, LSN_REPLICAS, LSN_COUNT };

typedef struct session session;

/* One server line of the stats (per listener). */
typedef struct server_stats {
    uint64_t scur, smax, stot;
    uint64_t bin, bout; /* bytes from clients / to clients, HAProxy's convention */
    uint64_t econ, eresp, cli_abrt, srv_abrt, killed;
    uint64_t lastsess_ms; /* 0: never */
} server_stats;

typedef struct frontend_stats {
    uint64_t scur, smax, stot, bin, bout;
    uint64_t denied; /* refused: connection limit, hold queue full or hold timeout */
    uint64_t qcur, qmax, held_total;
    uint64_t rate_window_start_ms, rate_count, rate_last, rate_max;
} frontend_stats;

/* Sessions on 5001 to one backend, counted across every event loop, so least-connections
 * balances the process as a whole when several loops proxy (router/loops.c). */
typedef struct backend_load {
    char name[ROUTER_NAME_MAX]; /* written by the main loop only, while the count is 0 */
    _Atomic uint64_t replicas_cur;
    atomic_int check_wanted; /* a loop's connect to it failed: the main loop checks it now */
} backend_load;

typedef struct session_list {
    session *head;
    uint64_t count;
} session_list;

typedef struct backend {
    router_backend_conf conf;
    struct sockaddr_storage addr;
    socklen_t addrlen; /* 0: unresolved */
    uint64_t resolve_not_before_ms;
    int resolve_failed;
    int removed; /* dropped by a reload; freed when its last session ends */
    check_state primary_chk, replica_chk;
    server_stats st[LSN_COUNT];
    session_list sessions[LSN_COUNT];
    void *checker[2];   /* health_check.c's per-kind state */
    backend_load *load; /* NULL: one loop only, sessions[LSN_REPLICAS].count is the truth */
} backend;

typedef struct router router;

typedef struct proxy_listener {
    router *r;
    int idx;          /* LSN_* */
    int fd;           /* -1: disabled */
    ev_timer *resume; /* accept paused after EMFILE */
    char addr[ROUTER_ADDR_MAX];
    frontend_stats fe;
    session_list held;    /* FIFO of clients waiting for a target */
    session_list waiting; /* clients that have not sent their first byte yet */
    session *held_tail;
} proxy_listener;

enum dcs_state { DCS_OFF, DCS_UNKNOWN, DCS_OK };
typedef void (*router_hook)(router *r, void *arg);

struct router {
    evloop *loop;
    router_config cfg;
    backend *backends[ROUTER_MAX_BACKENDS * 2]; /* live ones first; removed ones linger */
    size_t n_backends;                          /* live */
    size_t n_all;                               /* live + lingering */
    proxy_listener lsn[LSN_COUNT];
    buffer_pool pool;
    uint64_t sessions_total_cur; /* every client fd we hold (held + connecting + open) */
    uint64_t started_ms;
    uint64_t started_wall; /* epoch seconds, for "last change" display */

    /* DCS view (dcs_watch.c writes it, selection reads it). */
    enum dcs_state dcs;
    char dcs_leader[ROUTER_NAME_MAX]; /* "" when the leader key is absent */
    uint64_t dcs_revision;
    uint64_t dcs_last_ok_ms;
    uint64_t dcs_leader_changes;
    char dcs_endpoint[ROUTER_URL_MAX];

    /* Current targets, recomputed by router_reselect(). */
    backend *write_target;
    uint64_t write_target_since_ms;
    uint64_t write_changes;

    /* Health checker asks for an immediate check of a backend (leader change). */
    void (*check_now)(router *r, backend *b, void *arg);
    void *check_now_arg;

    ev_timer *sweep_timer;
    struct resolver *resolver; /* NULL: names are looked up inline (tests) */
    /* In-kernel splicing (router/sockmap.c), shared by every loop; NULL: user space moves
     * the bytes. Set by the caller before init, like resolver. */
    const struct sockmap *sockmap;
    uint64_t kernel_paired; /* sessions handed to the kernel so far */
    /* Kernel NAT for 5000 (router/nat_path.h), main loop only; NULL: the proxy carries it. */
    struct nat_path *nat;
    size_t rr; /* 5001 round-robin start among equally loaded replicas */

    /* Several event loops (router/loops.c). The main router calls on_targets after every
     * selection change so the other loops get the new routing table; their routers are
     * mirrors: no checks, no DCS, no name resolution, the write target is given. */
    void (*on_targets)(router *r, void *arg);
    void *on_targets_arg;
    int mirror;
    backend *mirror_write;
    /* Client fds held by every loop together: limits.max_connections is for the process. */
    _Atomic uint64_t *all_sessions;
    int main_wake_fd; /* mirrors: eventfd of the main loop (check requests); -1: none */
    /* 8404 renders a merged view of every loop's counters when set. */
    router *(*stats_view)(const router *r, void *arg);
    void *stats_view_arg;
    unsigned n_loops;                     /* set in merged views: loops that proxy */
    uint64_t loop_stot[ROUTER_MAX_LOOPS]; /* sessions accepted per loop (merged views) */
};

#endif
