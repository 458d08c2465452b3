/* appliancectl: operate the cluster through the agents' REST API (Patroni's API, so the
 * same calls patronictl makes), and provision it (the one-shot ROLE=init job).
 *
 *   appliancectl [-c CONFIG] list                      members, roles, states, lag
 *   appliancectl [-c CONFIG] switchover [--candidate NAME]
 *   appliancectl [-c CONFIG] reinit MEMBER             re-clone a replica from the leader
 *   appliancectl [-c CONFIG] restart MEMBER
 *   appliancectl provision [options]                   see ctl/provision.c
 *   appliancectl --help | -h | help | version | --version
 *
 * CONFIG is the agent YAML of this node (default $APPLIANCE_CONFIG, else
 * /home/postgres/postgres.yml); restapi.connect_address says where the local agent is (its
 * GET /cluster says who is where, and each request goes to the member it is about) and
 * restapi.authentication is sent with every request (as patronictl does). help, version
 * and provision need no config file. Exit status: 0 done, 1 refused/failed, 2 usage or
 * configuration error (usage on stderr). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "ctl/provision.h"
#include "ctl/rest_call.h"

#define TIMEOUT_MS 5000
/* switchover: the agent answers when the new leader holds the key (<= 30 s) */
#define SWITCHOVER_TIMEOUT_MS 35000

#ifndef APPLIANCE_VERSION
#define APPLIANCE_VERSION "0.2.0-dev"
#endif

static const char usage_text[] =
    "usage: appliancectl [-c CONFIG.yml] COMMAND\n"
    "commands:\n"
    "  list                          members, roles, states, timelines, lag\n"
    "  switchover [--candidate NAME] hand the leader role over (to NAME)\n"
    "  reinit MEMBER                 re-clone a replica from the leader\n"
    "  restart MEMBER                restart postgres of a member\n"
    "  provision [--host H] [--port P] [--file SQL] [--timeout S] [--user U] [--dbname D]\n"
    "                                run the provisioning SQL once per cluster (ROLE=init)\n"
    "  version                       print the version\n"
    "  help                          this text\n"
    "CONFIG: the agent's YAML (default $APPLIANCE_CONFIG, else /home/postgres/postgres.yml)\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

/* "Authorization: Basic ..." from the config (restapi.authentication), or "" */
static char g_auth[600];

static json_t *get_cluster(const char *base)
{
    char url[400];
    snprintf(url, sizeof(url), "%s/cluster", base);
    ctl_response r;
    ctl_call("GET", url, NULL, g_auth, TIMEOUT_MS, &r);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    if (!json_is_object(j) && r.status)
        fprintf(stderr, "appliancectl: GET %s: HTTP status %d\n", url, r.status);
    else if (!json_is_object(j))
        fprintf(stderr, "appliancectl: GET %s failed: %s\n", url, r.body ? r.body : "?");
    free(r.body);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static void print_list(const json_t *cluster)
{
    const char *scope = json_string_value(json_object_get(cluster, "scope"));
    printf("Cluster: %s\n", scope ? scope : "?");
    printf("%-12s %-22s %-12s %-18s %3s %10s\n", "Member", "Host", "Role", "State", "TL",
           "Lag in MB");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(cluster, "members"), i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        char host[300], tl[16] = "", lag[32] = "";
        snprintf(host, sizeof(host), "%s:%lld",
                 json_string_value(json_object_get(m, "host"))
                     ? json_string_value(json_object_get(m, "host"))
                     : "?",
                 (long long)json_integer_value(json_object_get(m, "port")));
        if (json_is_integer(json_object_get(m, "timeline")))
            snprintf(tl, sizeof(tl), "%lld",
                     (long long)json_integer_value(json_object_get(m, "timeline")));
        json_t *l = json_object_get(m, "lag");
        if (json_is_integer(l))
            snprintf(lag, sizeof(lag), "%lld", (long long)(json_integer_value(l) / 1048576));
        else if (json_is_string(l))
            snprintf(lag, sizeof(lag), "%s", json_string_value(l));
        printf("%-12s %-22s %-12s %-18s %3s %10s\n", json_string_value(json_object_get(m, "name")),
               host,
               role && strcmp(role, "leader") == 0         ? "Leader"
               : role && strcmp(role, "sync_standby") == 0 ? "Sync Standby"
                                                           : "Replica",
               json_string_value(json_object_get(m, "state"))
                   ? json_string_value(json_object_get(m, "state"))
                   : "",
               tl, lag);
    }
}

/* "http://host:8008/patroni" -> "http://host:8008" of a member */
static int member_base(const json_t *cluster, const char *name, const char *want_role, char *out,
                       size_t outsz, char *found_name, size_t fnsz)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(cluster, "members"), i, m)
    {
        const char *n = json_string_value(json_object_get(m, "name"));
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *api = json_string_value(json_object_get(m, "api_url"));
        if (!n || !api || (name && strcmp(n, name) != 0) ||
            (want_role && (!role || strcmp(role, want_role) != 0)))
            continue;
        snprintf(out, outsz, "%s", api);
        char *p = strstr(out, "/patroni");
        if (p)
            *p = '\0';
        if (found_name)
            snprintf(found_name, fnsz, "%s", n);
        return 0;
    }
    return -1;
}

static int post(const char *base, const char *path, const char *body, unsigned timeout_ms,
                int ok_status)
{
    char url[400];
    snprintf(url, sizeof(url), "%s%s", base, path);
    ctl_response r;
    ctl_call("POST", url, body, g_auth, timeout_ms, &r);
    printf("%s\n", r.body ? r.body : "");
    int rc = r.status == ok_status || (ok_status == 200 && r.status == 202) ? 0 : 1;
    if (rc)
        fprintf(stderr, "appliancectl: POST %s: %s %d\n", url, r.status ? "HTTP status" : "failed",
                r.status);
    free(r.body);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cfg_path = getenv("APPLIANCE_CONFIG");
    if (!cfg_path)
        cfg_path = "/home/postgres/postgres.yml";
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
        cfg_path = argv[i + 1];
        i += 2;
    }
    if (i >= argc)
        return usage();
    const char *cmd = argv[i++];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("appliancectl %s (pg-appliance; Patroni REST API %s)\n", APPLIANCE_VERSION, "3.0.2");
        return 0;
    }
    if (strcmp(cmd, "provision") == 0)
        return provision_main(argc - i, argv + i);
    if (strcmp(cmd, "list") != 0 && strcmp(cmd, "switchover") != 0 && strcmp(cmd, "reinit") != 0 &&
        strcmp(cmd, "restart") != 0) {
        fprintf(stderr, "appliancectl: unknown command '%s'\n", cmd);
        return usage();
    }
    extern char **environ;
    agent_config cfg;
    char err[600];
    if (agent_config_load_file(&cfg, cfg_path, environ, err, sizeof(err)) != 0) {
        fprintf(stderr, "appliancectl: invalid configuration: %s\n", err);
        return 2;
    }
    char base[300];
    snprintf(base, sizeof(base), "http://%s", cfg.rest_connect_address);
    cfg_basic_auth_header(&cfg.rest_auth, g_auth, sizeof(g_auth));
    agent_config_free(&cfg);
    json_t *cluster = get_cluster(base);
    if (!cluster)
        return 1;
    int rc;
    char target[400], name[256];
    if (strcmp(cmd, "list") == 0 && i == argc) {
        print_list(cluster);
        rc = 0;
    } else if (strcmp(cmd, "switchover") == 0) {
        const char *cand = NULL;
        if (i + 1 < argc && strcmp(argv[i], "--candidate") == 0) {
            cand = argv[i + 1];
            i += 2;
        }
        if (i != argc) {
            json_decref(cluster);
            return usage();
        }
        if (member_base(cluster, NULL, "leader", target, sizeof(target), name, sizeof(name)) != 0) {
            fprintf(stderr, "appliancectl: the cluster has no leader\n");
            rc = 1;
        } else {
            json_t *b = json_pack("{s:s}", "leader", name);
            if (cand)
                json_object_set_new(b, "candidate", json_string(cand));
            char *bs = json_dumps(b, JSON_COMPACT);
            json_decref(b);
            rc = post(target, "/switchover", bs, SWITCHOVER_TIMEOUT_MS, 200);
            free(bs);
        }
    } else if ((strcmp(cmd, "reinit") == 0 || strcmp(cmd, "restart") == 0) && i + 1 == argc) {
        if (member_base(cluster, argv[i], NULL, target, sizeof(target), NULL, 0) != 0) {
            fprintf(stderr, "appliancectl: %s is not a member of the cluster\n", argv[i]);
            rc = 1;
        } else if (strcmp(cmd, "reinit") == 0) {
            rc = post(target, "/reinitialize", "{}", TIMEOUT_MS, 200);
        } else {
            rc = post(target, "/restart", "{}", 65000, 200);
        }
    } else {
        json_decref(cluster);
        return usage();
    }
    json_decref(cluster);
    return rc;
}
