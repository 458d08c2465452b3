/* `appliancectl provision` (ROLE=init, compose service pg-cluster-init): waits for a primary
 * behind the router's write port, then runs the provisioning SQL file once per cluster.
 * The reasoning about "once" is at the top of provision.c. */
#ifndef CTL_PROVISION_H
#define CTL_PROVISION_H

/* argv: the arguments after "provision". Returns the process exit status: 0 done (or
 * already done before), 1 failed (message on stderr), 2 usage or unreadable input. */
int provision_main(int argc, char **argv);

#endif
