/* Restart spacing policy: exponential backoff from min to a cap, forgotten after the child
 * stayed up for a healthy uptime. Pure functions, so the policy is unit-tested apart from
 * the clock and measured end to end by tests/integration/init. */
#ifndef APPLIANCE_BACKOFF_H
#define APPLIANCE_BACKOFF_H

#include <stdint.h>

struct backoff_policy {
    uint64_t min_ms;     /* first restart delay (1 s) */
    uint64_t max_ms;     /* cap (30 s) */
    uint64_t healthy_ms; /* an uptime at least this long resets the failure count */
};

#define BACKOFF_DEFAULT_MIN_MS     1000u
#define BACKOFF_DEFAULT_MAX_MS     30000u
#define BACKOFF_DEFAULT_HEALTHY_MS 60000u

/* Delay before restart number (restarts + 1), i.e. restarts = consecutive restarts done
 * so far without a healthy run in between: min, 2*min, 4*min ... capped at max. */
uint64_t backoff_delay_ms(const struct backoff_policy *p, unsigned restarts);

/* The consecutive-restart count to use after a run of uptime_ms that followed `restarts`
 * consecutive restarts: 0 when the run was healthy, otherwise unchanged. */
unsigned backoff_after_run(const struct backoff_policy *p, unsigned restarts, uint64_t uptime_ms);

#endif
