/* Rendering of the etcd v3 cluster/maintenance answers a client uses for discovery and
 * health: /v3/cluster/member/list, /v3/maintenance/status, /version, /health, in etcd
 * 3.4's exact shapes (Patroni builds its endpoint list from members[].clientURLs and picks
 * the API prefix from /version's etcdcluster). */
#ifndef APPLIANCE_DCS_V3_CLUSTER_H
#define APPLIANCE_DCS_V3_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dcs/v3_jsonw.h"
#include "dcs/v3_response.h"

typedef struct v3_member {
    uint64_t id;
    const char *name; /* "" while a member has not started (etcd) */
    const char *const *peer_urls;
    size_t npeer;
    const char *const *client_urls;
    size_t nclient;
    bool is_learner;
} v3_member;

typedef struct v3_status {
    const char *version; /* server version, e.g. "3.4.23" */
    int64_t db_size, db_size_in_use;
    uint64_t leader, raft_index, raft_term, raft_applied_index;
    const char *const *errors;
    size_t nerrors;
    bool is_learner;
} v3_status;

/* etcd sends this header without a revision: pass h->revision = 0. */
void v3_render_member_list(jw *w, const v3_header *h, const v3_member *m, size_t n);
/* MemberAdd/Remove/Update/PromoteResponse: "member" (the added one; NULL: none) and
 * "members" (the list after the change). */
void v3_render_member_change(jw *w, const v3_header *h, const v3_member *changed,
                             const v3_member *m, size_t n);
void v3_render_status(jw *w, const v3_header *h, const v3_status *st);
/* {"etcdserver":"3.4.23","etcdcluster":"3.4.0"} */
void v3_render_version(jw *w, const char *server, const char *cluster);
/* {"health":"true"} or {"health":"false"} */
void v3_render_health(jw *w, bool healthy);

#endif
