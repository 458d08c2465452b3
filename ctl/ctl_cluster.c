/* REST plumbing shared by appliancectl's cluster commands (see ctl_cluster.h). */
#include "ctl/ctl_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/rest_call.h"

json_t *ctl_get_json(const ctl_ctx *x, const char *base, const char *path)
{
    char url[400];
    snprintf(url, sizeof(url), "%s%s", base, path);
    ctl_response r;
    ctl_call("GET", url, NULL, x->auth, CTL_TIMEOUT_MS, &r);
    json_t *j = r.status == 200 ? json_loads(r.body, JSON_DECODE_ANY, NULL) : NULL;
    if (!j && r.status)
        fprintf(stderr, "appliancectl: GET %s: HTTP status %d\n", url, r.status);
    else if (!j)
        fprintf(stderr, "appliancectl: GET %s failed: %s\n", url, r.body ? r.body : "?");
    free(r.body);
    return j;
}

int ctl_member_base(const ctl_ctx *x, const char *name, const char *want_role, char *out,
                    size_t outsz, char *found_name, size_t fnsz)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(x->cluster, "members"), i, m)
    {
        const char *n = json_string_value(json_object_get(m, "name"));
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *api = json_string_value(json_object_get(m, "api_url"));
        if (!n || !api || (name && strcmp(n, name) != 0) ||
            (want_role && (!role || strcmp(role, want_role) != 0)))
            continue;
        snprintf(out, outsz, "%s", api); /* "http://host:8008/patroni" -> "http://host:8008" */
        char *p = strstr(out, "/patroni");
        if (p)
            *p = '\0';
        if (found_name)
            snprintf(found_name, fnsz, "%s", n);
        return 0;
    }
    return -1;
}

void ctl_config_target(const ctl_ctx *x, char *out, size_t outsz)
{
    if (ctl_member_base(x, NULL, "leader", out, outsz, NULL, 0) != 0)
        snprintf(out, outsz, "%s", x->base);
}

int ctl_send(const ctl_ctx *x, const char *method, const char *base, const char *path,
             const char *body, unsigned timeout_ms, int ok_status, int *status, char **answer)
{
    char url[400];
    snprintf(url, sizeof(url), "%s%s", base, path);
    ctl_response r;
    ctl_call(method, url, body, x->auth, timeout_ms, &r);
    if (status)
        *status = r.status;
    int rc = r.status == ok_status || (ok_status == 200 && r.status == 202) ? 0 : 1;
    if (!answer)
        printf("%s\n", r.body ? r.body : "");
    if (rc)
        fprintf(stderr, "appliancectl: %s %s: %s %d\n", method, url,
                r.status ? "HTTP status" : "failed", r.status);
    if (answer)
        *answer = r.body;
    else
        free(r.body);
    return rc;
}
