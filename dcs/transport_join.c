/* The joining side of the peer port's join query (transport.h: transport_join_query): a
 * short blocking exchange before the member's event loop starts. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dcs/transport.h"

static int dial(const char *host, const char *port, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "%s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)) {
        snprintf(err, errlen, "%s:%s: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (poll(&pf, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
        soerr) {
        snprintf(err, errlen, "%s:%s: %s", host, port, soerr ? strerror(soerr) : "timed out");
        close(fd);
        return -1;
    }
    return fd;
}

static int parse_answer(char *line, transport_join_info *out, char *err, size_t errlen)
{
    char *save = NULL, *tok = strtok_r(line, " ", &save);
    unsigned long long v[3];
    if (!tok || strcmp(tok, "PGADCSID") != 0)
        goto bad;
    for (int i = 0; i < 3; i++) {
        tok = strtok_r(NULL, " ", &save);
        char *end;
        if (!tok)
            goto bad;
        v[i] = strtoull(tok, &end, 16);
        if (*end || !v[i])
            goto bad;
    }
    out->cluster_id = v[0];
    out->self_id = v[1];
    out->answered_by = v[2];
    out->n = 0;
    while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
        char *eq = strchr(tok, '='), *colon = strrchr(tok, ':'), *end;
        if (!eq || !colon || colon < eq || out->n == TRANSPORT_MAX_PEERS ||
            (size_t)(colon - eq - 1) >= sizeof(out->host[0]) || strlen(colon + 1) >= 8)
            goto bad;
        *eq = 0;
        *colon = 0;
        out->ids[out->n] = strtoull(tok, &end, 16);
        if (*end || !out->ids[out->n])
            goto bad;
        snprintf(out->host[out->n], sizeof(out->host[0]), "%s", eq + 1);
        snprintf(out->port[out->n], sizeof(out->port[0]), "%s", colon + 1);
        out->n++;
    }
    return 0;
bad:
    snprintf(err, errlen, "malformed join answer");
    return -1;
}

int transport_join_query(const char *host, const char *port, const char *my_host,
                         const char *my_port, int timeout_ms, transport_join_info *out, char *err,
                         size_t errlen)
{
    int fd = dial(host, port, timeout_ms, err, errlen);
    if (fd < 0)
        return -1;
    char q[TRANSPORT_HELLO_LEN + 300];
    transport_hello_encode((uint8_t *)q, 0, 0, 0);
    int n = snprintf(q + TRANSPORT_HELLO_LEN, sizeof(q) - TRANSPORT_HELLO_LEN, "JOIN %s %s\n",
                     my_host, my_port);
    size_t len = TRANSPORT_HELLO_LEN + (size_t)n;
    if (n <= 0 || len >= sizeof(q) || send(fd, q, len, MSG_NOSIGNAL) != (ssize_t)len) {
        snprintf(err, errlen, "%s:%s: cannot send the join query", host, port);
        close(fd);
        return -1;
    }
    char in[TRANSPORT_MAX_PEERS * 300 + 128];
    size_t have = 0;
    while (have + 1 < sizeof(in) && (have == 0 || !memchr(in, '\n', have))) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, timeout_ms) != 1)
            break;
        ssize_t r = recv(fd, in + have, sizeof(in) - 1 - have, 0);
        if (r <= 0)
            break;
        have += (size_t)r;
    }
    close(fd);
    in[have] = 0;
    char *nl = strchr(in, '\n');
    if (!nl) {
        snprintf(err, errlen, "%s:%s: no answer to the join query", host, port);
        return -1;
    }
    *nl = 0;
    if (strncmp(in, "PGADCSNO ", 9) == 0) {
        snprintf(err, errlen, "%s:%s refused: %.300s", host, port, in + 9);
        return -1;
    }
    return parse_answer(in, out, err, errlen);
}
