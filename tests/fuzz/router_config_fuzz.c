/* Fuzzes the router's YAML configuration loader and validator: any input must give either
 * a config or an error message, never a crash, leak or overflow. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "router/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    router_config c;
    char err[ROUTER_ERR_MAX];
    router_config_defaults(&c);
    err[0] = '\0';
    if (router_config_load_yaml(&c, (const char *)data, size, err, sizeof(err)) == 0)
        (void)router_config_validate(&c, err, sizeof(err));
    /* A message, when there is one, is a terminated string within the buffer. */
    if (memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap();
    return 0;
}
