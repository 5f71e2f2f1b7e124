/* The heap object: its state (heap.h), start-up, the records of blocks, exit. */
#define _GNU_SOURCE
#include "heap.h"

#include "block_ops.h"
#include "cache.h"
#include "figures.h"
#include "log.h"
#include "mmvec/stats.h"
#include "options.h"
#include "paths.h"
#include "pressure.h"
#include "publish.h"
#include "reaper.h"
#include "registry.h"
#include "small.h"
#include "stats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

struct mmvi_heap mmvi_heap = {.lock = PTHREAD_MUTEX_INITIALIZER};

static long read_max_map_count(void)
{
    char buf[32];
    long v = mmvi_os_read_file("/proc/sys/vm/max_map_count", buf, sizeof buf) == 0
                 ? strtol(buf, NULL, 10) : 0;
    return v > 0 ? v : 65530; /* the kernel's default */
}

static void say_dir_unusable(const char *dir, int err)
{
    /* The same kind as fallback(): the user hears about it once, with the reason. */
    mmvi_warn_once(MMVI_WARN_FALLBACK,
                   "segment directory %s unusable (%s); large blocks stay in RAM", dir,
                   strerror(-err));
}

/* dir made absolute against the current directory, into out. */
static int absolute(const char *dir, size_t len, char *out, size_t size)
{
    char cwd[4096];
    int n = dir[0] == '/' || !getcwd(cwd, sizeof cwd)
                ? snprintf(out, size, "%.*s", (int)len, dir)
                : snprintf(out, size, "%s/%.*s", cwd, (int)len, dir);
    return n >= 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* MMVEC_DIR (or the default) as absolute paths, resolved once: a relative one keeps meaning the
 * folder it meant at start, whatever chdir the program makes before its first file. Several
 * directories are separated by ':' (as in PATH); empty ones are passed over. */
static int resolve_dirs(void)
{
    char def[4096];
    const char *list = mmvi_opt.dir;
    if (!list[0]) {
        int rc = mmvi_default_dir_path(def, sizeof def);
        if (rc < 0)
            return rc;
        list = def;
    }
    mmvi_heap.ndirs = 0;
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && mmvi_heap.ndirs == MMVI_MAX_DIRS) {
            mmvi_log(1, "warning: MMVEC_DIR names more than %d directories: the rest are not used",
                     MMVI_MAX_DIRS);
            break;
        }
        if (len) {
            int rc = absolute(p, len, mmvi_heap.dirs[mmvi_heap.ndirs], sizeof mmvi_heap.dirs[0]);
            if (rc < 0)
                return rc;
            mmvi_heap.ndirs++;
        }
        p += len + (end != NULL);
    }
    return mmvi_heap.ndirs ? 0 : -ENOENT;
}

/* First large request: reserve the address space, read the memory limit and the map limit.
 * The process folder is made at the first file (mmvi_heap_folder): a program whose heap fits
 * in RAM makes none. Under the lock. */
static void heap_init(void)
{
    if (mmvi_opt.secure) {
        mmvi_warn_once(MMVI_WARN_SECURE, "setuid/setgid program: MMVEC_* ignored, no files made");
        mmvi_heap.state = MMVI_HEAP_UNUSABLE;
        mmvi_heap.init_errno = EPERM;
        return;
    }
    int rc = resolve_dirs();
    if (rc == 0)
        rc = mmvi_registry_init(mmvi_opt.reserve_bytes);
    if (rc < 0) {
        say_dir_unusable(mmvi_opt.dir[0] ? mmvi_opt.dir : mmvi_heap.dirs[0], rc);
        mmvi_heap.state = MMVI_HEAP_UNUSABLE;
        mmvi_heap.init_errno = -rc;
        return;
    }
    mmvi_pressure_init();
    long maps = read_max_map_count();
    long spare = maps / 8 > 1024 ? maps / 8 : 1024;
    mmvi_heap.max_blocks = maps > spare ? (size_t)(maps - spare) / 2 : 0;
    mmvi_heap.state = MMVI_HEAP_READY;
    if (mmvi_opt.placement == MMVI_PLACE_FILE) /* say at once when the directory is unusable */
        mmvi_heap_folder();
}

static int in_ram(const char *dir)
{
    struct statfs fs;
    return statfs(dir, &fs) == 0 &&
           (fs.f_type == TMPFS_MAGIC || fs.f_type == 0x858458f6 /* ramfs */);
}

/* Directory d's folder: this process's first file there goes into the directory resolved at
 * start; a fork child's, into a folder of its own in the heap folder already known. */
static int open_dir(int d)
{
    struct mmvi_proc_dir *pd = &mmvi_proc.d[d];
    if (pd->ready || mmvi_heap.dir_err[d])
        return pd->ready ? 0 : mmvi_heap.dir_err[d];
    int rc = pd->dir[0] ? mmvi_proc_reopen(d) : mmvi_proc_open(d, mmvi_heap.dirs[d]);
    if (rc < 0) {
        mmvi_heap.dir_err[d] = rc;
        if (mmvi_heap.ndirs > 1)
            mmvi_log(1, "warning: segment directory %s unusable (%s); blocks go to the others",
                     pd->dir[0] ? pd->dir : mmvi_heap.dirs[d], strerror(-rc));
        return rc;
    }
    if (in_ram(pd->dir))
        mmvi_warn_once(MMVI_WARN_TMPFS,
                       "segment directory %s is in RAM (tmpfs): large blocks will not relieve "
                       "memory; set MMVEC_DIR to a disk",
                       mmvi_heap.dirs[d]);
    return 0;
}

int mmvi_heap_folder(void)
{
    if (mmvi_heap.state != MMVI_HEAP_READY)
        return -(mmvi_heap.init_errno ? mmvi_heap.init_errno : ENOMEM);
    int first_err = 0, ready = 0;
    for (int d = 0; d < mmvi_heap.ndirs; d++) {
        int rc = open_dir(d);
        ready += rc == 0;
        if (rc < 0 && !first_err)
            first_err = rc;
    }
    if (ready)
        return 0;
    say_dir_unusable(mmvi_heap.ndirs > 1 ? mmvi_opt.dir : mmvi_proc.d[0].dir[0]
                                                              ? mmvi_proc.d[0].dir
                                                              : mmvi_heap.dirs[0],
                     first_err);
    mmvi_heap.state = MMVI_HEAP_UNUSABLE;
    mmvi_heap.init_errno = -first_err;
    return first_err;
}

int mmvi_heap_dirs_by_room(int order[MMVI_MAX_DIRS])
{
    uint64_t room[MMVI_MAX_DIRS];
    int n = 0;
    for (int d = 0; d < mmvi_heap.ndirs; d++)
        if (__atomic_load_n(&mmvi_proc.d[d].ready, __ATOMIC_RELAXED))
            order[n++] = d;
    if (n < 2)
        return n;
    uint64_t best = 0;
    for (int i = 0; i < n; i++) {
        struct statvfs v;
        room[i] = statvfs(mmvi_proc.d[order[i]].dir, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize
                                                               : 0;
        best = room[i] > best ? room[i] : best;
    }
    /* Rooms within 1/32 of the best count as equal: the first of them is chosen in turn. */
    for (int i = 1; i < n; i++) /* insertion sort, most room first */
        for (int j = i; j > 0 && room[j] > room[j - 1]; j--) {
            uint64_t r = room[j];
            int o = order[j];
            room[j] = room[j - 1], order[j] = order[j - 1];
            room[j - 1] = r, order[j - 1] = o;
        }
    int ties = 1;
    while (ties < n && room[ties] >= best - best / 32)
        ties++;
    unsigned turn = __atomic_fetch_add(&mmvi_heap.dir_turn, 1, __ATOMIC_RELAXED) % (unsigned)ties;
    int chosen = order[turn];
    memmove(order + 1, order, turn * sizeof *order);
    order[0] = chosen;
    return n;
}

/* Tears down blocks that left the cache: files and mappings first, without the lock (dropping
 * dirty pages is the slow part), then their records under it. */
void mmvi_heap_teardown(struct mmvi_evicted *ev)
{
    for (struct mmvi_block *b = ev->head; b; b = b->cache_next) {
        if (mmvi_block_unlink(b) < 0)
            mmvi_block_give_space(b);
        mmvi_block_unmap(b);
    }
    if (!ev->head)
        return;
    pthread_mutex_lock(&mmvi_heap.lock);
    for (struct mmvi_block *b = ev->head, *next; b; b = next) {
        next = b->cache_next;
        mmvi_block_forget(b);
        mmvi_heap.nblocks--;
    }
    pthread_mutex_unlock(&mmvi_heap.lock);
}

/* A new record with its space reserved, or NULL with *err (E2BIG: more than the whole
 * reservation, which no memory of any kind could hold either). Under the lock. */
struct mmvi_block *mmvi_heap_new_record(size_t size, size_t align, int *err)
{
    size_t span = mmvi_granule_round(size);
    if (!span || span > mmvi_route.reserve_size) {
        *err = E2BIG;
        return NULL;
    }
    if (mmvi_heap.nblocks >= mmvi_heap.max_blocks) {
        *err = ENOMEM;
        return NULL;
    }
    struct mmvi_block *b = mmvi_je_calloc(1, sizeof *b);
    uintptr_t addr = span && b ? mmvi_space_take(span, align) : 0;
    if (!addr) {
        mmvi_je_free(b);
        *err = ENOMEM;
        return NULL;
    }
    b->addr = addr;
    b->size = size;
    b->span = span;
    b->align = align;
    b->fork_epoch = mmvi_heap.fork_epoch;
    mmvi_heap.nblocks++;
    return b;
}

void mmvi_heap_publish(struct mmvi_block *b)
{
    b->state = MMVI_BLOCK_LIVE;
    b->prev = NULL;
    b->next = mmvi_heap.blocks;
    if (mmvi_heap.blocks)
        mmvi_heap.blocks->prev = b;
    mmvi_heap.blocks = b;
    mmvi_registry_set(b->addr, b->span, b);
}

/* Takes the lock and makes sure the large path is set up. Returns 0, or the errno that keeps
 * large blocks off (the lock is then released). */
int mmvi_heap_enter(struct mmvi_evicted *ev)
{
    pthread_mutex_lock(&mmvi_heap.lock);
    if (mmvi_heap.state == MMVI_HEAP_UNTRIED)
        heap_init();
    if (mmvi_heap.state != MMVI_HEAP_READY) {
        int err = mmvi_heap.state == MMVI_HEAP_CLOSED ? ENOMEM : mmvi_heap.init_errno;
        pthread_mutex_unlock(&mmvi_heap.lock);
        return err ? err : ENOMEM;
    }
    mmvi_cache_decay(mmvi_now_ms(), ev);
    mmvi_fork_settle(0);
    return 0;
}

/* ---- exit ------------------------------------------------------------------------------------ */

/* At exit every file of ours goes (the mappings stay valid until the process is gone), the
 * folder and its lock too; later large requests, from threads still running, stay in RAM. */
/* The stats go only to the stderr saved at start: the program may have closed that descriptor
 * and opened a file of its own under its number. */
static void print_stats(void)
{
    struct stat st;
    int fd = mmvi_opt.stats_fd;
    if (fd >= 0 && fstat(fd, &st) == 0 && (unsigned long)st.st_dev == mmvi_opt.stats_dev &&
        (unsigned long)st.st_ino == mmvi_opt.stats_ino)
        mmvi_stats_print_at_exit(fd);
}

__attribute__((destructor)) static void mmvi_at_exit(void)
{
    int cs = mmvi_nocancel_begin();
    struct mmvi_evicted ev = {NULL};
    pthread_mutex_lock(&mmvi_heap.lock);
    if (mmvi_heap.state == MMVI_HEAP_READY) {
        mmvi_cache_drain(&ev);
        for (struct mmvi_block *b = mmvi_heap.blocks; b; b = b->next)
            if (b->state == MMVI_BLOCK_LIVE)
                mmvi_block_unlink(b);
        mmvi_heap.state = MMVI_HEAP_CLOSED;
    }
    pthread_mutex_unlock(&mmvi_heap.lock);
    mmvi_heap_teardown(&ev);
    pthread_mutex_lock(&mmvi_heap.lock);
    mmvi_proc_close();
    /* Children that ended with _exit (multiprocessing workers, forked servers) ran no exit
     * handler: their folders are unlocked now, so they go with ours. */
    mmvi_reap(NULL, NULL, NULL);
    pthread_mutex_unlock(&mmvi_heap.lock);
    mmvi_live_close();
    if (mmvi_opt.stats)
        print_stats();
    mmvi_nocancel_end(cs);
}
