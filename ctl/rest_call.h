/* appliancectl's one-shot HTTP calls to the agents' REST API: a private event loop runs
 * until the answer (or the timeout) arrives. A CLI may wait; the daemons never do this. */
#ifndef CTL_REST_CALL_H
#define CTL_REST_CALL_H

#include <stddef.h>

typedef struct ctl_response {
    int status; /* HTTP status, 0 on transport failure */
    char *body; /* NUL-terminated, malloc'ed (free it); error text on transport failure */
} ctl_response;

/* method "GET"/"POST"; body NULL or JSON; auth NULL or an "Authorization: ..." header line.
 * Returns 0 when an HTTP answer came back. */
int ctl_call(const char *method, const char *url, const char *body, const char *auth,
             unsigned timeout_ms, ctl_response *out);

#endif
