/*
 * libinterlayer-attach.so: programmatic attach by the application itself (include/interlayer/attach.h).
 *
 *   LD_PRELOAD=libinterlayer-attach.so INTERLAYER_ATTACH=tag curl http://...
 *
 * When the library is loaded and INTERLAYER_ATTACH names modules (comma-separated), it asks the agent over its attach
 * socket, before the program's main(), to attach each to the connections this process opens. It wraps no libc call:
 * the agent finds each new connection's process itself. A failure (no agent, a refusal) is written once to stderr and
 * the program runs on unchanged. The socket stays open (close-on-exec, moved above the descriptors programs use) for
 * the process's life: the agent ends the registrations when it closes.
 *
 * Protocol (one line each way): "attach MODULE[@VERSION]\n" -> "ok ID MODULE@VERSION\n" | "error REASON\n";
 * "detach ID\n" -> "ok ID\n" | "error REASON\n".
 */
#define _GNU_SOURCE
#include "interlayer/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define ANSWER_MAX 1024
#define HIGH_FD 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int agent_fd = -1;
static __thread char last_error[ANSWER_MAX + 128];

static void set_error(const char *what, const char *detail) {
    snprintf(last_error, sizeof last_error, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

const char *interlayer_attach_error(void) {
    return last_error;
}

/* The attach socket's path, as the header says; 0 on success. */
static int socket_path(char *out, size_t n) {
    const char *env = getenv("INTERLAYER_ATTACH_SOCKET");
    if (env && *env) return snprintf(out, n, "%s", env) >= (int) n;
    const char *control = getenv("INTERLAYER_SOCKET");
    if (control && *control) {
        size_t len = strlen(control);
        if (len > 5 && strcmp(control + len - 5, ".sock") == 0) len -= 5;
        return snprintf(out, n, "%.*s-attach.sock", (int) len, control) >= (int) n;
    }
    if (geteuid() == 0) return snprintf(out, n, "/run/interlayer/control-attach.sock") >= (int) n;
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg && access(xdg, X_OK) == 0) return snprintf(out, n, "%s/interlayer/control-attach.sock", xdg) >= (int) n;
    return snprintf(out, n, "/tmp/interlayer-%u/control-attach.sock", (unsigned) geteuid()) >= (int) n;
}

/* Connects once per process; the caller holds the lock. */
static int connect_agent(void) {
    if (agent_fd >= 0) return 0;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (socket_path(a.sun_path, sizeof a.sun_path)) {
        set_error("the attach socket's path is longer than a Unix socket path may be", NULL);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_error("cannot create a socket", strerror(errno));
        return -1;
    }
    struct timeval t = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
    if (connect(fd, (struct sockaddr *) &a, sizeof a) != 0) {
        char why[ANSWER_MAX];
        snprintf(why, sizeof why, "%s: %s (is the agent running? INTERLAYER_ATTACH_SOCKET names its attach socket)", a.sun_path, strerror(errno));
        set_error("cannot reach the Interlayer agent's attach socket", why);
        close(fd);
        return -1;
    }
    int high = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    agent_fd = fd;
    return 0;
}

/* Sends one request line and reads its answer into `answer`; 0 if it says ok. The caller holds the lock. */
static int ask(const char *request, char *answer) {
    if (connect_agent() != 0) return -1;
    size_t len = strlen(request), sent = 0;
    while (sent < len) {
        ssize_t w = send(agent_fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto lost;
        sent += (size_t) w;
    }
    size_t got = 0;
    for (;;) {
        ssize_t r = read(agent_fd, answer + got, 1); /* one byte at a time: never read past this answer's newline */
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) goto lost;
        if (answer[got] == '\n') break;
        if (++got == ANSWER_MAX - 1) goto lost;
    }
    answer[got] = '\0';
    if (strncmp(answer, "ok ", 3) == 0) return 0;
    set_error("the agent refused", strncmp(answer, "error ", 6) == 0 ? answer + 6 : answer);
    return -1;
lost:
    set_error("the agent's attach socket failed", errno ? strerror(errno) : "closed, or an answer too long");
    close(agent_fd);
    agent_fd = -1;
    return -1;
}

long interlayer_attach(const char *module) {
    if (!module || !*module || strpbrk(module, " \t\r\n") || strlen(module) > 200) {
        set_error("expected a module name (e.g. tag, or tag@1.0.0), without spaces", module);
        return -1;
    }
    char request[256], answer[ANSWER_MAX];
    snprintf(request, sizeof request, "attach %s\n", module);
    pthread_mutex_lock(&lock);
    int saved = errno;
    errno = 0;
    long id = ask(request, answer) == 0 ? strtol(answer + 3, NULL, 10) : -1;
    errno = saved;
    pthread_mutex_unlock(&lock);
    return id;
}

int interlayer_detach(long id) {
    char request[64], answer[ANSWER_MAX];
    snprintf(request, sizeof request, "detach %ld\n", id);
    pthread_mutex_lock(&lock);
    int saved = errno;
    errno = 0;
    int rc = ask(request, answer);
    errno = saved;
    pthread_mutex_unlock(&lock);
    return rc;
}

/* At load: attach what INTERLAYER_ATTACH names; one line on stderr for the first failure, and the program runs on. */
__attribute__((constructor)) static void attach_at_start(void) {
    const char *list = getenv("INTERLAYER_ATTACH");
    if (!list || !*list) return;
    char *copy = strdup(list), *save = NULL;
    if (!copy) return;
    int reported = 0;
    for (char *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        if (interlayer_attach(m) < 0 && !reported) {
            fprintf(stderr, "interlayer-attach: %s not attached: %s (the program runs without it)\n", m, interlayer_attach_error());
            reported = 1;
        }
    }
    free(copy);
}
