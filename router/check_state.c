/* HAProxy-compatible rise/fall bookkeeping for one health check. */
#include "router/check_state.h"

#include <string.h>

void check_state_init(check_state *s, uint64_t now_ms)
{
    memset(s, 0, sizeof(*s));
    s->last_change_ms = now_ms;
    s->down_since_ms = now_ms;
}

static void go_down(check_state *s, uint64_t now_ms)
{
    s->up = 0;
    s->health = 0;
    s->chkdown++;
    s->last_change_ms = now_ms;
    s->down_since_ms = now_ms;
}

int check_state_apply(check_state *s, enum check_outcome o, int code, uint32_t duration_ms,
                      uint64_t now_ms, uint32_t rise, uint32_t fall, int status_is_final)
{
    if (rise < 1)
        rise = 1;
    if (fall < 1)
        fall = 1;
    s->checked = 1;
    s->last_outcome = o;
    s->last_code = code;
    s->last_duration_ms = duration_ms;
    s->last_check_ms = now_ms;
    uint32_t top = rise + fall - 1;
    if (s->health > top)
        s->health = top;
    if (o == CHECK_PASS) {
        if (s->up) {
            if (s->health < top)
                s->health++;
            return 0;
        }
        s->health++;
        if (s->health >= rise) {
            s->up = 1;
            s->health = top;
            /* The start-up period before the first rise is not downtime (as HAProxy). */
            if (s->chkdown)
                s->downtime_ms += now_ms - s->down_since_ms;
            s->last_change_ms = now_ms;
            return 1;
        }
        return 0;
    }
    s->chkfail++;
    if (!s->up) {
        s->health = 0;
        return 0;
    }
    if (o == CHECK_STATUS && status_is_final) {
        go_down(s, now_ms);
        return 1;
    }
    /* Up means health >= rise; fall failures in a row bring it to rise - 1. */
    if (s->health > 0)
        s->health--;
    if (s->health < rise) {
        go_down(s, now_ms);
        return 1;
    }
    return 0;
}

int check_state_force_down(check_state *s, uint64_t now_ms)
{
    if (!s->up)
        return 0;
    go_down(s, now_ms);
    return 1;
}

const char *check_state_status_name(const check_state *s)
{
    if (!s->checked)
        return "INI";
    switch (s->last_outcome) {
    case CHECK_PASS:
        return "L7OK";
    case CHECK_STATUS:
        return "L7STS";
    case CHECK_CONNECT:
        return "L4CON";
    case CHECK_TIMEOUT:
        return "L4TOUT";
    }
    return "UNK";
}

uint64_t check_state_downtime_ms(const check_state *s, uint64_t now_ms)
{
    return s->downtime_ms + (s->up || !s->chkdown ? 0 : now_ms - s->down_since_ms);
}
