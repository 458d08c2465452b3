/* init role (appliancectl provision, one-shot): talks HTTP to the DCS and libpq to
 * postgres; the base list covers it.
 * PROVISIONAL until appliancectl exists: derive under its workload then. */
#include "seccomp_allow.h"

const char *const seccomp_allow_init[] = {
    NULL,
};
