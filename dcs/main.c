/* appliance-dcs: an etcd-compatible DCS member (etcd 3.4 v3 JSON gateway + v2 keys API)
 * on our Raft core. Flags and ETCD_* environment as etcd; exit 2 on a configuration error,
 * 1 on a runtime failure, 0 after SIGTERM/SIGINT (a leader hands leadership over first). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "dcs/flags.h"
#include "dcs/server.h"
#include "evloop.h"
#include "log.h"

extern char **environ;

static void on_signal(evloop *loop, int fd, uint32_t ev, void *arg)
{
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        dcs_server_shutdown(arg);
}

int main(int argc, char **argv)
{
    const char *lvl = getenv("LOG_LEVEL");
    if (lvl && log_level_parse(lvl) >= 0)
        log_set_level((enum log_level)log_level_parse(lvl));
    static dcs_flags f; /* large: keep it off the stack */
    char err[4096];
    int rc = dcs_flags_parse(&f, argc, argv, environ, err, sizeof(err));
    if (rc == 1) {
        fputs(err, stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "appliance-dcs: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    evloop *loop = evloop_new();
    if (!loop || sfd < 0) {
        fprintf(stderr, "appliance-dcs: cannot create the event loop\n");
        return 1;
    }
    dcs_server *s = dcs_server_new(loop, &f, err, sizeof(err));
    if (!s) {
        log_error("%s", err);
        close(sfd);
        evloop_free(loop);
        return 1;
    }
    evloop_add_fd(loop, sfd, EPOLLIN, on_signal, s);
    log_info("member %s serving clients on %s, peers on %s (cluster of %zu)", f.name,
             f.listen_client[0].text, f.listen_peer[0].text, f.nmembers);
    rc = evloop_run(loop);
    dcs_server_free(s);
    evloop_del_fd(loop, sfd);
    close(sfd);
    evloop_free(loop);
    return rc == 0 ? 0 : 1;
}
