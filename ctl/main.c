/* appliancectl: operate the cluster through the agents' REST API (Patroni's API, so the
 * same calls patronictl makes), and provision it (the one-shot ROLE=init job).
 *
 *   appliancectl [-c CONFIG] list | history | show-config
 *   appliancectl [-c CONFIG] switchover [--candidate NAME] | failover --candidate NAME
 *   appliancectl [-c CONFIG] reinit MEMBER | restart MEMBER|--pending | reload [MEMBER...]
 *   appliancectl [-c CONFIG] pause [--wait] | resume [--wait]
 *   appliancectl [-c CONFIG] edit-config -s KEY=VALUE | -p GUC=VALUE | --apply F | --replace F
 *   appliancectl provision [options]                   see ctl/provision.c
 *   appliancectl --help | -h | help | version | --version
 *
 * CONFIG is the agent YAML of this node (default $APPLIANCE_CONFIG, else
 * /home/postgres/postgres.yml); restapi.connect_address says where the local agent is (its
 * GET /cluster says who is where, and each request goes to the member it is about) and
 * restapi.authentication is sent with every request (as patronictl does). help, version
 * and provision need no config file. Exit status: 0 done, 1 refused/failed, 2 usage or
 * configuration error (usage on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "ctl/ctl_cluster.h"
#include "ctl/provision.h"

#ifndef APPLIANCE_VERSION
#define APPLIANCE_VERSION "0.2.0-dev"
#endif

static const char usage_text[] =
    "usage: appliancectl [-c CONFIG.yml] COMMAND\n"
    "commands:\n"
    "  list                          members, roles, states, timelines, lag\n"
    "  history                       timeline history (promotions)\n"
    "  switchover [--candidate NAME] hand the leader role over (to NAME)\n"
    "  failover --candidate NAME     make NAME the leader, also when there is no leader\n"
    "  reinit MEMBER                 re-clone a replica from the leader\n"
    "  restart MEMBER | --pending    restart postgres of a member, or of every member whose\n"
    "                                settings wait for a restart (replicas first)\n"
    "  reload [MEMBER...]            reload the configuration (every member by default)\n"
    "  pause [--wait]                maintenance mode: no automatic failover\n"
    "  resume [--wait]               leave maintenance mode\n"
    "  show-config                   the cluster's dynamic configuration, as YAML\n"
    "  edit-config [-s KEY=VALUE]... [-p GUC=VALUE]... [--apply FILE|-] | --replace FILE|-\n"
    "                                change it (VALUE is YAML; an empty VALUE deletes KEY)\n"
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

static const char *const cluster_cmds[] = {"list",   "history",     "switchover",  "failover",
                                           "reinit", "restart",     "reload",      "pause",
                                           "resume", "show-config", "edit-config", NULL};

static int run_cmd(ctl_ctx *x, const char *cmd, int argc, char **argv)
{
    if (strcmp(cmd, "list") == 0)
        return ctl_cmd_list(x, argc, argv);
    if (strcmp(cmd, "history") == 0)
        return ctl_cmd_history(x, argc, argv);
    if (strcmp(cmd, "switchover") == 0)
        return ctl_cmd_switchover(x, argc, argv);
    if (strcmp(cmd, "failover") == 0)
        return ctl_cmd_failover(x, argc, argv);
    if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)
        return ctl_cmd_pause(x, strcmp(cmd, "pause") == 0, argc, argv);
    if (strcmp(cmd, "show-config") == 0)
        return ctl_cmd_show_config(x, argc, argv);
    if (strcmp(cmd, "edit-config") == 0)
        return ctl_cmd_edit_config(x, argc, argv);
    return ctl_cmd_member_post(x, cmd, argc, argv); /* reinit, restart, reload */
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
    int known = 0;
    for (const char *const *c = cluster_cmds; *c; c++)
        known |= strcmp(cmd, *c) == 0;
    if (!known) {
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
    ctl_ctx x = {0};
    snprintf(x.base, sizeof(x.base), "http://%s", cfg.rest_connect_address);
    cfg_basic_auth_header(&cfg.rest_auth, x.auth, sizeof(x.auth));
    agent_config_free(&cfg);
    x.cluster = ctl_get_json(&x, x.base, "/cluster");
    if (!json_is_object(x.cluster)) {
        json_decref(x.cluster);
        return 1;
    }
    int rc = run_cmd(&x, cmd, argc - i, argv + i);
    json_decref(x.cluster);
    return rc == 2 ? usage() : rc;
}
