/* appliancectl's dynamic-configuration commands: pause, resume, show-config, edit-config.
 * They go through the agents' REST API (PATCH/PUT/GET /config: validated by the agent and
 * written with a compare-and-swap on the config key), as patronictl pause/resume do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/yaml_json.h"
#include "ctl/ctl_cluster.h"
#include "ctl/read_file.h"
#include "ctl/yaml_print.h"

#define PAUSE_WAIT_MS 30000
#define MAX_FILE      (1u << 20)

static int member_paused(const ctl_ctx *x, const char *base)
{
    json_t *p = ctl_get_json(x, base, "/patroni");
    int r = p ? json_is_true(json_object_get(p, "pause")) : -1;
    json_decref(p);
    return r;
}

/* --wait: until every member's GET /patroni shows the new state (or 30 s) */
static int wait_members(const ctl_ctx *x, int pause)
{
    struct timespec t0, now, nap = {0, 200 * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int all = 1;
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(x->cluster, "members"), i, m)
        {
            char base[400];
            const char *n = json_string_value(json_object_get(m, "name"));
            if (n && ctl_member_base(x, n, NULL, base, sizeof(base), NULL, 0) == 0 &&
                member_paused(x, base) != pause)
                all = 0;
        }
        if (all)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >
            PAUSE_WAIT_MS) {
            fprintf(stderr, "appliancectl: not every member reports the new state after %d s\n",
                    PAUSE_WAIT_MS / 1000);
            return 1;
        }
        nanosleep(&nap, NULL);
    }
}

int ctl_cmd_pause(ctl_ctx *x, int pause, int argc, char **argv)
{
    int wait = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--wait") != 0)
            return 2;
        wait = 1;
    }
    if (json_is_true(json_object_get(x->cluster, "pause")) == pause) {
        fprintf(stderr, "appliancectl: the cluster is %s\n",
                pause ? "already paused" : "not paused");
        return 1;
    }
    char target[400];
    ctl_config_target(x, target, sizeof(target));
    char *answer = NULL;
    int rc =
        ctl_send(x, "PATCH", target, "/config", pause ? "{\"pause\":true}" : "{\"pause\":null}",
                 CTL_TIMEOUT_MS, 200, NULL, &answer);
    if (rc != 0 && answer)
        fprintf(stderr, "appliancectl: %s\n", answer);
    free(answer);
    if (rc != 0)
        return 1;
    if (wait && wait_members(x, pause) != 0)
        return 1;
    printf("Success: cluster management is %s\n", pause ? "paused" : "resumed");
    return 0;
}

static int print_yaml(const json_t *j)
{
    char *y = ctl_json_to_yaml(j);
    if (!y) {
        fprintf(stderr, "appliancectl: cannot print the configuration as YAML\n");
        return 1;
    }
    fputs(y, stdout);
    free(y);
    return 0;
}

int ctl_cmd_show_config(ctl_ctx *x, int argc, char **argv)
{
    (void)argv;
    if (argc != 0)
        return 2;
    json_t *c = ctl_get_json(x, x->base, "/config");
    if (!json_is_object(c)) {
        json_decref(c);
        return 1;
    }
    int rc = print_yaml(c);
    json_decref(c);
    return rc;
}

static json_t *load_yaml_file(const char *path)
{
    size_t len;
    char *t = ctl_read_file("appliancectl", path, MAX_FILE, &len);
    if (!t)
        return NULL;
    char err[300] = "";
    json_t *j = yaml_to_json(t, len, err, sizeof(err));
    free(t);
    if (!json_is_object(j)) {
        fprintf(stderr, "appliancectl: %s: %s\n", path,
                j ? "the configuration must be a mapping" : err);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* patch[parts...] = VALUE read as YAML ("" or "null": delete the key, as patronictl) */
static int set_parts(json_t *patch, char **parts, int np, const char *shown, const char *value)
{
    char err[300] = "";
    json_t *v = *value ? yaml_to_json(value, strlen(value), err, sizeof(err)) : json_null();
    if (!v) {
        fprintf(stderr, "appliancectl: value of %s: %s\n", shown, err);
        return -1;
    }
    json_t *cur = patch;
    for (int i = 0; i < np - 1; i++) {
        json_t *next = json_object_get(cur, parts[i]);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(cur, parts[i], next);
        }
        cur = next;
    }
    json_object_set_new(cur, parts[np - 1], v);
    return 0;
}

/* -s KEY=VALUE: KEY is a dotted path (postgresql.use_slots); -p GUC=VALUE is
 * postgresql.parameters.GUC with the GUC name kept whole (names like
 * pg_stat_statements.track contain dots) */
static int set_option(json_t *patch, int is_pg, const char *kv)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq || eq == kv) {
        fprintf(stderr, "appliancectl: %s needs KEY=VALUE, got '%s'\n", is_pg ? "-p" : "-s",
                kv ? kv : "");
        return -1;
    }
    char key[256], *parts[16];
    int np = 0;
    snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
    if (is_pg) {
        parts[np++] = "postgresql";
        parts[np++] = "parameters";
        parts[np++] = key;
    } else {
        for (char *p = key;; p++) {
            char *dot = strchr(p, '.');
            if (np == 16 || (dot ? dot == p : !*p)) {
                fprintf(stderr, "appliancectl: bad key '%.*s'\n", (int)(eq - kv), kv);
                return -1;
            }
            parts[np++] = p;
            if (!dot)
                break;
            *dot = '\0';
            p = dot;
        }
    }
    char shown[300];
    snprintf(shown, sizeof(shown), "%s%.*s", is_pg ? "postgresql.parameters." : "", (int)(eq - kv),
             kv);
    return set_parts(patch, parts, np, shown, eq + 1);
}

/* edit-config [-s|--set KEY=VALUE]... [-p|--pg GUC=VALUE]... [--apply FILE|-] [-q] [--force]
 * edit-config --replace FILE|- [-q] [--force]
 * No editor and no prompt: the change is applied at once (--force is accepted for
 * patronictl habits). VALUE is read as YAML ("10" an integer, "on" a boolean, "" or "null"
 * deletes the key). */
int ctl_cmd_edit_config(ctl_ctx *x, int argc, char **argv)
{
    json_t *patch = json_object(), *replace = NULL;
    int quiet = 0, changes = 0, rc = 2;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int is_set = strcmp(a, "-s") == 0 || strcmp(a, "--set") == 0;
        int is_pg = strcmp(a, "-p") == 0 || strcmp(a, "--pg") == 0;
        if (is_set || is_pg) {
            if (set_option(patch, is_pg, i + 1 < argc ? argv[++i] : NULL) != 0)
                goto out;
            changes++;
        } else if (strcmp(a, "--apply") == 0 && i + 1 < argc) {
            json_t *f = load_yaml_file(argv[++i]);
            if (!f)
                goto out;
            json_object_update_recursive(patch, f);
            json_decref(f);
            changes++;
        } else if (strcmp(a, "--replace") == 0 && i + 1 < argc && !replace) {
            if (!(replace = load_yaml_file(argv[++i])))
                goto out;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--force") != 0) {
            fprintf(stderr, "appliancectl: edit-config: unknown option '%s'\n", a);
            goto out;
        }
    }
    if ((replace && changes) || (!replace && !changes)) {
        fprintf(stderr, "appliancectl: edit-config needs -s/-p/--apply changes, or --replace "
                        "alone (interactive editing is not supported)\n");
        goto out;
    }
    char target[400];
    ctl_config_target(x, target, sizeof(target));
    char *body = json_dumps(replace ? replace : patch, JSON_COMPACT), *answer = NULL;
    int status = 0;
    rc = body ? ctl_send(x, replace ? "PUT" : "PATCH", target, "/config", body, CTL_TIMEOUT_MS, 200,
                         &status, &answer)
              : 1;
    free(body);
    if (status == 409)
        fprintf(stderr, "appliancectl: Config modification aborted due to concurrent changes\n");
    else if (rc != 0 && answer)
        fprintf(stderr, "appliancectl: %s\n", answer); /* the agent's reason, e.g. a bad value */
    if (rc == 0 && !quiet) {
        /* the agent answers with the configuration it wrote */
        json_t *now = answer ? json_loads(answer, 0, NULL) : NULL;
        rc = json_is_object(now) ? print_yaml(now) : 1;
        json_decref(now);
    }
    free(answer);
out:
    json_decref(patch);
    json_decref(replace);
    return rc;
}
