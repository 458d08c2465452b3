/* init role (appliancectl provision, one-shot): talks HTTP to the DCS and libpq to
 * postgres; the base list covers it.
 * Checked under its real workload (libpq through the router, the SQL file, the advisory
 * lock): zero denials in tests/integration/agent/local_cluster.t (make up's provisioning)
 * and in compose's pg-cluster-init (tests/e2e/compose_cluster.t). */
#include "seccomp_allow.h"

const char *const seccomp_allow_init[] = {
    NULL,
};
