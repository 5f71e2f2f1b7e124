/* The live figures page (figures.h has the layout and the rules): what `mmvec ps`, `top` and
 * `stats` read of a running process, without ever asking it anything.
 *
 * Where: a memory filesystem, so that a heap that fits still writes nothing to disk: /dev/shm,
 * else $XDG_RUNTIME_DIR, when they are tmpfs (MMVEC_LIVE_DIR names another folder, or "off").
 * Where none is, there is no page, silently: the figures are only for looking.
 * When: made at the end of the first large request (a program that never makes one has no page
 * and nothing to show), updated at the end of each one and at the advisor's rounds. A fork
 * child makes its own at its next large request; the parent's is not mapped in the child
 * (MADV_DONTFORK), and the page is touched only by the process that made it.
 * Cost: one copy of the counters (relaxed loads and stores, about fifty words) per large
 * request; nothing on the small path. The page's mapping holds its flock (as the process
 * folder's lock does, reaper.c): no descriptor is kept.
 *
 * State: `live` below. It is made under mmvi_heap.lock; the page's contents are written
 * without it (relaxed stores: two threads updating at once both write true figures). */
#define _GNU_SOURCE
#include "publish.h"

#include "figures.h"
#include "heap.h"
#include "log.h"
#include "options.h"
#include "reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#define RAMFS_MAGIC_ 0x858458f6

enum { LIVE_UNTRIED, LIVE_MADE, LIVE_NONE };

static struct {
    int state;                   /* LIVE_*; read without the lock (relaxed) */
    pid_t pid;                   /* the process that made the page: only it writes there */
    struct mmvi_live_page *page; /* the mapping */
    size_t len;
    char folder[4200];           /* <root>/mmvec-live-<uid> */
    char name[80];               /* <host>-<pid>-<rand>.live */
} live;

static int in_memory(const char *dir)
{
    struct statfs fs;
    return statfs(dir, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC_) &&
           access(dir, W_OK | X_OK) == 0;
}

/* The root the page goes under: MMVEC_LIVE_DIR, or the first memory filesystem of /dev/shm
 * and $XDG_RUNTIME_DIR. 0, or -1 for none. */
static int choose_root(char *out, size_t size)
{
    const char *dir = mmvi_opt.live_dir;
    if (mmvi_live_dir_off(dir))
        return -1;
    if (!dir[0] || !strcmp(dir, "auto")) {
        const char *xdg = mmvi_getenv("XDG_RUNTIME_DIR");
        dir = in_memory("/dev/shm") ? "/dev/shm" : xdg && xdg[0] == '/' && in_memory(xdg) ? xdg
                                                                                          : NULL;
        if (!dir)
            return -1;
    }
    return snprintf(out, size, "%s", dir) < (int)size ? 0 : -1;
}

/* Opens (making it 0700 when missing) the folder for our pages: a real folder of ours, never a
 * symlink or another user's. A descriptor or -1. */
static int open_folder(void)
{
    char root[4096];
    if (choose_root(root, sizeof root) < 0)
        return -1;
    int n = snprintf(live.folder, sizeof live.folder, "%s/" MMVI_LIVE_PREFIX "%u", root,
                     (unsigned)geteuid());
    if (n < 0 || (size_t)n >= sizeof live.folder)
        return -1;
    if (mkdir(live.folder, 0700) < 0 && errno != EEXIST)
        return -1;
    int fd = open(live.folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_uid != geteuid())) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The file made under a temporary name, locked, mapped, filled, then renamed into place: a
 * reader never sees a page that is not locked or not yet filled. */
static struct mmvi_live_page *make_page(int dir, size_t len)
{
    char proc[64], tmp[96];
    mmvi_proc_make_name(proc, sizeof proc);
    snprintf(live.name, sizeof live.name, "%s" MMVI_LIVE_SUFFIX, proc);
    snprintf(tmp, sizeof tmp, "%s.tmp", live.name);
    int fd = openat(dir, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    void *m = MAP_FAILED;
    if (ftruncate(fd, (off_t)len) == 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED && madvise(m, len, MADV_DONTFORK) == 0) {
        mmvi_stats_header(m);
        if (renameat(dir, tmp, dir, live.name) == 0) {
            close(fd);
            return m;
        }
    }
    if (m != MAP_FAILED)
        munmap(m, len);
    unlinkat(dir, tmp, 0);
    close(fd);
    return NULL;
}

/* Under the lock: the page, once. */
static void make(void)
{
    if (live.state != LIVE_UNTRIED)
        return;
    int state = LIVE_NONE, dir = open_folder();
    if (dir >= 0) {
        mmvi_reap_live(dir);
        size_t len = mmvi_page_round(sizeof(struct mmvi_live_page));
        live.page = make_page(dir, len);
        if (live.page) {
            live.len = len;
            live.pid = getpid();
            state = LIVE_MADE;
        }
        close(dir);
    }
    if (state == LIVE_NONE && mmvi_opt.live_dir[0] && strcmp(mmvi_opt.live_dir, "auto") &&
        !mmvi_live_dir_off(mmvi_opt.live_dir))
        mmvi_log(1, "warning: no live figures page in %s (mmvec ps will not show this process)",
                 mmvi_opt.live_dir);
    __atomic_store_n(&live.state, state, __ATOMIC_RELEASE);
}

void mmvi_live_update(void)
{
    if (__atomic_load_n(&live.state, __ATOMIC_ACQUIRE) != LIVE_MADE || live.pid != getpid())
        return;
    mmv_stats now;
    mmvi_stats_fill(&now);
    uint64_t *to = (uint64_t *)&live.page->stats;
    const uint64_t *from = (const uint64_t *)&now;
    for (size_t i = 0; i < sizeof now / sizeof *from; i++)
        __atomic_store_n(&to[i], from[i], __ATOMIC_RELAXED);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    __atomic_store_n(&live.page->updated_ns,
                     (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, __ATOMIC_RELAXED);
    __atomic_fetch_add(&live.page->updates, 1, __ATOMIC_RELAXED);
}

void mmvi_live_publish(void)
{
    if (__atomic_load_n(&live.state, __ATOMIC_ACQUIRE) == LIVE_UNTRIED &&
        !mmvi_opt.secure) {
        int cs = mmvi_nocancel_begin();
        pthread_mutex_lock(&mmvi_heap.lock);
        make();
        pthread_mutex_unlock(&mmvi_heap.lock);
        mmvi_nocancel_end(cs);
    }
    mmvi_live_update();
}

void mmvi_live_forget(void)
{
    /* The page is not mapped in the child (MADV_DONTFORK); its next large request makes its own. */
    live.page = NULL;
    live.pid = 0;
    __atomic_store_n(&live.state, LIVE_UNTRIED, __ATOMIC_RELEASE);
}

void mmvi_live_close(void)
{
    if (__atomic_load_n(&live.state, __ATOMIC_ACQUIRE) != LIVE_MADE || live.pid != getpid())
        return;
    /* The name goes; the mapping stays, for threads still running (their updates land in a
     * page nobody can find any more). The flock goes with the process. */
    int dir = open(live.folder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir >= 0) {
        unlinkat(dir, live.name, 0);
        close(dir);
    }
}
