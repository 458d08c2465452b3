/* appliancectl's member commands: list, history, switchover, failover, reinit, restart,
 * reload — the same REST calls patronictl makes (contracts §5.3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl_cluster.h"

/* switchover/failover: the agent answers when the new leader holds the key (<= 30 s) */
#define SWITCHOVER_TIMEOUT_MS 35000
/* restart: answered once postgres runs again */
#define RESTART_TIMEOUT_MS 65000

static const char *str_or(const json_t *o, const char *k, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : dflt;
}

int ctl_cmd_list(ctl_ctx *x, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return 2;
    printf("Cluster: %s\n", str_or(x->cluster, "scope", "?"));
    size_t i;
    json_t *m;
    /* like patronictl, a "Pending restart" column only when some member needs one */
    int any_pending = 0;
    json_array_foreach(json_object_get(x->cluster, "members"), i, m) any_pending |=
        json_is_true(json_object_get(m, "pending_restart"));
    printf("%-12s %-22s %-12s %-18s %3s %10s%s\n", "Member", "Host", "Role", "State", "TL",
           "Lag in MB", any_pending ? "  Pending restart" : "");
    json_array_foreach(json_object_get(x->cluster, "members"), i, m)
    {
        const char *role = str_or(m, "role", "");
        char host[300], tl[16] = "", lag[32] = "";
        snprintf(host, sizeof(host), "%s:%lld", str_or(m, "host", "?"),
                 (long long)json_integer_value(json_object_get(m, "port")));
        if (json_is_integer(json_object_get(m, "timeline")))
            snprintf(tl, sizeof(tl), "%lld",
                     (long long)json_integer_value(json_object_get(m, "timeline")));
        json_t *l = json_object_get(m, "lag");
        if (json_is_integer(l))
            snprintf(lag, sizeof(lag), "%lld", (long long)(json_integer_value(l) / 1048576));
        else if (json_is_string(l))
            snprintf(lag, sizeof(lag), "%s", json_string_value(l));
        printf("%-12s %-22s %-12s %-18s %3s %10s%s\n", str_or(m, "name", "?"), host,
               strcmp(role, "leader") == 0         ? "Leader"
               : strcmp(role, "sync_standby") == 0 ? "Sync Standby"
                                                   : "Replica",
               str_or(m, "state", ""), tl, lag,
               json_is_true(json_object_get(m, "pending_restart")) ? "  *" : "");
    }
    if (json_is_true(json_object_get(x->cluster, "pause")))
        printf(" Maintenance mode: on\n"); /* patronictl's footer */
    return 0;
}

static const char *item_str(const json_t *a, size_t i)
{
    const char *s = json_string_value(json_array_get(a, i));
    return s ? s : "";
}

/* The history key: [[timeline, lsn, reason, timestamp, new leader], ...] */
int ctl_cmd_history(ctl_ctx *x, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return 2;
    json_t *h = ctl_get_json(x, x->base, "/history");
    if (!json_is_array(h)) {
        json_decref(h);
        return 1;
    }
    printf("%4s %14s  %-40s %-32s %s\n", "TL", "LSN", "Reason", "Timestamp", "New Leader");
    size_t i;
    json_t *row;
    json_array_foreach(h, i, row)
    {
        json_t *lsn = json_array_get(row, 1);
        printf("%4lld %14lld  %-40s %-32s %s\n",
               (long long)json_integer_value(json_array_get(row, 0)),
               json_is_integer(lsn) ? (long long)json_integer_value(lsn) : 0LL, item_str(row, 2),
               item_str(row, 3), item_str(row, 4));
    }
    json_decref(h);
    return 0;
}

/* [--candidate NAME] [--force]: NULL/0 on success, 2 on bad usage */
static int parse_candidate(int argc, char **argv, const char **cand)
{
    *cand = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--candidate") == 0 && i + 1 < argc)
            *cand = argv[++i];
        else if (strcmp(argv[i], "--force") != 0) /* never prompts: accepted, no effect */
            return 2;
    }
    return 0;
}

static int post_handover(ctl_ctx *x, const char *path, const char *base, const char *leader,
                         const char *cand)
{
    json_t *b = json_object();
    if (leader)
        json_object_set_new(b, "leader", json_string(leader));
    if (cand)
        json_object_set_new(b, "candidate", json_string(cand));
    char *bs = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int rc = ctl_send(x, "POST", base, path, bs, SWITCHOVER_TIMEOUT_MS, 200, NULL, NULL);
    free(bs);
    return rc;
}

int ctl_cmd_switchover(ctl_ctx *x, int argc, char **argv)
{
    const char *cand;
    char target[400], name[256];
    if (parse_candidate(argc, argv, &cand) != 0)
        return 2;
    if (ctl_member_base(x, NULL, "leader", target, sizeof(target), name, sizeof(name)) != 0) {
        fprintf(stderr, "appliancectl: the cluster has no leader (use failover --candidate)\n");
        return 1;
    }
    return post_handover(x, "/switchover", target, name, cand);
}

/* Like patronictl: to the leader when there is one (then it is a switchover to the
 * candidate), else to the candidate itself, which takes the leader lock if it can. */
int ctl_cmd_failover(ctl_ctx *x, int argc, char **argv)
{
    const char *cand;
    char target[400], name[256];
    if (parse_candidate(argc, argv, &cand) != 0 || !cand) {
        fprintf(stderr, "appliancectl: failover needs --candidate NAME\n");
        return 2;
    }
    if (ctl_member_base(x, cand, NULL, target, sizeof(target), NULL, 0) != 0) {
        fprintf(stderr, "appliancectl: %s is not a member of the cluster\n", cand);
        return 1;
    }
    if (ctl_member_base(x, NULL, "leader", target, sizeof(target), name, sizeof(name)) == 0)
        return post_handover(x, "/failover", target, name, cand);
    ctl_member_base(x, cand, NULL, target, sizeof(target), NULL, 0);
    return post_handover(x, "/failover", target, NULL, cand);
}

/* restart --pending: every member whose settings wait for a restart, replicas first: a
 * raised max_connections (or max_worker_processes, ...) must reach the standbys before the
 * primary, or they stop replaying ("insufficient parameter settings") */
static int restart_pending(ctl_ctx *x)
{
    int rc = 0, done = 0;
    char target[400];
    for (int leader_pass = 0; leader_pass < 2; leader_pass++) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(x->cluster, "members"), i, m)
        {
            const char *n = json_string_value(json_object_get(m, "name"));
            int is_leader = strcmp(str_or(m, "role", ""), "leader") == 0;
            if (!n || is_leader != leader_pass ||
                !json_is_true(json_object_get(m, "pending_restart")) ||
                ctl_member_base(x, n, NULL, target, sizeof(target), NULL, 0) != 0)
                continue;
            printf("%s: ", n);
            fflush(stdout);
            rc |=
                ctl_send(x, "POST", target, "/restart", "{}", RESTART_TIMEOUT_MS, 200, NULL, NULL);
            done++;
        }
    }
    if (!done)
        printf("no member needs a restart\n");
    return rc;
}

/* reinit MEMBER | restart MEMBER | restart --pending | reload [MEMBER...] (reload: every
 * member when none) */
int ctl_cmd_member_post(ctl_ctx *x, const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "restart") == 0 && argc == 1 && strcmp(argv[0], "--pending") == 0)
        return restart_pending(x);
    int reload = strcmp(cmd, "reload") == 0;
    if (!reload && argc != 1)
        return 2;
    const char *path = reload                       ? "/reload"
                       : strcmp(cmd, "reinit") == 0 ? "/reinitialize"
                                                    : "/restart";
    unsigned tmo = strcmp(cmd, "restart") == 0 ? RESTART_TIMEOUT_MS : CTL_TIMEOUT_MS;
    char target[400], name[256];
    int rc = 0;
    if (reload && argc == 0) {
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(x->cluster, "members"), i, m)
        {
            const char *n = json_string_value(json_object_get(m, "name"));
            if (n && ctl_member_base(x, n, NULL, target, sizeof(target), name, sizeof(name)) == 0) {
                printf("%s: ", n);
                rc |= ctl_send(x, "POST", target, path, "{}", tmo, 200, NULL, NULL);
            }
        }
        return rc;
    }
    for (int i = 0; i < argc; i++) {
        if (ctl_member_base(x, argv[i], NULL, target, sizeof(target), NULL, 0) != 0) {
            fprintf(stderr, "appliancectl: %s is not a member of the cluster\n", argv[i]);
            rc = 1;
            continue;
        }
        if (reload)
            printf("%s: ", argv[i]);
        rc |= ctl_send(x, "POST", target, path, "{}", tmo, 200, NULL, NULL);
    }
    return rc;
}
