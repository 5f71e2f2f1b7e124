/* Stopping the other threads (stopworld.h). */
#define _GNU_SOURCE
#include "stopworld.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STOP_SIGNAL SIGPWR /* as Boehm's GC: no program of ours is expected to use it */
#define MAX_THREADS 4096
#define ANSWER_MS 250

static struct {
    int installed;   /* our handler is STOP_SIGNAL's */
    int failed;      /* stops that failed in a row: past 2, no more tries */
    int generation;  /* the stop in progress (the handler checks the signal's value) */
    int answered;    /* futex word: threads waiting in the handler */
    int go;          /* futex word: the generation released */
    int ntids;
    pid_t tids[MAX_THREADS];
} sw;

static long futex(int *word, int op, int val, const struct timespec *timeout)
{
    return syscall(SYS_futex, word, op, val, timeout, NULL, 0);
}

static void handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (si->si_code != SI_QUEUE || si->si_pid != getpid()) {
        /* Not ours (someone sent SIGPWR): what the default would do, terminate. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    int saved = errno, gen = si->si_value.sival_int;
    if (gen == __atomic_load_n(&sw.generation, __ATOMIC_ACQUIRE) &&
        __atomic_load_n(&sw.go, __ATOMIC_ACQUIRE) != gen) {
        __atomic_add_fetch(&sw.answered, 1, __ATOMIC_SEQ_CST);
        futex(&sw.answered, FUTEX_WAKE_PRIVATE, 1, NULL);
        for (int g; (g = __atomic_load_n(&sw.go, __ATOMIC_ACQUIRE)) != gen;)
            futex(&sw.go, FUTEX_WAIT_PRIVATE, g, NULL);
    } /* else a signal left over from a stop that gave up: nothing to do */
    errno = saved;
}

static int install(void)
{
    struct sigaction cur;
    if (sigaction(STOP_SIGNAL, NULL, &cur) < 0)
        return -errno;
    if (sw.installed)
        return (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == handler ? 0 : -EBUSY;
    if (cur.sa_handler != SIG_DFL)
        return -EBUSY; /* the program's */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask); /* a stopped thread runs no other handler meanwhile */
    if (sigaction(STOP_SIGNAL, &sa, NULL) < 0)
        return -errno;
    sw.installed = 1;
    return 0;
}

int mmvi_stw_usable(void)
{
    struct sigaction cur;
    if (sw.failed >= 2 || sigaction(STOP_SIGNAL, NULL, &cur) < 0)
        return 0;
    return sw.installed ? (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == handler
                        : cur.sa_handler == SIG_DFL;
}

static int known(pid_t tid)
{
    for (int i = 0; i < sw.ntids; i++)
        if (sw.tids[i] == tid)
            return 1;
    return 0;
}

static pid_t ignored; /* mmvi_stw_ignore */

void mmvi_stw_ignore(pid_t tid)
{
    __atomic_store_n(&ignored, tid, __ATOMIC_RELAXED);
}

struct lister {
    pid_t self;
    int sent;    /* newly signalled */
    int too_many;
};

/* For each entry of /proc/self/task: signals a thread not signalled yet. */
static void signal_thread(int dirfd, const char *name, void *arg)
{
    (void)dirfd;
    struct lister *l = arg;
    pid_t tid = (pid_t)strtol(name, NULL, 10);
    if (tid <= 0 || tid == l->self || tid == __atomic_load_n(&ignored, __ATOMIC_RELAXED) ||
        known(tid) || l->too_many)
        return;
    if (sw.ntids == MAX_THREADS) {
        l->too_many = 1;
        return;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = STOP_SIGNAL;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = sw.generation;
    if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, STOP_SIGNAL, &si) == 0) {
        sw.tids[sw.ntids++] = tid;
        l->sent++;
    }
}

/* Signals every thread of /proc/self/task not signalled yet; the number newly signalled, or a
 * negative errno. */
static int signal_new_threads(pid_t self)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct lister l = {self, 0, 0};
    mmvi_os_each_entry(fd, signal_thread, &l);
    close(fd);
    return l.too_many ? -E2BIG : l.sent;
}

/* The threads signalled that still exist (one that exited will never answer). */
static int alive(void)
{
    int n = 0;
    for (int i = 0; i < sw.ntids; i++)
        n += syscall(SYS_tgkill, getpid(), sw.tids[i], 0) == 0;
    return n;
}

/* Waits until every signalled thread answered; -ETIMEDOUT after ANSWER_MS. */
static int wait_answers(void)
{
    struct timespec slice = {0, 5 * 1000 * 1000};
    for (int waited = 0; waited < ANSWER_MS; waited += 5) {
        int a = __atomic_load_n(&sw.answered, __ATOMIC_ACQUIRE);
        if (a >= sw.ntids || a >= alive())
            return 0;
        futex(&sw.answered, FUTEX_WAIT_PRIVATE, a, &slice);
    }
    return -ETIMEDOUT;
}

int mmvi_stw_stop(void)
{
    if (sw.failed >= 2)
        return -EAGAIN;
    int rc = install();
    if (rc < 0)
        return rc;
    pid_t self = (pid_t)syscall(SYS_gettid);
    __atomic_store_n(&sw.answered, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&sw.generation, sw.generation + 1, __ATOMIC_RELEASE);
    sw.ntids = 0;
    /* Until no new thread shows up: one not yet stopped may have started another. */
    while ((rc = signal_new_threads(self)) > 0)
        if ((rc = wait_answers()) < 0)
            break;
    if (rc == 0)
        rc = wait_answers();
    if (rc < 0) {
        mmvi_stw_resume();
        sw.failed++;
        return rc;
    }
    sw.failed = 0;
    return 0;
}

void mmvi_stw_resume(void)
{
    __atomic_store_n(&sw.go, __atomic_load_n(&sw.generation, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    futex(&sw.go, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}
