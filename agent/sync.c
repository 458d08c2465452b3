/* Synchronous mode (Patroni's synchronous_mode / synchronous_mode_strict): the leader keeps
 * one streaming replica synchronous (synchronous_standby_names) and names it in the DCS
 * `sync` key, {"leader": L, "sync_standby": S}; after a leader loss only S (or L itself)
 * may take over (agent/ha.c race), so no commit the old primary acknowledged is lost.
 *
 * The invariant, as Patroni keeps it: whenever the sync key names S, every commit the
 * primary acknowledged is on S. Hence the order of the steps, one per HA cycle:
 * - a standby leaves the key BEFORE it leaves synchronous_standby_names (else the primary
 *   could acknowledge commits S lacks while the key still names S);
 * - a standby enters synchronous_standby_names first, and the key only once
 *   pg_stat_replication reports it 'sync' (from then on commits wait for it).
 * Candidates: members streaming from this primary (pg_stat_replication, application_name
 * = member name), without the nosync tag; the current one is kept while it streams,
 * otherwise the first by name. Without a candidate the primary runs asynchronously, or
 * with synchronous_standby_names = '*' (commits wait for any standby) in strict mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "log.h"

static void on_sync_written(const etcd_result *r, void *arg)
{
    (void)arg;
    if (!r->ok)
        log_warn("DCS write of the sync key failed: %s", r->error ? r->error : "?");
}

static void write_sync(agent *a, const char *standby)
{
    char k[512];
    snprintf(k, sizeof(k), "%ssync", a->prefix);
    json_t *j = json_pack("{s:s}", "leader", a->cfg.name);
    json_object_set_new(j, "sync_standby", standby ? json_string(standby) : json_null());
    char *v = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!v)
        return;
    log_info("sync key: leader %s, sync_standby %s", a->cfg.name, standby ? standby : "none");
    etcd_put(a->etcd, k, strlen(k), v, strlen(v), 0, 2000, on_sync_written, a);
    /* the next read of the cluster shows it; until then act on what was written */
    a->sync_present = 1;
    snprintf(a->sync_leader, sizeof(a->sync_leader), "%.*s", (int)sizeof(a->sync_leader) - 1,
             a->cfg.name);
    snprintf(a->sync_standby, sizeof(a->sync_standby), "%s", standby ? standby : "");
    free(v);
}

static int nosync(const agent *a, const char *name)
{
    json_t *tags = json_object_get(json_object_get(a->members, name), "tags");
    return json_is_true(json_object_get(tags, "nosync"));
}

/* pg_stat_replication row of `name` with state streaming; its sync_state into *sync. */
static int streaming(const agent *a, const char *name, int *sync)
{
    size_t i;
    json_t *r;
    json_array_foreach(a->st.replication, i, r)
    {
        const char *app = json_string_value(json_object_get(r, "application_name"));
        const char *st = json_string_value(json_object_get(r, "state"));
        if (app && st && strcmp(app, name) == 0 && strcmp(st, "streaming") == 0) {
            const char *ss = json_string_value(json_object_get(r, "sync_state"));
            if (sync)
                *sync = ss && strcmp(ss, "sync") == 0;
            return 1;
        }
    }
    return 0;
}

static const char *pick(const agent *a, const char *current)
{
    if (current[0] && json_object_get(a->members, current) && !nosync(a, current) &&
        streaming(a, current, NULL))
        return current;
    const char *best = NULL, *name;
    json_t *m;
    json_object_foreach(a->members, name, m)
    {
        (void)m;
        if (strcmp(name, a->cfg.name) == 0 || nosync(a, name) || !streaming(a, name, NULL))
            continue;
        if (!best || strcmp(name, best) < 0)
            best = name;
    }
    return best;
}

void sync_leader_step(agent *a)
{
    if (!a->dyn.synchronous_mode) {
        if (a->ssn[0]) {
            a->ssn[0] = '\0';
            log_info("synchronous mode off: synchronous_standby_names cleared");
            agent_pg_reload(a);
        }
        if (a->sync_present) {
            char k[512];
            snprintf(k, sizeof(k), "%ssync", a->prefix);
            etcd_delete(a->etcd, k, strlen(k), NULL, 0, 2000, on_sync_written, a);
            a->sync_present = 0;
        }
        return;
    }
    int mine = a->sync_present && strcmp(a->sync_leader, a->cfg.name) == 0;
    const char *named = mine ? a->sync_standby : "";
    const char *want = pick(a, named);
    char named_ssn[sizeof(a->ssn)];
    snprintf(named_ssn, sizeof(named_ssn), "\"%s\"", named);
    if (!mine ||
        (named[0] && (!want || strcmp(named, want) != 0 || strcmp(a->ssn, named_ssn) != 0))) {
        /* claim the key for this leader, or take a standby out of it first (also one this
         * postgres does not wait for, e.g. after the agent restarted) */
        write_sync(a, NULL);
        return;
    }
    char ssn[sizeof(a->ssn)];
    if (want)
        snprintf(ssn, sizeof(ssn), "\"%s\"", want);
    else
        snprintf(ssn, sizeof(ssn), "%s", a->dyn.synchronous_mode_strict ? "*" : "");
    if (strcmp(ssn, a->ssn) != 0) {
        snprintf(a->ssn, sizeof(a->ssn), "%s", ssn);
        log_info("synchronous_standby_names = '%s'", ssn);
        agent_pg_reload(a);
        return;
    }
    int sync = 0;
    if (want && !named[0] && streaming(a, want, &sync) && sync)
        write_sync(a, want);
}

json_t *sync_conf_params(const agent *a, int replica)
{
    json_t *p = a->dyn.parameters ? json_deep_copy(a->dyn.parameters) : json_object();
    if (!replica && a->dyn.synchronous_mode && a->ssn[0])
        json_object_set_new(p, "synchronous_standby_names", json_string(a->ssn));
    return p;
}

int sync_is_standby(const agent *a)
{
    return a->dyn.synchronous_mode && a->sync_present && a->sync_standby[0] &&
           strcmp(a->sync_standby, a->cfg.name) == 0;
}
