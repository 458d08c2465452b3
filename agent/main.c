/* appliance-agent: Patroni's job in C. Usage: appliance-agent CONFIG.yml, or with no argument
 * when SPILO_CONFIGURATION / PATRONI_CONFIGURATION hold the configuration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log_stamp.h"
#include "log.h"

int agent_main(const char *config_path);

int main(int argc, char **argv)
{
    char err[160];
    if (log_stamp_setup(err, sizeof(err)) != 0) {
        fprintf(stderr, "appliance-agent: %s\n", err);
        return 2;
    }
    const char *lvl = getenv("LOG_LEVEL");
    if (lvl && log_level_parse(lvl) >= 0)
        log_set_level((enum log_level)log_level_parse(lvl));
    /* Like `patroni` with no argument: the whole configuration from the environment */
    if (argc == 1 && (getenv("SPILO_CONFIGURATION") || getenv("PATRONI_CONFIGURATION")))
        return agent_main(NULL);
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: %s CONFIG.yml   (Patroni YAML keys; PATRONI_* env overrides)\n"
                "       %s              (with SPILO_CONFIGURATION or PATRONI_CONFIGURATION)\n",
                argv[0], argv[0]);
        return 2;
    }
    return agent_main(argv[1]);
}
