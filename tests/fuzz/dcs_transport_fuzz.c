/* Fuzz target: the peer transport's input side as an accepted connection sees it: a
 * 40-byte hello (checked against a 3-member configuration) and then a stream of frames.
 * Invariants: a hello that passes names a known member and re-encodes to the same bytes;
 * every frame the parser accepts re-encodes to the same header and lies inside the input;
 * every proper prefix of an accepted frame is "incomplete", never "invalid" or "whole";
 * a Raft frame's body then goes through the message decoder (as the server does). */
#include <stdlib.h>
#include <string.h>

#include "dcs/crc32c.h"
#include "dcs/raft.h"
#include "dcs/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static raft_entry ents[RAFT_MSG_MAX_ENTRIES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    transport_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.cluster_id = 0x1122334455667788ull;
    cfg.self_id = 1;
    cfg.npeers = 2;
    cfg.peer_ids[0] = 2;
    cfg.peer_ids[1] = 3;
    char why[300];
    if (size < TRANSPORT_HELLO_LEN)
        return 0;
    uint64_t from = 0;
    if (transport_hello_check(&cfg, data, -1, &from, why, sizeof(why)) != 0)
        return 0;
    if (from != 2 && from != 3)
        abort();
    uint8_t hello[TRANSPORT_HELLO_LEN];
    transport_hello_encode(hello, cfg.cluster_id, from, cfg.self_id);
    if (memcmp(hello, data, 16) != 0 || memcmp(hello + 16, data + 16, 24) != 0)
        abort(); /* the reserved word must have been checked too */
    const uint8_t *p = data + TRANSPORT_HELLO_LEN;
    size_t have = size - TRANSPORT_HELLO_LEN;
    for (;;) {
        int kind = -1;
        uint32_t len = 0;
        int rc = transport_frame_parse(p, have, &kind, &len, why, sizeof(why));
        if (rc <= 0)
            break;
        size_t total = TRANSPORT_FRAME_HDR + (size_t)len;
        if (total > have || kind < 0 || kind > 255)
            abort();
        uint8_t hdr[TRANSPORT_FRAME_HDR];
        transport_frame_header(hdr, kind, len, crc32c(p + TRANSPORT_FRAME_HDR, len));
        if (memcmp(hdr, p, TRANSPORT_FRAME_HDR) != 0)
            abort();
        /* a stream cut anywhere inside this frame waits for more bytes */
        size_t cuts[3] = {total - 1, total / 2, TRANSPORT_FRAME_HDR - 1};
        for (int i = 0; i < 3; i++) {
            int k2;
            uint32_t l2;
            if (transport_frame_parse(p, cuts[i], &k2, &l2, why, sizeof(why)) != 0)
                abort();
        }
        if (kind == TRANSPORT_RAFT) {
            raft_msg m;
            (void)raft_msg_decode(p + TRANSPORT_FRAME_HDR, len, &m, ents, RAFT_MSG_MAX_ENTRIES, why,
                                  sizeof(why));
        }
        p += total;
        have -= total;
    }
    return 0;
}
