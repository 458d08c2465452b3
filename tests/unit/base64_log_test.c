/* base64 round trips and strict rejection; log level parsing. */
#include "base64.h"
#include "check.h"
#include "log.h"

TEST(base64_round_trips_every_length)
{
    const char src[] = "/service/pg-cluster/leader\xff\x00\x01";
    for (size_t n = 0; n < sizeof(src); n++) {
        char enc[64];
        unsigned char dec[64];
        base64_encode(src, n, enc);
        CHECK_EQ_INT(strlen(enc) + 1, base64_encoded_size(n));
        CHECK_EQ_INT(base64_decode(enc, strlen(enc), dec), n);
        CHECK(memcmp(dec, src, n) == 0);
    }
}

TEST(base64_known_vectors)
{
    char enc[32];
    base64_encode("foo", 3, enc);
    CHECK_STR(enc, "Zm9v");
    base64_encode("fo", 2, enc);
    CHECK_STR(enc, "Zm8=");
    base64_encode("f", 1, enc);
    CHECK_STR(enc, "Zg==");
}

TEST(base64_rejects_malformed)
{
    unsigned char out[16];
    const char *bad[] = {"Zm9", "Zm9v!", "Zg=a", "Z===", "Zh==", "Zm9=Zm9v", "====", "Zm 9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(base64_decode(bad[i], strlen(bad[i]), out) == -1);
}

TEST(log_level_names)
{
    CHECK_EQ_INT(log_level_parse("debug"), LOG_DEBUG);
    CHECK_EQ_INT(log_level_parse("ERROR"), LOG_ERROR);
    CHECK_EQ_INT(log_level_parse("verbose"), -1);
    CHECK_EQ_INT(log_level_parse(NULL), -1);
}

int main(void)
{
    RUN(base64_round_trips_every_length);
    RUN(base64_known_vectors);
    RUN(base64_rejects_malformed);
    RUN(log_level_names);
    return check_done();
}
