/* Fuzzes the netlink answer parser of router/kernel_nat.c (kernel_nat_parse): whatever the
 * bytes, it must return 0, -1 with a terminated message, or the callback's value, report only
 * well-formed fields, and never read outside the buffer (ASan) or loop forever. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/kernel_nat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    int messages;
    int stop_after; /* exercises the early-stop path */
} seen;

static int on_msg(void *arg, const kernel_nat_msg *m)
{
    seen *s = arg;
    if (m->kind != KNAT_MSG_ACK && m->kind != KNAT_MSG_DONE && m->kind != KNAT_MSG_CT &&
        m->kind != KNAT_MSG_TABLE)
        __builtin_trap();
    if ((m->kind == KNAT_MSG_ACK || m->kind == KNAT_MSG_DONE) && (m->error < 0 || m->error > 4095))
        __builtin_trap();
    if (m->kind == KNAT_MSG_CT && (m->tcp_state < -1 || m->tcp_state > 255))
        __builtin_trap();
    if (m->kind != KNAT_MSG_CT && (m->has_mark || m->bytes_orig || m->bytes_reply))
        __builtin_trap();
    return ++s->messages == s->stop_after ? 9 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    seen s = {0, size > 0 ? (data[0] & 7) : 0};
    /* An exact-size copy, so that ASan flags a read one byte past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    err[0] = 'x';
    int r = kernel_nat_parse(copy, size, on_msg, &s, err, sizeof(err));
    free(copy);
    if (r != 0 && r != -1 && r != 9)
        __builtin_trap();
    if (r == -1 && memchr(err, '\0', sizeof(err)) == NULL)
        __builtin_trap();
    return 0;
}
