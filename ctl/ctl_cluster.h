/* What every cluster command of appliancectl needs: the local agent's REST base URL, the
 * credentials, the cluster as GET /cluster describes it, and one-shot REST calls. */
#ifndef CTL_CLUSTER_H
#define CTL_CLUSTER_H

#include <jansson.h>
#include <stddef.h>

#define CTL_TIMEOUT_MS 5000

typedef struct ctl_ctx {
    char base[300];  /* "http://host:port" of the local agent */
    char auth[600];  /* "Authorization: Basic ..." or "" */
    json_t *cluster; /* GET /cluster of the local agent */
} ctl_ctx;

/* GET base+path; returns the parsed JSON (new reference) or NULL with a message on stderr. */
json_t *ctl_get_json(const ctl_ctx *x, const char *base, const char *path);
/* The REST base of member `name` (any member when NULL) with role `want_role` (any when
 * NULL); its name into found_name. 0 found, -1 not. */
int ctl_member_base(const ctl_ctx *x, const char *name, const char *want_role, char *out,
                    size_t outsz, char *found_name, size_t fnsz);
/* The leader's REST base, else the local agent's (for calls any member can take). */
void ctl_config_target(const ctl_ctx *x, char *out, size_t outsz);
/* METHOD base+path with a JSON body; 0 when the status is ok_status (or 202 for 200),
 * else 1 with the status on stderr. The answer's text is printed, or handed over in
 * *answer (malloc'ed) when answer is not NULL. *status (if not NULL) gets the status. */
int ctl_send(const ctl_ctx *x, const char *method, const char *base, const char *path,
             const char *body, unsigned timeout_ms, int ok_status, int *status, char **answer);

int ctl_cmd_list(ctl_ctx *x, int argc, char **argv);
int ctl_cmd_history(ctl_ctx *x, int argc, char **argv);
int ctl_cmd_switchover(ctl_ctx *x, int argc, char **argv);
int ctl_cmd_failover(ctl_ctx *x, int argc, char **argv);
int ctl_cmd_member_post(ctl_ctx *x, const char *cmd, int argc, char **argv);
int ctl_cmd_pause(ctl_ctx *x, int pause, int argc, char **argv);
int ctl_cmd_show_config(ctl_ctx *x, int argc, char **argv);
int ctl_cmd_edit_config(ctl_ctx *x, int argc, char **argv);

#endif
