/* Timestamps on the agent's own log lines unless appliance-init stamps them (see
 * log_stamp.h for the decision). */
#include "agent/log_stamp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

int log_stamp_decide(const char *env_value, const char *parent_comm)
{
    if (env_value && env_value[0]) {
        if (!strcasecmp(env_value, "1") || !strcasecmp(env_value, "true") ||
            !strcasecmp(env_value, "on") || !strcasecmp(env_value, "yes"))
            return 1;
        if (!strcasecmp(env_value, "0") || !strcasecmp(env_value, "false") ||
            !strcasecmp(env_value, "off") || !strcasecmp(env_value, "no"))
            return 0;
        return -1;
    }
    return !(parent_comm && strcmp(parent_comm, "appliance-init") == 0);
}

int log_stamp_setup(char *err, unsigned errsz)
{
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%ld/comm", (long)getppid());
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = '\0';
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
    }
    const char *env = getenv("LOG_TIMESTAMPS");
    int d = log_stamp_decide(env, f ? comm : NULL);
    log_set_timestamps(d != 0);
    if (d < 0) {
        snprintf(err, errsz, "LOG_TIMESTAMPS: '%.64s' is not 1/0, true/false, on/off or yes/no",
                 env);
        return -1;
    }
    return 0;
}
