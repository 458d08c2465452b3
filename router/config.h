/* appliance-router configuration: defaults, a YAML file (libyaml) and ROUTER_* environment
 * overrides, validated into one flat struct. Every key has one name in both worlds:
 * YAML `checks: {interval_ms: 500}` is env ROUTER_CHECKS_INTERVAL_MS=500. A bad value is
 * rejected with an error naming the key, the value and (for YAML) the line. */
#ifndef APPLIANCE_ROUTER_CONFIG_H
#define APPLIANCE_ROUTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define ROUTER_MAX_BACKENDS 16
#define ROUTER_MAX_DCS      8
#define ROUTER_NAME_MAX     64
#define ROUTER_HOST_MAX     256
#define ROUTER_ADDR_MAX     (ROUTER_HOST_MAX + 8)
#define ROUTER_PATH_MAX     256
#define ROUTER_URL_MAX      320
#define ROUTER_ERR_MAX      512
#define ROUTER_MAX_LOOPS    64

typedef struct router_backend_conf {
    char name[ROUTER_NAME_MAX];       /* the Patroni member name (value of the leader key) */
    char host[ROUTER_HOST_MAX];       /* numeric address or a name resolved at run time */
    uint16_t port;                    /* postgres */
    char check_host[ROUTER_HOST_MAX]; /* REST API host; defaults to host */
    uint16_t check_port;              /* REST API port (8008) */
    int noloadbalance;                /* never a 5001 target (like Patroni's noloadbalance tag) */
} router_backend_conf;

typedef struct router_config {
    char scope[ROUTER_NAME_MAX];      /* Patroni scope: pg-cluster */
    char namespace_[ROUTER_PATH_MAX]; /* Patroni namespace: /service */

    /* "host:port"; an empty string disables that listener. */
    char listen_primary[ROUTER_ADDR_MAX];
    char listen_replicas[ROUTER_ADDR_MAX];
    char listen_stats[ROUTER_ADDR_MAX];
    int reuseport; /* SO_REUSEPORT on the proxy listeners (several routers, one port) */

    /* etcd v3 JSON endpoints, "http://host:port"; none = health checks only. */
    char dcs_endpoints[ROUTER_MAX_DCS][ROUTER_URL_MAX];
    size_t n_dcs;
    uint32_t dcs_retry_min_ms, dcs_retry_max_ms; /* reconnect backoff */
    uint32_t dcs_resync_ms; /* periodic range read: detects a silent dead stream */
    uint32_t dcs_grace_ms;  /* DCS unreachable this long -> trust health checks alone */

    router_backend_conf backends[ROUTER_MAX_BACKENDS];
    size_t n_backends;

    uint32_t check_interval_ms;
    uint32_t check_fast_interval_ms; /* DCS leader not yet confirmed by /primary */
    uint32_t check_timeout_ms;
    uint32_t check_rise, check_fall;
    char primary_check_path[ROUTER_PATH_MAX];
    /* GET the primary path and require the body's "role" to be primary/master: Patroni
     * answers /primary 200 as soon as it holds the leader key, while PostgreSQL may still
     * be promoting (writes would fail read-only). Off: OPTIONS, status code only. */
    int primary_check_role;
    char replica_check_path[ROUTER_PATH_MAX]; /* e.g. /replica?lag=16MB */

    uint32_t max_connections; /* client sessions over both proxy listeners */
    uint32_t connect_timeout_ms;
    uint32_t idle_timeout_ms;  /* 0: none */
    uint32_t hold_ms;          /* wait for a target this long before refusing; 0: refuse */
    uint32_t hold_max;         /* bounded hold queue per listener */
    uint32_t buffer_size;      /* per direction, per active transfer */
    uint32_t retries;          /* further connect attempts after a failed one */
    int connect_on_first_byte; /* pick and connect a backend when the client first speaks */

    int replicas_fallback_to_primary;
    /* Data path (ROUTER_SPLICE_*): userspace recv/send; pipe = splice(2) through pipes;
     * sockmap = the kernel moves the bytes (BPF sockhash, router/sockmap.h); auto =
     * sockmap when bpf() works, else userspace. Default userspace. */
    int splice;
    /* How 5000's connections reach the primary (ROUTER_FORWARD_*): proxy = through the
     * data path above; nat = the kernel rewrites them (nf_tables DNAT, router/nat_path.h)
     * while the router keeps choosing the target, and the proxy takes whatever arrives
     * while no target is installed (hold window); auto = nat when nf_tables accepts our
     * rules, else proxy. Read at start only. Default proxy. */
    int forward;
    /* Event loops that proxy, each with its own SO_REUSEPORT listeners; 0: one per online
     * CPU. Read at start only (a reload does not start or stop loops). */
    uint32_t loops;
} router_config;

enum { ROUTER_SPLICE_USERSPACE, ROUTER_SPLICE_PIPE, ROUTER_SPLICE_SOCKMAP, ROUTER_SPLICE_AUTO };
const char *router_splice_name(int v);
enum { ROUTER_FORWARD_PROXY, ROUTER_FORWARD_NAT, ROUTER_FORWARD_AUTO };
const char *router_forward_name(int v);
int router_forward_parse(const char *s); /* -1: not a forwarding mode */
int router_splice_parse(const char *s);  /* -1: not a data path name */

void router_config_defaults(router_config *c);

/* Loads path (NULL: none) over the defaults, then applies ROUTER_* variables from envp
 * (NULL: environ), then validates. Returns 0, or -1 with a message in err. */
int router_config_load(router_config *c, const char *path, char *const *envp, char *err,
                       size_t errsz);

/* Same, from a YAML string (tests, fuzzing). */
int router_config_load_yaml(router_config *c, const char *yaml, size_t len, char *err,
                            size_t errsz);

/* Applies one key given as in the env/YAML world ("checks.interval_ms", "500"). */
int router_config_set(router_config *c, const char *key, const char *value, char *err,
                      size_t errsz);

/* Cross-key checks (backends present, names unique, listeners distinct, ...). */
int router_config_validate(const router_config *c, char *err, size_t errsz);

/* Splits "host:port" / "[v6]:port" into host and port. 0 or -1. */
int router_split_hostport(const char *s, char *host, size_t hostsz, uint16_t *port);

#endif
