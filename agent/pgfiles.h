/* Files the agent owns in and beside the data directory: postgresql.conf (rewritten on
 * every start; initdb's original is kept as postgresql.base.conf and included first),
 * pg_hba.conf, the pgpass file, standby.signal, and the "was primary" marker beside the
 * data dir (outside it, so pg_basebackup never copies it). */
#ifndef AGENT_PGFILES_H
#define AGENT_PGFILES_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "agent/config.h"

typedef struct pg_upstream {
    const char *host; /* NULL: no upstream (read-only standby) */
    int port;
    const char *slot; /* NULL: no slot */
} pg_upstream;

/* Writes postgresql.conf; replica != 0 also writes standby.signal (else removes it).
 * Returns 0 or -1 with err. */
int pgfiles_write_conf(const agent_config *cfg, const json_t *dyn_params, int replica,
                       const pg_upstream *up, uid_t uid, gid_t gid, char *err, size_t errsz);
int pgfiles_write_hba(const agent_config *cfg, uid_t uid, gid_t gid, char *err, size_t errsz);
int pgfiles_write_pgpass(const agent_config *cfg, uid_t uid, gid_t gid, char *err, size_t errsz);
/* Patroni's slot name for a member: lower case, [-.] -> _, others -> u%04x, max 63. */
void pgfiles_slot_name(const char *member, char *out, size_t outsz);
/* SQL string literal with quotes doubled, appended to out. */
void pgfiles_quote(const char *s, char *out, size_t outsz);
int pgfiles_data_empty(const char *data_dir);
/* marker: data last ran as a primary since its last clone/rewind */
int pgfiles_marker_get(const agent_config *cfg);
void pgfiles_marker_set(const agent_config *cfg, int on);

#endif
