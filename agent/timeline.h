/* Timeline history and the "did my WAL go past the leader's fork?" decision, as pure logic
 * (no I/O). After an asynchronous failover a replica may have received or replayed WAL of
 * the old timeline beyond the point where the promoted member forked its new timeline; such
 * a replica can never follow the new leader and must be rewound (or re-cloned). The agent
 * fetches the leader's history with the replication command TIMELINE_HISTORY (the content
 * of the leader's pg_wal/<TL>.history: lines "parent_tli<TAB>switchpoint<TAB>reason") and
 * asks tl_diverged() with its own timeline and position (agent/diverged.c). */
#ifndef AGENT_TIMELINE_H
#define AGENT_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#define TL_HISTORY_MAX 4096 /* timelines in one history we accept (each line ~40 bytes) */

typedef struct tl_switch {
    int parent_tl;       /* the timeline that ended */
    int64_t switchpoint; /* LSN (bytes since 0/0) where the next timeline forked off it */
} tl_switch;

/* Parses a history file's text (len bytes, need not be NUL-terminated). Empty lines and
 * lines starting with '#' are skipped, as PostgreSQL does. Every other line must be
 * "<timeline> <X/X switchpoint> [reason]" (tab or space separated) with timelines strictly
 * increasing. 0 and *n entries in out, or -1 with err naming the line and what is wrong
 * (nothing in out is then meaningful). */
int tl_history_parse(const char *text, size_t len, tl_switch *out, size_t max, size_t *n, char *err,
                     size_t errsz);

/* Where my data stands. in_recovery: a standby's position (replayed or received WAL, or
 * pg_control's minimum recovery point when stopped); else a cleanly stopped primary's last
 * checkpoint. */
typedef struct tl_position {
    int timeline; /* > 0 */
    int64_t lsn;  /* >= 0 */
    int in_recovery;
} tl_position;

enum tl_verdict {
    TL_INVALID = -1,     /* bad arguments (why says which) */
    TL_NOT_DIVERGED = 0, /* my WAL is on the leader's history: it follows by itself */
    TL_DIVERGED = 1,     /* my WAL went past the fork (or my timeline is not in its history) */
};

/* Patroni's _check_timeline_and_lsn, as a function: the leader runs timeline leader_tl with
 * history h[0..n) (n may be 0 when leader_tl <= my timeline: no history is needed then).
 * - my timeline newer than the leader's: diverged (pg_rewind decides if it can go back);
 * - the same timeline: not diverged;
 * - older: find the switch that ended my timeline. A standby diverged when its position is
 *   past the switchpoint (position == switchpoint is exactly the fork: fine); a stopped
 *   primary's checkpoint at or past it diverged (its shutdown checkpoint record starts
 *   before the switchpoint when the new leader forked right after it);
 * - my timeline is not in the history (the history moved past it without it): diverged.
 * *switchpoint gets the switch LSN used (-1 when none). why: one sentence with the
 * timelines and LSNs, for the log and the REST status. */
enum tl_verdict tl_diverged(const tl_switch *h, size_t n, int leader_tl, const tl_position *me,
                            int64_t *switchpoint, char *why, size_t whysz);

/* "16/B374D848" formatting of an LSN (out at least 20 bytes). */
void tl_format_lsn(int64_t lsn, char *out, size_t outsz);

#endif
