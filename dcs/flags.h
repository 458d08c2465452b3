/* appliance-dcs configuration the way etcd users know it: command-line flags
 * (--name=x or --name x, one or two dashes) and ETCD_* environment variables (ETCD_NAME,
 * ETCD_INITIAL_CLUSTER, ...). A flag wins over its environment variable, as in etcd.
 * Unknown flags and bad values are errors naming the flag and the value (main exits 2). */
#ifndef APPLIANCE_DCS_FLAGS_H
#define APPLIANCE_DCS_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DCS_MAX_MEMBERS 9 /* = RAFT_MAX_NODES */
#define DCS_MAX_URLS    4 /* per listen/advertise list */
#define DCS_MAX_STR     256

typedef struct dcs_url {
    char host[DCS_MAX_STR]; /* numeric address or name, without brackets */
    char port[8];
    char text[DCS_MAX_STR]; /* as given, e.g. "http://127.0.0.1:2379" */
} dcs_url;

typedef struct dcs_member_cfg {
    char name[DCS_MAX_STR];
    dcs_url peer; /* its first peer URL */
    uint64_t id;  /* derived: dcs_member_id(name, peer url, token) */
} dcs_member_cfg;

typedef struct dcs_flags {
    char name[DCS_MAX_STR];
    char data_dir[1024];
    char token[DCS_MAX_STR];
    bool state_new; /* --initial-cluster-state new|existing */
    dcs_member_cfg members[DCS_MAX_MEMBERS];
    size_t nmembers;
    size_t self; /* index of --name in members */
    dcs_url listen_client[DCS_MAX_URLS], advertise_client[DCS_MAX_URLS];
    size_t nlisten_client, nadvertise_client;
    dcs_url listen_peer[DCS_MAX_URLS], advertise_peer[DCS_MAX_URLS];
    size_t nlisten_peer, nadvertise_peer;
    uint32_t heartbeat_ms, election_ms;
    bool enable_v2;
    uint64_t snapshot_count; /* --snapshot-count: applied entries between snapshots */
    uint64_t cluster_id;     /* derived from the token and the initial cluster */
    /* --auto-compaction-mode/--auto-compaction-retention. Unlike etcd (off by default) the
     * default keeps the last 1000 revisions: history is held in memory and copied into
     * every snapshot, so an unbounded history grows memory, snapshot size and the time to
     * take a snapshot without limit. Patroni writes a few revisions per loop_wait (10 s)
     * per member and re-reads on a "compacted" watch error, so 1000 revisions are hours of
     * history for it. Periodic mode keeps what is younger than the retention (unbounded
     * under a write burst, as in etcd). 0 = no automatic compaction. */
    bool compaction_periodic;
    uint64_t compaction_retention; /* revisions, or milliseconds when periodic */
} dcs_flags;

/* Parses argv (argv[0] skipped) over the environment env (NULL-terminated "K=V" list, e.g.
 * environ). Returns 0, 1 when --help/--version was asked (text written into err), or -1
 * with err naming the flag/variable and the bad value. */
int dcs_flags_parse(dcs_flags *f, int argc, char **argv, char **env, char *err, size_t errlen);

/* "http://host:port" (no TLS) into u; errors name `what`. */
int dcs_url_parse(const char *s, dcs_url *u, const char *what, char *err, size_t errlen);

/* A member's ID: stable hash (FNV-1a 64) of name, peer URL and cluster token, never 0. */
uint64_t dcs_member_id(const char *name, const char *peer_url, const char *token);

/* Usage text for --help. */
extern const char dcs_flags_usage[];

#endif
