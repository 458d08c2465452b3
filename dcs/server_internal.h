/* Shared state of the appliance-dcs server files: server_core.c (Raft drive cycle,
 * storage, apply, leases, snapshots, forwarding) and server_http.c (the client API). */
#ifndef APPLIANCE_DCS_SERVER_INTERNAL_H
#define APPLIANCE_DCS_SERVER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "dcs/flags.h"
#include "dcs/raft.h"
#include "dcs/server.h"
#include "dcs/store_cmd.h"
#include "dcs/transport.h"
#include "dcs/v2_store.h"
#include "dcs/v2_watch.h"
#include "dcs/v3_cluster.h"
#include "dcs/v3_gateway.h"
#include "dcs/wal.h"
#include "dcs/watch.h"
#include "http.h"

#define DCS_MAX_PENDING     4096 /* client requests waiting for Raft; more answer "too many" */
#define DCS_SERVER_VERSION  "3.4.23"
#define DCS_COMPACT_SAMPLES 256
#define DCS_COMPACT_BURST   1000 /* revisions past the retention that trigger a compaction */
#define DCS_FSYNC_BUCKETS   14   /* 0.001 s .. 8.192 s, as etcd's WAL fsync histogram */
#define DCS_CLUSTER_VERSION "3.4.0"

enum preq_kind {
    PQ_V3_WRITE = 1,
    PQ_V2_WRITE,
    PQ_V3_READ,
    PQ_KEEPALIVE,
    PQ_V2_READ,
    PQ_MEMBER /* member add/remove/update (server_members.c) */
};
enum preq_state {
    PS_WAIT_FWD = 1, /* forwarded to the leader, waiting for its index */
    PS_WAIT_APPLY,   /* index/term known, waiting for the entry to apply */
    PS_WAIT_READ,    /* ReadIndex asked (ctx), waiting for its index */
    PS_READ_RETRY,   /* ReadIndex not confirmed: ask again on the next tick */
    PS_WAIT_READ_APPLY,
};

typedef struct preq {
    struct preq *prev, *next;
    struct dcs_server *s;
    http_conn *conn; /* NULL once the client is gone */
    int kind, state;
    mvcc_arena arena; /* the parsed request lives here */
    v3_request v3;
    v2_request v2;
    uint64_t index, term; /* PS_WAIT_APPLY / read index */
    uint64_t id;          /* forward id / read ctx */
    int64_t deadline_ms;  /* monotonic: answer "request timed out" after it */
    uint64_t member_id;   /* PQ_MEMBER */
    int member_op;        /* PQ_MEMBER: store_member_op */
    bool member_v2;       /* PQ_MEMBER: asked through /v2/members */
    bool ttl_fwd;         /* timetolive forwarded to the leader */
    uint8_t *cmd;         /* encoded command, for a forward retry */
    size_t cmd_len;
    /* A request from the gRPC front (grpc_front.c): answered through these, not HTTP. */
    const struct preq_sink *sink;
    void *sink_arg;
} preq;

typedef struct preq_sink { /* each answers p and frees it, like dcs_answer_* */
    void (*applied)(preq *p, const store_result *res);
    void (*error)(preq *p, int grpc_code, const char *msg);
    void (*read)(preq *p);
    void (*keepalive)(preq *p, int64_t ttl);
} preq_sink;

typedef struct watch_conn {
    struct watch_conn *prev, *next;
    struct dcs_server *s;
    http_conn *conn;
    watch_stream *ws;
    bool flush_scheduled;
} watch_conn;

typedef struct v2_wait {
    struct v2_wait *prev, *next;
    struct dcs_server *s;
    http_conn *conn;
    uint64_t handle;
    mvcc_arena arena;
} v2_wait;

/* What a peer told us about itself (TRANSPORT_INFO): name and client URLs, so every
 * member lists every member's clientURLs (Patroni discovers its endpoints from them). */
typedef struct peer_info {
    uint64_t id;
    char name[DCS_MAX_STR];
    char client_urls[DCS_MAX_URLS][DCS_MAX_STR];
    size_t nclient;
    bool sent; /* our info went out on the current connection */
} peer_info;

struct dcs_server {
    evloop *loop;
    dcs_flags f;
    uint64_t id;
    raft *r;
    wal *w;
    transport *tp;
    http_server *http;
    struct grpc_front *grpc; /* etcd's gRPC API on the client port (grpc_front.h) */
    dcs_store *st;
    watch_hub *hub;
    v2_waiters *v2w;
    char wal_dir[1100], snap_dir[1100];
    ev_timer *tick_timer, *drain_timer, *flush_timer;
    raft_entry *rx_ents; /* decode buffer for peer messages */
    uint64_t applied, snap_index;
    uint64_t leader;
    int role;
    uint64_t max_term; /* raft_term never goes backwards in headers */
    preq *pending;     /* doubly linked, newest first */
    size_t npending;
    watch_conn *watches;
    v2_wait *v2waits;
    size_t nv2waits;
    peer_info peers[DCS_MAX_MEMBERS]; /* indexed like f.members */
    uint64_t next_id;
    int64_t last_expire_ms, last_compact_ms, last_v2_expire_ms;
    uint32_t request_timeout_ms;
    bool stopping;
    int64_t stop_deadline_ms;
    bool dead;             /* a disk failure: stop serving, exit non-zero */
    bool removed;          /* this member was removed from the cluster */
    uint64_t members_seen; /* st->members_changed last synced */
    struct snap_writer *sw;
    struct {
        int64_t ms, rev;
    } csamples[DCS_COMPACT_SAMPLES]; /* periodic compaction: (time, revision) ring */
    size_t csample_head, ncsamples;
    int64_t compact_proposed; /* last automatic compaction target proposed */
    int64_t snap_retry_ms;    /* after a failed snapshot */
    /* metrics */
    uint64_t leader_changes, proposals_ok, proposals_failed, snapshots, forwarded;
    uint64_t snapshots_installed;           /* received from the leader */
    uint64_t fsync_hist[DCS_FSYNC_BUCKETS]; /* cumulative: <= 1 ms << i */
    uint64_t fsync_count, fsync_sum_us;
};

/* server_core.c */
int64_t dcs_now_ms(dcs_server *s); /* monotonic */
int64_t dcs_wall_ms(void);         /* unix ms */
void dcs_schedule_drain(dcs_server *s);
void dcs_header(dcs_server *s, v3_header *h);
/* The member's status (etcd's StatusResponse) as both gateways answer it. */
void dcs_status_fill(dcs_server *s, v3_status *st);
/* Submits an encoded store command for p (local proposal on the leader, forward on a
 * follower); takes ownership of cmd. On immediate failure answers p and frees it. */
void dcs_submit(dcs_server *s, preq *p, uint8_t *cmd, size_t len);
/* Starts a linearizable read for p. */
void dcs_read_barrier(dcs_server *s, preq *p);
/* Forwards a lease keepalive to the leader (follower). */
void dcs_forward_keepalive(dcs_server *s, preq *p);
/* Asks the leader for a lease's remaining TTL, then answers p's timetolive (follower). */
void dcs_forward_timetolive(dcs_server *s, preq *p);
preq *preq_new(dcs_server *s, http_conn *conn, int kind);
void preq_free(preq *p);

/* server_members.c: membership (etcd's member add/remove/update/promote, v2 members,
 * joining a running cluster) */
/* Before recovery: the identity of a member that joined (data dir) or joins now
 * (--initial-cluster-state existing, empty data dir: asks the members over the peer port). */
int dcs_members_identity(dcs_server *s, char *err, size_t errlen);
/* After a MEMBER command applied or a store installed: members and transport follow the
 * replicated records. */
void dcs_members_sync(dcs_server *s);
/* Handles /v3/cluster/member/{add,remove,update,promote} and POST/DELETE /v2/members;
 * false when path is none of them. */
bool dcs_members_http(dcs_server *s, http_conn *c, const http_request *req);
void dcs_members_answer(preq *p, const store_result *res);
/* Leader: proposes a change (configuration + member record); 0 with the record's index,
 * or a RAFT_E* code. */
int dcs_member_propose(dcs_server *s, int op, uint64_t id, const char *url, uint64_t *idx);
/* server_core.c: a follower forwards a member change to the leader. */
void dcs_forward_member(dcs_server *s, preq *p, const char *url);

/* server_http.c */
void dcs_respond_jw(http_conn *c, int status, const char *extra, jw *w);
void dcs_preq_attach(preq *p, http_conn *c);
/* Fills m (DCS_MAX_MEMBERS) with the current members for rendering; returns the count. */
size_t dcs_member_view(dcs_server *s, v3_member *m, const char *purls[][1],
                       const char *curls[][DCS_MAX_URLS]);
int dcs_http_start(dcs_server *s, char *err, size_t errlen);
/* Answers p from the applied result (or with an error) and frees it. */
void dcs_answer_applied(preq *p, const store_result *res);
void dcs_answer_error(preq *p, int grpc_code, const char *msg);
void dcs_answer_read(preq *p);
void dcs_answer_keepalive(preq *p, int64_t ttl);
/* The store was replaced (snapshot install): close watches and v2 waiters. */
void dcs_http_store_reset(dcs_server *s);
void dcs_http_stop(dcs_server *s);

#endif
