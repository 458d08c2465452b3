/* Exponential restart backoff (see backoff.h). */
#include "backoff.h"

uint64_t backoff_delay_ms(const struct backoff_policy *p, unsigned restarts)
{
    uint64_t d = p->min_ms;
    /* Doubling stops at the cap, so a huge count cannot overflow. */
    for (unsigned i = 0; i < restarts && d < p->max_ms; i++)
        d *= 2;
    return d > p->max_ms ? p->max_ms : d;
}

unsigned backoff_after_run(const struct backoff_policy *p, unsigned restarts, uint64_t uptime_ms)
{
    return uptime_ms >= p->healthy_ms ? 0 : restarts;
}
