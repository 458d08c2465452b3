/* appliance-init's environment: every bad value is rejected with its name and value;
 * role defaults; every allowlist name resolves to a syscall. */
#include "check.h"
#include "init/roles.h"
#include "init/seccomp_policy.h"
#include "init/settings.h"

#include <signal.h>
#include <stdlib.h>

static const char *const vars[] = {
    "ROLE",           "APPLIANCE_NAME", "HOSTNAME",   "STOP_TIMEOUT",
    "KILL_GRACE",     "STOP_SIGNAL",    "RESTART",    "PERMANENT_FAILURE_EXIT",
    "HEALTHY_UPTIME", "SECCOMP_ACTION", "LOG_FORMAT", "APPLIANCE_USER",
    "DATA_DIR",       "ROLE_ARGS"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

TEST(role_defaults)
{
    clear_env();
    setenv("ROLE", "pg", 1);
    setenv("HOSTNAME", "pg-0", 1);
    struct init_settings s;
    char err[512];
    CHECK_EQ_INT(settings_from_env(&s, 0, err, sizeof(err)), 0);
    CHECK_STR(s.role_label, "pg");
    CHECK_STR(s.container, "pg-0");
    CHECK_EQ_INT(s.stop_timeout_ms, 60000);
    CHECK_EQ_INT(s.stop_signal, SIGTERM);
    CHECK_STR(s.user, "postgres");
    CHECK_STR(s.data_dir, "/home/postgres/pgdata");
    CHECK_EQ_INT(s.restart, RESTART_ON_FAILURE);
    CHECK_EQ_INT(s.seccomp, SECCOMP_ERRNO);
    setenv("ROLE", "etcd", 1);
    setenv("APPLIANCE_NAME", "etcd-1", 1);
    CHECK_EQ_INT(settings_from_env(&s, 0, err, sizeof(err)), 0);
    CHECK_STR(s.container, "etcd-1");
    CHECK_EQ_INT(s.stop_timeout_ms, 10000);
    CHECK_STR(s.data_dir, "/etcd-data");
    setenv("ROLE", "init", 1);
    CHECK_EQ_INT(settings_from_env(&s, 0, err, sizeof(err)), 0);
    CHECK_EQ_INT(s.restart, RESTART_NEVER);
    clear_env();
    CHECK_EQ_INT(settings_from_env(&s, 1, err, sizeof(err)), 0);
    CHECK_STR(s.role_label, "cmd");
    CHECK(s.role == NULL);
    CHECK_EQ_INT(s.restart, RESTART_NEVER);
}

static void expect_bad(const char *var, const char *value, const char *needle)
{
    clear_env();
    setenv("ROLE", "pg", 1);
    setenv(var, value, 1);
    struct init_settings s;
    char err[512] = "";
    int r = settings_from_env(&s, 0, err, sizeof(err));
    if (r != -1 || !strstr(err, needle)) {
        printf("# %s=%s -> %d '%s' (wanted '%s')\n", var, value, r, err, needle);
        CHECK(0);
    }
}

TEST(bad_values_named)
{
    expect_bad("ROLE", "postgres",
               "ROLE='postgres' is not a role; valid roles: etcd, pg, "
               "router, init");
    expect_bad("STOP_TIMEOUT", "soon", "STOP_TIMEOUT='soon'");
    expect_bad("STOP_TIMEOUT", "3601", "STOP_TIMEOUT='3601'");
    expect_bad("KILL_GRACE", "-1", "KILL_GRACE='-1'");
    expect_bad("STOP_SIGNAL", "SIGSEGV", "STOP_SIGNAL='SIGSEGV'");
    expect_bad("RESTART", "yes", "RESTART='yes'");
    expect_bad("PERMANENT_FAILURE_EXIT", "300", "PERMANENT_FAILURE_EXIT='300'");
    expect_bad("HEALTHY_UPTIME", "1h", "HEALTHY_UPTIME='1h'");
    expect_bad("SECCOMP_ACTION", "off", "SECCOMP_ACTION='off'");
    expect_bad("LOG_FORMAT", "xml", "LOG_FORMAT='xml'");
    expect_bad("APPLIANCE_USER", "Root User", "APPLIANCE_USER='Root User'");
    expect_bad("DATA_DIR", "relative/dir", "DATA_DIR='relative/dir'");
    expect_bad("DATA_DIR", "/data/../etc", "DATA_DIR='/data/../etc'");
    expect_bad("APPLIANCE_NAME", "pg 0", "APPLIANCE_NAME='pg 0'");
}

TEST(role_args)
{
    clear_env();
    setenv("ROLE", "router", 1);
    setenv("ROLE_ARGS", "-c '/etc/my router.yml'  -t", 1);
    struct init_settings s;
    char err[512] = "";
    CHECK_EQ_INT(settings_from_env(&s, 0, err, sizeof(err)), 0);
    CHECK_STR(s.role_args[0], "-c");
    CHECK_STR(s.role_args[1], "/etc/my router.yml");
    CHECK_STR(s.role_args[2], "-t");
    CHECK(s.role_args[3] == NULL);
    settings_free(&s);
    setenv("ROLE_ARGS", "-c 'unterminated", 1);
    CHECK_EQ_INT(settings_from_env(&s, 0, err, sizeof(err)), -1);
    CHECK(strstr(err, "ROLE_ARGS='-c 'unterminated': unterminated ' quote") != NULL);
    setenv("ROLE_ARGS", "x", 1);
    CHECK_EQ_INT(settings_from_env(&s, 1, err, sizeof(err)), -1);
    CHECK(strstr(err, "ROLE_ARGS='x': only used when ROLE runs its own program") != NULL);
}

TEST(missing_role_lists_roles)
{
    clear_env();
    struct init_settings s;
    char err[512];
    CHECK_EQ_INT(settings_from_env(&s, 0, err, sizeof(err)), -1);
    CHECK(strstr(err, "ROLE is not set; valid roles: etcd, pg, router, init") != NULL);
}

TEST(every_allowlist_resolves)
{
    static const char *const roles[] = {"etcd", "pg", "router", "init"};
    for (size_t i = 0; i < 4; i++) {
        char err[256] = "";
        struct seccomp_policy *p =
            seccomp_policy_new(role_find(roles[i]), SECCOMP_ERRNO, err, sizeof(err));
        if (!p)
            printf("# %s: %s\n", roles[i], err);
        CHECK(p != NULL);
        CHECK(seccomp_policy_count(p) > 50);
        seccomp_policy_free(p);
    }
}

TEST(exe_dir)
{
    char dir[4096];
    CHECK_EQ_INT(role_exe_dir(dir, sizeof(dir)), 0);
    CHECK(dir[0] == '/');
    CHECK(strstr(dir, "build/san/tests") != NULL);
}

int main(void)
{
    RUN(role_defaults);
    RUN(bad_values_named);
    RUN(role_args);
    RUN(missing_role_lists_roles);
    RUN(every_allowlist_resolves);
    RUN(exe_dir);
    clear_env();
    return check_done();
}
