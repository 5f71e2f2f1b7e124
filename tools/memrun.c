/* `mmvec run --memory SIZE`: the program in a memory limit of its own (memrun.h).
 *
 * "Does my program finish in 512 MiB?" should be one command on any Linux machine, so the limit
 * comes from whatever the machine offers, in this order:
 *   1. a child of this process's own memory cgroup (src/base/memlimit.c finds it, v1 or v2, in
 *      a container too): v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes, v2
 *      memory.max and memory.swap.max=0. Nested in our own group, every limit above still holds.
 *      v2 allows it only where the memory controller is enabled for our group's children
 *      (cgroup.subtree_control), which a group holding processes cannot turn on itself (the
 *      "no internal processes" rule): true of a delegated subtree or the root.
 *   2. systemd-run --scope -p MemoryMax=SIZE -p MemorySwapMax=0 (with --user when not root),
 *      where systemd is the init system: the usual way on a desktop or a server with v2 only.
 * Swap is counted in the limit (or forbidden), so that the limit means memory, not memory plus
 * a swap file. With a group of our own this tool stays as the program's parent: it forwards
 * SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2, waits, says so when the kernel's OOM killer ended the
 * program, removes the group and ends as the program did. */
#define _GNU_SOURCE
#include "memrun.h"

#include "memlimit.h"
#include "os.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct group {
    int version;
    char path[1200];
};

static void __attribute__((format(printf, 3, 4))) say_why(char *why, size_t size, const char *fmt,
                                                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

/* A fixture tree of plain folders (tests) has no files the kernel makes in a new group. */
static int fixture;

static int put(const char *dir, const char *name, const char *text)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC | (fixture ? O_CREAT | O_TRUNC : 0), 0644);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int err = n < 0 ? errno : 0;
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -(err ? err : EIO);
}

/* A control file of a group: the library's reader (procfs.c), which reads it whole. */
static int get(const char *dir, const char *name, char *buf, size_t size)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return mmvi_os_read_file(path, buf, size);
}

/* Is `word` one of the space-separated words of `list`? */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == '+') && (!p[n] || strchr(" \n", p[n])))
            return 1;
    return 0;
}

static int make_child(struct group *g, const char *parent, char *why, size_t wsz)
{
    snprintf(g->path, sizeof g->path, "%s/mmvec-run-%ld", parent, (long)getpid());
    if (mkdir(g->path, 0755) == 0)
        return 0;
    say_why(why, wsz, "cannot make a memory cgroup in %s: %s", parent, strerror(errno));
    return -1;
}

static int fail_child(struct group *g, const char *what, int err, char *why, size_t wsz)
{
    say_why(why, wsz, "cannot set %s in %s: %s", what, g->path, strerror(-err));
    rmdir(g->path);
    return -1;
}

static int make_v1(const struct mmvi_memsrc *src, const char *limit, struct group *g, char *why,
                   size_t wsz)
{
    if (make_child(g, src->dir[0], why, wsz) < 0)
        return -1;
    int rc = put(g->path, "memory.limit_in_bytes", limit);
    if (rc < 0)
        return fail_child(g, "memory.limit_in_bytes", rc, why, wsz);
    /* Without swap accounting (swapaccount=0) the file is missing: swap is then not counted. */
    rc = put(g->path, "memory.memsw.limit_in_bytes", limit);
    if (rc < 0 && rc != -ENOENT)
        return fail_child(g, "memory.memsw.limit_in_bytes", rc, why, wsz);
    return 0;
}

static int make_v2(const struct mmvi_memsrc *src, const char *limit, struct group *g, char *why,
                   size_t wsz)
{
    const char *parent = src->dir[0];
    char text[512];
    if (get(parent, "cgroup.controllers", text, sizeof text) < 0 || !has_word(text, "memory")) {
        say_why(why, wsz, "the memory controller is not available in %s (cgroup.controllers)",
                parent);
        return -1;
    }
    if (get(parent, "cgroup.subtree_control", text, sizeof text) < 0 ||
        !has_word(text, "memory")) {
        int rc = put(parent, "cgroup.subtree_control", "+memory");
        if (rc < 0) {
            say_why(why, wsz, "cannot enable the memory controller for the children of %s: %s%s",
                    parent, strerror(-rc),
                    rc == -EBUSY ? " (a cgroup that holds processes cannot)" : "");
            return -1;
        }
    }
    if (make_child(g, parent, why, wsz) < 0)
        return -1;
    int rc = put(g->path, "memory.max", limit);
    if (rc < 0)
        return fail_child(g, "memory.max", rc, why, wsz);
    rc = put(g->path, "memory.swap.max", "0");
    if (rc < 0 && rc != -ENOENT)
        return fail_child(g, "memory.swap.max", rc, why, wsz);
    return 0;
}

/* The kernel's OOM kills in the group so far (-1 when unknown). */
static long long oom_kills(const struct group *g)
{
    char text[4096];
    if (get(g->path, g->version == 1 ? "memory.oom_control" : "memory.events", text,
            sizeof text) < 0)
        return -1;
    const char *p = strstr(text, "oom_kill ");
    return p ? strtoll(p + 9, NULL, 10) : -1;
}

/* The group's peak memory, bytes (0 when unknown: v2 before Linux 5.19 has no memory.peak). */
static unsigned long long peak(const struct group *g)
{
    char text[64];
    if (get(g->path, g->version == 1 ? "memory.max_usage_in_bytes" : "memory.peak", text,
            sizeof text) < 0)
        return 0;
    return strtoull(text, NULL, 10);
}

/* rmdir may need a moment after the last task left (the kernel frees it asynchronously). */
static void remove_group(const struct group *g)
{
    for (int i = 0; i < 100; i++) {
        if (rmdir(g->path) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            break;
        usleep(20000);
    }
    fprintf(stderr, "mmvec: could not remove the memory cgroup %s: %s\n", g->path,
            strerror(errno));
}

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

static const int forwarded[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
/* The terminal sends these to the whole foreground process group, the program included. */
static const int ignored[] = {SIGINT, SIGQUIT};

static void set_handlers(void (*fwd)(int), void (*ign)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sa.sa_handler = fwd;
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);
    sa.sa_handler = ign;
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        sigaction(ignored[i], &sa, NULL);
}

static void child(const struct group *g, char **argv)
{
    set_handlers(SIG_DFL, SIG_DFL);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    int rc = g ? put(g->path, "cgroup.procs", pid) : 0;
    if (rc < 0) {
        fprintf(stderr, "mmvec: cannot join the memory cgroup %s: %s\n", g->path, strerror(-rc));
        _exit(1);
    }
    execvp(argv[0], argv);
    int err = errno;
    fprintf(stderr, "mmvec: cannot run '%s': %s\n", argv[0], strerror(err));
    _exit(err == ENOENT ? 127 : 126);
}

/* Waits for the program, and with a recorder samples it every MMVC_RECORD_MS meanwhile. */
static void wait_for(pid_t pid, int *status, const struct group *g, struct mmvc_recorder *rec)
{
    char usage[1400];
    if (g)
        snprintf(usage, sizeof usage, "%s/%s", g->path,
                 g->version == 1 ? "memory.usage_in_bytes" : "memory.current");
    for (;;) {
        pid_t w = waitpid(pid, status, rec ? WNOHANG : 0);
        if (w == pid || (w < 0 && errno != EINTR))
            return;
        if (w == 0) {
            mmvc_record_sample(rec, (long)pid, g ? usage : NULL);
            struct timespec ts = {0, MMVC_RECORD_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* Runs argv as our child, in group g (NULL: none), and ends as it did. */
static int run_in(const struct group *g, uint64_t limit, char **argv, int report,
                  struct mmvc_recorder *rec)
{
    fflush(NULL);
    set_handlers(forward, SIG_IGN); /* before fork: no signal is lost in between */
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        if (g)
            remove_group(g);
        fprintf(stderr, "mmvec: cannot start '%s': %s\n", argv[0], strerror(err));
        return 1;
    }
    if (pid == 0)
        child(g, argv);
    child_pid = pid;
    int status = 0;
    wait_for(pid, &status, g, rec);
    long long kills = g ? oom_kills(g) : -1;
    if (report && g)
        fprintf(stderr, "mmvec run: peak memory %llu MiB of the %" PRIu64 " MiB limit, %lld OOM "
                "kill%s\n", peak(g) >> 20, limit >> 20, kills < 0 ? 0 : kills,
                kills == 1 ? "" : "s");
    if (g)
        remove_group(g);
    set_handlers(SIG_DFL, SIG_DFL);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    if (sig == SIGKILL && kills > 0)
        fprintf(stderr, "mmvec: '%s' was killed by the kernel's OOM killer at its memory limit "
                "of %" PRIu64 " MiB\n", argv[0], limit >> 20);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    struct rlimit none = {0, 0}; /* the program dumped its core already, if it could */
    setrlimit(RLIMIT_CORE, &none);
    if (sig != SIGKILL && sig != SIGSTOP)
        raise(sig); /* the same death, for whoever waits for us */
    return 128 + sig;
}

/* systemd-run's scope: systemd makes and removes the unit; it execs the program itself. Returns
 * only when it cannot (with a recorder, it runs as our child: the program takes its pid). */
static int run_systemd(uint64_t limit, char **argv, const char *root, char *why, size_t wsz,
                       struct mmvc_recorder *rec)
{
    char booted[512];
    snprintf(booted, sizeof booted, "%s/run/systemd/system", root);
    if (access(booted, F_OK) < 0) {
        say_why(why, wsz, "systemd is not the init system here (no %s)", booted);
        return -1;
    }
    size_t n = 0;
    while (argv[n])
        n++;
    char **args = calloc(n + 12, sizeof *args);
    char max[64];
    snprintf(max, sizeof max, "MemoryMax=%" PRIu64, limit);
    if (!args) {
        say_why(why, wsz, "out of memory");
        return -1;
    }
    size_t k = 0;
    args[k++] = "systemd-run";
    if (geteuid() != 0)
        args[k++] = "--user";
    args[k++] = "--scope";
    args[k++] = "--quiet";
    args[k++] = "--collect";
    args[k++] = "-p";
    args[k++] = max;
    args[k++] = "-p";
    args[k++] = "MemorySwapMax=0";
    args[k++] = "--";
    for (size_t i = 0; i < n; i++)
        args[k++] = argv[i];
    if (rec) {
        int rc = run_in(NULL, limit, args, 0, rec);
        free(args);
        return rc;
    }
    fflush(NULL);
    execvp(args[0], args);
    say_why(why, wsz, "cannot run systemd-run: %s", strerror(errno));
    free(args);
    return -1;
}

int mmvc_run_watched(char **argv, struct mmvc_recorder *rec)
{
    return run_in(NULL, 0, argv, 0, rec);
}

int mmvc_run_limited(uint64_t limit, char **argv, const char *root, int report,
                     struct mmvc_recorder *rec)
{
    struct mmvi_memsrc src;
    fixture = root[0] != '\0';
    mmvi_memsrc_open(&src, root);
    char text[32], cg_why[1600] = "", sd_why[700] = "";
    snprintf(text, sizeof text, "%" PRIu64, limit);
    struct group g = {.version = src.version};
    int made = -1;
    if (src.version == 1)
        made = make_v1(&src, text, &g, cg_why, sizeof cg_why);
    else if (src.version == 2)
        made = make_v2(&src, text, &g, cg_why, sizeof cg_why);
    else
        say_why(cg_why, sizeof cg_why, "no memory cgroup found (/proc/self/cgroup)");
    if (made == 0)
        return run_in(&g, limit, argv, report, rec);
    int rc = run_systemd(limit, argv, root, sd_why, sizeof sd_why, rec);
    if (rc >= 0)
        return rc;
    fprintf(stderr, "mmvec: cannot set a memory limit here: %s; and %s\n", cg_why, sd_why);
    return 1;
}
