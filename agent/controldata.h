/* pg_controldata output, parsed (pure, no I/O). The agent runs pg_controldata as an async
 * child at startup (system identifier and "did this data dir last run as a primary?" even
 * when postgres is not running) and after the leader's shutdown (the shutdown checkpoint
 * location becomes status.optime before the leader key is released, as Patroni does). */
#ifndef AGENT_CONTROLDATA_H
#define AGENT_CONTROLDATA_H

#include <stdint.h>

typedef struct pg_controldata {
    char sysid[32];         /* "Database system identifier" */
    char state[64];         /* "Database cluster state", e.g. "shut down in recovery" */
    int64_t checkpoint_lsn; /* "Latest checkpoint location", bytes since 0/0 */
    int timeline;           /* "Latest checkpoint's TimeLineID" */
    /* "Minimum recovery ending location" and "Min recovery ending loc's timeline": how far a
     * standby had replayed when it stopped (0/0 and 0 on a primary); -1 / 0 when absent */
    int64_t min_recovery_lsn;
    int min_recovery_timeline;
} pg_controldata;

/* Returns 0 when the identifier, state, checkpoint location and timeline were all found
 * and well-formed, else -1 (out is then partially filled). */
int controldata_parse(const char *text, pg_controldata *out);
/* The data dir last ran as a primary ("in production", or "shut down" which only a primary
 * reaches; a standby's clean stop is "shut down in recovery"). */
int controldata_was_primary(const pg_controldata *c);
/* "16/B374D848" -> bytes since 0/0; -1 when malformed. */
int64_t controldata_lsn(const char *s);

#endif
