/* Minimal table-friendly unit test harness printing TAP lines that tests/run.sh counts.
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ_INT(a, b); CHECK_STR(s, "v"); }
 *   int main(void) { RUN(name); return check_done(); }
 *
 * A failed CHECK records the file, line and expression and ends only the current test. */
#ifndef APPLIANCE_CHECK_H
#define APPLIANCE_CHECK_H

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed, check_number;
static jmp_buf check_jump;

#define TEST(name) static void test_##name(void)

#define CHECK_FAIL_(...)                                                                           \
    do {                                                                                           \
        printf("# %s:%d: ", __FILE__, __LINE__);                                                   \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        longjmp(check_jump, 1);                                                                    \
    } while (0)

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (!(expr))                                                                               \
            CHECK_FAIL_("check failed: %s", #expr);                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_)                                                                  \
            CHECK_FAIL_("%s == %s: %lld != %lld", #a, #b, check_a_, check_b_);                     \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0)                             \
            CHECK_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, check_a_ ? check_a_ : "(null)",      \
                        check_b_ ? check_b_ : "(null)");                                           \
    } while (0)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        check_number++;                                                                            \
        fflush(stdout);                                                                            \
        if (setjmp(check_jump) == 0) {                                                             \
            test_##name();                                                                         \
            check_passed++;                                                                        \
            printf("ok %d - %s\n", check_number, #name);                                           \
        } else {                                                                                   \
            check_failed++;                                                                        \
            printf("not ok %d - %s\n", check_number, #name);                                       \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static inline int check_done(void)
{
    printf("1..%d\n", check_number);
    return check_failed ? 1 : 0;
}

#endif
