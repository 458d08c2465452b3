/* Restart backoff policy: 1 s doubling to a 30 s cap, reset after a healthy uptime. */
#include "check.h"
#include "supervisor/backoff.h"

static const struct backoff_policy pol = {1000, 30000, 60000};

TEST(doubles_from_min_to_cap)
{
    static const unsigned long long want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        CHECK_EQ_INT(backoff_delay_ms(&pol, i), want[i]);
}

TEST(huge_count_stays_at_cap)
{
    CHECK_EQ_INT(backoff_delay_ms(&pol, 4000000000u), 30000);
}

TEST(healthy_run_resets)
{
    CHECK_EQ_INT(backoff_after_run(&pol, 5, 59999), 5);
    CHECK_EQ_INT(backoff_after_run(&pol, 5, 60000), 0);
    CHECK_EQ_INT(backoff_delay_ms(&pol, backoff_after_run(&pol, 5, 120000)), 1000);
}

int main(void)
{
    RUN(doubles_from_min_to_cap);
    RUN(huge_count_stays_at_cap);
    RUN(healthy_run_resets);
    return check_done();
}
