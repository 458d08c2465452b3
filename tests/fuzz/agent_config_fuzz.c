/* Fuzz the agent's configuration loader: arbitrary YAML (and, from the first input byte,
 * arbitrary PATRONI_* environment overrides) must give either a config or one error
 * message, never a crash, leak or sanitizer report. The bootstrap.dcs section goes through
 * the dynamic-config parser as well (the DCS `config` key takes the same path). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* byte 0 chooses whether the tail after a NUL is used as an env override value */
    char env1[300], env2[300];
    char *envp[4] = {NULL, NULL, NULL, NULL};
    size_t yaml_len = size;
    const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
    if (nul && size > 1) {
        yaml_len = (size_t)(nul - data);
        size_t rest = size - yaml_len - 1;
        if (rest > 200)
            rest = 200;
        snprintf(env1, sizeof(env1), "%s=%.*s",
                 (data[0] & 1) ? "PATRONI_ETCD3_HOSTS" : "PATRONI_NAME", (int)rest,
                 (const char *)nul + 1);
        snprintf(env2, sizeof(env2), "PATRONI_SUPERUSER_PASSWORD=%.*s", (int)rest,
                 (const char *)nul + 1);
        envp[0] = env1;
        envp[1] = (data[0] & 2) ? env2 : NULL;
    }
    agent_config cfg;
    char err[600];
    if (agent_config_load_text(&cfg, (const char *)data, yaml_len, envp, err, sizeof(err)) == 0) {
        agent_dyn_config dyn;
        if (agent_dyn_config_parse(&dyn, cfg.bootstrap_dcs, err, sizeof(err)) == 0)
            agent_dyn_config_free(&dyn);
        agent_config_free(&cfg);
    }
    return 0;
}
