/* Small test program run under appliance-init by the integration tests (*.t here).
 *
 *   init_probe signals [SIGX]     trap the forwarded signals, print "got SIGX" per signal,
 *                                 exit 0 on SIGX (SIGTERM); prints "armed" when ready
 *   init_probe lines ID N         print N lines "ID SEQ <payload>" as fast as possible
 *   init_probe flood              print lines forever
 *   init_probe tick N MS          print "tick SEQ EPOCH_MS" N times, MS apart
 *   init_probe notify FD MS       after MS, write a newline on FD (readiness), then sleep
 *   init_probe ignore-term        ignore SIGTERM, print "armed", sleep forever
 *   init_probe denied             call chroot("/") (never in any allowlist) and print
 *                                 "chroot: <errno name>"
 *   init_probe id                 print "uid=U gid=G groups=N nnp=0|1"
 *   init_probe exit CODE          exit with CODE */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t last_sig;

static long num(const char *s)
{
    return strtol(s, NULL, 10);
}

static void on_sig(int sig)
{
    last_sig = sig;
}

/* Wall-clock ms: comparable with the timestamps appliance-init puts on each record. */
static long long epoch_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int cmd_signals(const char *exit_on)
{
    static const struct {
        int sig;
        const char *name;
    } sigs[] = {{SIGTERM, "SIGTERM"},  {SIGINT, "SIGINT"},   {SIGHUP, "SIGHUP"},
                {SIGQUIT, "SIGQUIT"},  {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"},
                {SIGWINCH, "SIGWINCH"}};
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_sig;
        sigaction(sigs[i].sig, &sa, NULL);
        sigaddset(&block, sigs[i].sig);
    }
    sigprocmask(SIG_BLOCK, &block, &old);
    printf("armed\n");
    fflush(stdout);
    for (;;) {
        sigsuspend(&old);
        int s = last_sig;
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
            if (sigs[i].sig != s)
                continue;
            printf("got %s\n", sigs[i].name);
            if (!strcmp(sigs[i].name, exit_on)) {
                fflush(stdout);
                return 0;
            }
        }
        fflush(stdout);
    }
}

static int cmd_lines(const char *id, long n)
{
    /* Lines of varying length so joins and splits across pipe reads are exercised. */
    static char pad[300];
    memset(pad, 'x', sizeof(pad) - 1);
    for (long i = 0; i < n; i++)
        printf("%s %07ld %.*s\n", id, i, (int)(i * 7 % 200), pad);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "signals"))
        return cmd_signals(argc > 2 ? argv[2] : "SIGTERM");
    if (!strcmp(c, "lines") && argc == 4)
        return cmd_lines(argv[2], num(argv[3]));
    if (!strcmp(c, "flood")) {
        for (long i = 0;; i++)
            printf("flood %ld xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", i);
    }
    if (!strcmp(c, "tick") && argc == 4) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (long i = 0; i < num(argv[2]); i++) {
            printf("tick %ld %lld\n", i, epoch_ms());
            sleep_ms(num(argv[3]));
        }
        return 0;
    }
    if (!strcmp(c, "notify") && argc == 4) {
        sleep_ms(num(argv[3]));
        printf("notifying at %lld\n", epoch_ms());
        fflush(stdout);
        if (write((int)num(argv[2]), "\n", 1) != 1)
            return 1;
        for (;;)
            pause();
    }
    if (!strcmp(c, "ignore-term")) {
        signal(SIGTERM, SIG_IGN);
        printf("armed\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    if (!strcmp(c, "denied")) {
        int r = chroot("/");
        printf("chroot: %s\n", r == 0 ? "ok" : errno == EPERM ? "EPERM" : strerror(errno));
        return r == 0 ? 0 : 3;
    }
    if (!strcmp(c, "id")) {
        printf("uid=%u gid=%u groups=%d nnp=%d\n", (unsigned)getuid(), (unsigned)getgid(),
               getgroups(0, NULL), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        return 0;
    }
    if (!strcmp(c, "exit") && argc == 3)
        return (int)num(argv[2]);
    fprintf(stderr, "init_probe: unknown command\n");
    return 2;
}
