/* Fuzz target: the peer message decoder, then the raft core itself. A frame that decodes
 * must re-encode to the same bytes; whatever decodes is then stepped into a 3-member core
 * (as the transport would), which must not crash, whatever the message claims. */
#include "dcs/crc32c.h"
#include "dcs/raft.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static raft_entry ents[RAFT_MSG_MAX_ENTRIES];

static int decode_checked(const uint8_t *data, size_t size, raft_msg *m)
{
    char err[300];
    if (raft_msg_decode(data, size, m, ents, RAFT_MSG_MAX_ENTRIES, err, sizeof(err)) != 0)
        return -1;
    uint8_t *buf = malloc(size);
    if (!buf || raft_msg_encode(m, buf, size) != size || memcmp(buf, data, size) != 0)
        abort();
    free(buf);
    return 0;
}

static uint8_t fixed[1 << 17];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[300];
    raft_msg m;
    if (size < RAFT_MSG_HEADER_LEN || size > sizeof(fixed))
        return 0;
    if (decode_checked(data, size, &m) != 0) {
        /* The CRC stops almost every mutation at the door: decode a copy with the length
         * and CRC repaired too, so the body parser and the core see mutated bodies. */
        memcpy(fixed, data, size);
        uint32_t body = (uint32_t)(size - RAFT_MSG_HEADER_LEN), crc = crc32c(fixed + 24, body);
        for (int i = 0; i < 4; i++) {
            fixed[8 + i] = (uint8_t)(body >> (8 * i));
            fixed[12 + i] = (uint8_t)(crc >> (8 * i));
        }
        if (raft_msg_frame_len(fixed, size, err, sizeof(err)) != size ||
            decode_checked(fixed, size, &m) != 0)
            return 0;
    }

    raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.seed = 1;
    raft_entry log[3] = {{.term = 1, .index = 1}, {.term = 1, .index = 2}, {.term = 2, .index = 3}};
    raft_storage st = {.hs = {.term = 2, .commit = 2}, .entries = log, .n_entries = 3};
    st.snapshot.conf.n = 3;
    for (uint32_t i = 0; i < 3; i++)
        st.snapshot.conf.ids[i] = i + 1;
    raft *r;
    if (raft_new(&cfg, &st, &r, err, sizeof(err)) != 0)
        abort();
    /* as follower, and again as leader of term 3 after winning an election */
    for (int round = 0; round < 2; round++) {
        m.to = 1;
        if (m.from == 1 || m.from == 0)
            m.from = 2;
        raft_step(r, &m);
        raft_ready rd;
        while (raft_get_ready(r, &rd))
            raft_advance(r, &rd);
        for (int t = 0; t < 30 && raft_role(r) != RAFT_LEADER && round == 0; t++) {
            raft_tick(r);
            while (raft_get_ready(r, &rd))
                raft_advance(r, &rd);
            raft_msg v = {
                .type = RAFT_MSG_PREVOTE_RESP, .from = 2, .to = 1, .term = raft_term(r) + 1};
            if (raft_role(r) == RAFT_CANDIDATE)
                v = (raft_msg){
                    .type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = raft_term(r)};
            if (raft_role(r) != RAFT_FOLLOWER)
                raft_step(r, &v);
            while (raft_get_ready(r, &rd))
                raft_advance(r, &rd);
        }
    }
    raft_free(r);
    return 0;
}
