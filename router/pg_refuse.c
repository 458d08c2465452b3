/* FATAL ErrorResponse for clients the router turns away. */
#include "router/pg_refuse.h"

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

size_t pg_error_response(char *out, size_t outsz, const char *sqlstate, const char *message)
{
    char msg[400];
    size_t ml = strlen(message);
    if (ml >= sizeof(msg))
        ml = sizeof(msg) - 1;
    memcpy(msg, message, ml);
    msg[ml] = '\0';
    /* 'E', int32 length (self included), fields "S FATAL", "V FATAL", "C code", "M text",
     * terminator. */
    size_t body = (1 + 6) * 2 + (1 + 6) + (1 + ml + 1) + 1;
    size_t total = 1 + 4 + body;
    if (strlen(sqlstate) != 5 || total > outsz)
        return 0;
    size_t o = 0;
    out[o++] = 'E';
    uint32_t len = (uint32_t)(4 + body);
    out[o++] = (char)(len >> 24);
    out[o++] = (char)(len >> 16);
    out[o++] = (char)(len >> 8);
    out[o++] = (char)len;
    memcpy(out + o, "SFATAL\0VFATAL\0C", 15);
    o += 15;
    memcpy(out + o, sqlstate, 5);
    o += 5;
    out[o++] = '\0';
    out[o++] = 'M';
    memcpy(out + o, msg, ml + 1);
    o += ml + 1;
    out[o++] = '\0';
    return o;
}

void pg_refuse(int fd, const char *sqlstate, const char *message)
{
    char scratch[4096];
    for (int i = 0; i < 4; i++)
        if (recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0)
            break;
    size_t n = pg_error_response(scratch, sizeof(scratch), sqlstate, message);
    if (n && send(fd, scratch, n, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)n)
        shutdown(fd, SHUT_WR);
}
