/* One health check's verdict with HAProxy's rise/fall semantics and the figures its stats
 * page shows (check_status, check_code, chkfail, chkdown, lastchg, downtime). Pure. */
#ifndef APPLIANCE_ROUTER_CHECK_STATE_H
#define APPLIANCE_ROUTER_CHECK_STATE_H

#include <stdint.h>

enum check_outcome {
    CHECK_PASS,    /* HTTP 200 */
    CHECK_STATUS,  /* answered, but not 200 (L7STS) */
    CHECK_CONNECT, /* refused/reset/unreachable (L4CON) */
    CHECK_TIMEOUT, /* no answer in time (L4TOUT) */
};

typedef struct check_state {
    int up;          /* verdict */
    int checked;     /* at least one result arrived */
    uint32_t health; /* HAProxy: 0..rise+fall-1, up while >= rise */
    int last_code;   /* HTTP status of the last answer, 0 if none */
    enum check_outcome last_outcome;
    uint32_t last_duration_ms;
    uint64_t last_check_ms;  /* monotonic ms of the last result */
    uint64_t last_change_ms; /* monotonic ms of the last up/down flip (start counts) */
    uint64_t down_since_ms;  /* valid while !up */
    uint64_t downtime_ms;    /* accumulated, excluding the current down period */
    uint64_t chkfail, chkdown;
} check_state;

void check_state_init(check_state *s, uint64_t now_ms);

/* Applies one result. A non-200 answer takes the node down at once when status_is_final
 * (the /primary check: never write to a node that says it is not the primary); other
 * failures count against fall. rise: successes needed to come up (the caller passes 1 when
 * the DCS already names this node). Returns 1 when the verdict flipped. */
int check_state_apply(check_state *s, enum check_outcome o, int code, uint32_t duration_ms,
                      uint64_t now_ms, uint32_t rise, uint32_t fall, int status_is_final);

/* Forces the verdict down (e.g. the node vanished from config). Returns 1 if it flipped. */
int check_state_force_down(check_state *s, uint64_t now_ms);

/* HAProxy names: "L7OK", "L7STS", "L4CON", "L4TOUT", "INI" before any result. */
const char *check_state_status_name(const check_state *s);
/* Total downtime including the running down period. */
uint64_t check_state_downtime_ms(const check_state *s, uint64_t now_ms);

#endif
