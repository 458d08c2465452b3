/* Refusing a PostgreSQL client with a message it can show, instead of a bare close that
 * libpq reports as "server closed the connection unexpectedly". */
#ifndef APPLIANCE_ROUTER_PG_REFUSE_H
#define APPLIANCE_ROUTER_PG_REFUSE_H

#include <stddef.h>

/* Encodes a FATAL ErrorResponse ('E') into out; returns its length, 0 if it does not fit.
 * sqlstate: 5 characters. The message is cut to keep the packet under 512 bytes. */
size_t pg_error_response(char *out, size_t outsz, const char *sqlstate, const char *message);

/* Best effort on a non-blocking socket the router has not answered yet: discards what the
 * client sent (its startup or SSLRequest packet: unread input would turn the close into a
 * reset that can destroy the message), sends the ErrorResponse, shuts the write side.
 * libpq accepts an ErrorResponse in place of the SSLRequest answer and reports the text.
 * The caller closes fd. */
void pg_refuse(int fd, const char *sqlstate, const char *message);

#endif
