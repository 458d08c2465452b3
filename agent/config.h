/* Agent configuration: Patroni's YAML keys (contracts §7.1) from one file, then environment
 * overrides (Patroni's PATRONI_* names and the Spilo names that matter), then validation.
 * Every error names the key path and the offending value (secrets are never echoed).
 *
 * The dynamic part (ttl, loop_wait, ...; contracts §7.2) lives in the DCS `config` key,
 * seeded from bootstrap.dcs; agent_dyn_config is parsed from either. */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_HOSTS 16
#define CFG_STR       256

typedef struct cfg_credentials {
    char username[64];
    char password[256]; /* never logged */
} cfg_credentials;

/* Shipped defaults; the timing argument for them is at the top of agent/agent.c. */
#define DYN_DEFAULT_TTL           4
#define DYN_DEFAULT_LOOP_WAIT     1
#define DYN_DEFAULT_RETRY_TIMEOUT 1
#define DYN_DEFAULT_MAX_LAG       1048576
/* Patroni 4's member_slots_ttl: a departed member's replication slot is kept this long
 * (seconds) so a member that is down for maintenance finds its WAL still there. */
#define DYN_DEFAULT_MEMBER_SLOTS_TTL 1800

typedef struct agent_dyn_config {
    int ttl;           /* seconds: leader lease TTL */
    int loop_wait;     /* seconds between HA cycles */
    int retry_timeout; /* seconds: deadline of one DCS operation */
    int64_t maximum_lag_on_failover;
    int64_t member_slots_ttl; /* seconds */
    int use_pg_rewind;
    int use_slots;
    int failsafe_mode;
    int pause;
    int synchronous_mode;        /* Patroni's synchronous_mode (agent/sync.c) */
    int synchronous_mode_strict; /* no sync standby: block commits instead of going async */
    json_t *parameters;          /* postgresql.parameters object (owned) */
} agent_dyn_config;

typedef struct agent_config {
    char scope[CFG_STR];
    char namespace_[CFG_STR]; /* normalised: "/service" (leading slash, no trailing) */
    char name[CFG_STR];
    /* restapi */
    char rest_listen_host[CFG_STR];
    char rest_listen_port[16];
    char rest_connect_address[CFG_STR]; /* host:port */
    cfg_credentials rest_auth;          /* empty username: no auth */
    /* etcd3 */
    char etcd_hosts[CFG_MAX_HOSTS][CFG_STR]; /* "http://host:port" */
    size_t n_etcd_hosts;
    /* postgresql */
    char pg_listen_host[CFG_STR]; /* listen_addresses value */
    int pg_port;
    char pg_connect_address[CFG_STR]; /* host:port */
    char data_dir[CFG_STR];
    char bin_dir[CFG_STR];
    char pgpass[CFG_STR];
    cfg_credentials superuser, replication, rewind;
    json_t *pg_parameters; /* local postgresql.parameters (owned, object) */
    json_t *pg_hba;        /* array of strings or NULL (owned) */
    int remove_data_directory_on_rewind_failure;
    /* Patroni's key (default off): a replica whose WAL went past the leader's fork and that
     * cannot be rewound (use_pg_rewind off, or pg_rewind failed) moves its data dir aside
     * and is cloned again */
    int remove_data_directory_on_diverged_timelines;
    /* postgresql.callbacks: event name -> command (owned object of strings, maybe empty).
     * Run as `command ACTION ROLE SCOPE` (split on spaces, no shell), as Patroni does. */
    json_t *callbacks;
    /* bootstrap */
    json_t *bootstrap_dcs;    /* object as written into the config key (owned) */
    json_t *bootstrap_initdb; /* array (owned) */
    json_t *bootstrap_pg_hba; /* array or NULL (owned) */
    /* tags */
    json_t *tags; /* object (owned), possibly empty */
    int nofailover;
    int noloadbalance;
    /* the run-as user when started as root */
    char pg_user[64];
} agent_config;

/* Loads, overrides from env (envp: NULL-terminated "K=V" list, e.g. environ) and
 * validates. Returns 0, or -1 with one clear message in err. */
int agent_config_load_text(agent_config *cfg, const char *yaml, size_t len, char *const *envp,
                           char *err, size_t errsz);
int agent_config_load_file(agent_config *cfg, const char *path, char *const *envp, char *err,
                           size_t errsz);
void agent_config_free(agent_config *cfg);

/* Parses a dynamic config object (the DCS `config` key or bootstrap.dcs) and applies
 * Patroni's sanity rules (contracts §6.1). Missing keys get the shipped defaults.
 * Returns 0, or -1 with err naming the key and value. */
int agent_dyn_config_parse(agent_dyn_config *dyn, const json_t *obj, char *err, size_t errsz);
void agent_dyn_config_free(agent_dyn_config *dyn);

/* "Authorization: Basic <base64(user:password)>" for requests to members' REST APIs (the
 * failsafe POST between members, appliancectl), as Patroni sends restapi.authentication
 * with its own requests. Returns 0, or -1 when no credentials are configured (out: ""). */
int cfg_basic_auth_header(const cfg_credentials *c, char *out, size_t outsz);

/* Splits "host:port" (IPv6 in brackets); returns 0 or -1. */
int cfg_split_host_port(const char *s, char *host, size_t hostsz, int *port);

#endif
