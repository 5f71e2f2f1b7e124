/* The process folder and the reaper (see reaper.h for the layout and the rules). Directory
 * listing is mmvi_os_each_entry (getdents64 on a stack buffer: opendir() allocates, and this
 * code runs inside malloc). */
#define _GNU_SOURCE
#include "reaper.h"

#include "figures.h"
#include "log.h"
#include "mmvec/alloc.h"
#include "paths.h"
#include "options.h"
#include "stats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

struct mmvi_proc mmvi_proc = {.d = {[0 ... MMVI_MAX_DIRS - 1] = {.lock_fd = -1}}};

#define HEAP_PREFIX "mmvec-heap-"

/* ---- no descriptor kept between calls --------------------------------------------------------
 * Programs count their descriptors (CPython's test_subprocess lists a child's open descriptors,
 * daemons closefrom(3)), so mmvec holds none between calls: the folders are opened for each
 * operation by their absolute path and checked to be the very folders we made (device and
 * inode), and the lock is held by a one-page mapping of the lock file, which keeps its open file
 * description (and so its flock) alive after the descriptor is closed. */

#define LOCK_MAP 4096

static int self_open(const struct mmvi_proc_dir *pd);

/* Records what fd is, then closes it. */
static int remember(int fd, struct mmvi_file_id *id)
{
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0) {
        id->dev = st.st_dev;
        id->ino = st.st_ino;
    }
    mmvi_os_close(fd);
    return rc;
}

/* The folder at path, if it is still the one id names. A descriptor or a negative errno. */
static int open_checked(const char *path, const struct mmvi_file_id *id)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || st.st_dev != id->dev || st.st_ino != id->ino) {
        mmvi_os_close(fd);
        return -ESTALE; /* another folder took its place: not ours */
    }
    return fd;
}

static int heap_open(const struct mmvi_proc_dir *pd)
{
    return open_checked(pd->dir, &pd->heap);
}

/* Directory d's state, or NULL for an index out of range. */
static struct mmvi_proc_dir *dir_of(int d)
{
    return d >= 0 && d < MMVI_MAX_DIRS ? &mmvi_proc.d[d] : NULL;
}

int mmvi_proc_self_open(int d)
{
    struct mmvi_proc_dir *pd = dir_of(d);
    return pd && pd->ready ? self_open(pd) : -ENOENT;
}

static int self_open(const struct mmvi_proc_dir *pd)
{
    char path[4200];
    int n = snprintf(path, sizeof path, "%s/%s", pd->dir, mmvi_proc.name);
    if (n < 0 || (size_t)n >= sizeof path)
        return -ENAMETOOLONG;
    return open_checked(path, &pd->self);
}

/* Holds the flock of the open lock descriptor fd without keeping fd: a mapping of the file,
 * not inherited by fork children (their lock would outlive us), gone at exec and exit like a
 * close-on-exec descriptor. Where the file cannot be mapped, fd is kept instead, high. */
static void hold_lock(struct mmvi_proc_dir *pd, int fd)
{
    void *m = mmap(NULL, LOCK_MAP, PROT_NONE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED && madvise(m, LOCK_MAP, MADV_DONTFORK) == 0) {
        pd->lock_map = m;
        mmvi_os_close(fd);
        return;
    }
    if (m != MAP_FAILED)
        munmap(m, LOCK_MAP);
    struct rlimit rl;
    long floor = 512;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long)rl.rlim_cur * 3 / 4 < floor)
        floor = (long)rl.rlim_cur * 3 / 4;
    int hi = floor > 3 ? fcntl(fd, F_DUPFD_CLOEXEC, (int)floor) : -1;
    if (hi >= 0)
        mmvi_os_close(fd);
    pd->lock_fd = hi >= 0 ? hi : fd;
}

static void drop_lock(struct mmvi_proc_dir *pd)
{
    if (pd->lock_map)
        munmap(pd->lock_map, LOCK_MAP);
    if (pd->lock_fd >= 0)
        mmvi_os_close(pd->lock_fd);
    pd->lock_map = NULL;
    pd->lock_fd = -1;
}

/* ---- names ----------------------------------------------------------------------------------- */

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* 8 hex digits naming this machine: a hash (FNV-1a) of its node name, read once. */
static const char *host_tag(void)
{
    static char tag[9];
    if (!tag[0]) {
        struct utsname u;
        uint32_t h = 2166136261u;
        if (uname(&u) == 0)
            for (const char *c = u.nodename; *c; c++)
                h = (h ^ (unsigned char)*c) * 16777619u;
        snprintf(tag, sizeof tag, "%08x", h);
    }
    return tag;
}

/* Does name[0..n) read "<host>-<pid>-<rand>", with <host> this machine's? */
static int is_proc_name(const char *name, size_t n)
{
    if (n < 8 + 1 + 1 + 1 + 8 || name[8] != '-')
        return 0;
    const char *pid = name + 9, *end = memchr(pid, '-', n - 9);
    size_t digits = end ? (size_t)(end - pid) : 0;
    if (!end || digits < 1 || digits > 10 || (size_t)(end - name) + 1 + 8 != n ||
        !is_hex(end + 1, 8))
        return 0;
    for (size_t i = 0; i < digits; i++)
        if (pid[i] < '0' || pid[i] > '9')
            return 0;
    return memcmp(name, host_tag(), 8) == 0;
}

/* Does name read "<uuid>.seg", the only files we make in a process folder? */
static int is_seg_name(const char *name)
{
    static const int dash[] = {8, 13, 18, 23};
    if (strlen(name) != 36 + 4 || strcmp(name + 36, ".seg") != 0)
        return 0;
    for (int i = 0, d = 0; i < 36; i++) {
        if (d < 4 && i == dash[d]) {
            if (name[i] != '-')
                return 0;
            d++;
        } else if (!is_hex(name + i, 1)) {
            return 0;
        }
    }
    return 1;
}

static int fmt(char *buf, size_t size, const char *f, const char *a, const char *b)
{
    int n = snprintf(buf, size, f, a, b);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- listing and removing -------------------------------------------------------------------- */

struct tally {
    uint64_t files, bytes;
};

/* A regular file of ours (not a link, a folder or another user's). */
static int owned_file(int dirfd, const char *name, struct stat *st)
{
    return fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode) &&
           st->st_uid == geteuid();
}

static void remove_seg(int dirfd, const char *name, void *arg)
{
    struct tally *t = arg;
    struct stat st;
    if (!strcmp(name, MMVI_FORK_LOCK) && owned_file(dirfd, name, &st)) {
        unlinkat(dirfd, name, 0); /* ours, but no block: not counted */
        return;
    }
    if (!is_seg_name(name) || !owned_file(dirfd, name, &st))
        return;
    if (unlinkat(dirfd, name, 0) == 0) {
        t->files++;
        t->bytes += (uint64_t)st.st_blocks * 512;
    }
}

/* Removes a dead process's folder: its .seg files, then the folder if nothing else is left in
 * it. 0 when the folder is gone. */
static int remove_folder(int dirfd, const char *name, struct tally *t)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    struct stat st;
    int ours = fstat(fd, &st) == 0 && st.st_uid == geteuid();
    if (ours)
        mmvi_os_each_entry(fd, remove_seg, t);
    mmvi_os_close(fd);
    if (!ours)
        return -EPERM; /* someone else's folder under our name: not ours to remove */
    return unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -errno;
}

/* If name is "<proc><suffix>" or "<proc><suffix>.tmp" (a file being made) of a dead process
 * of this machine, a regular file of ours, returns it open with its lock taken, and <proc> in
 * proc (size 64); else -1. A lock that can be taken means its process is dead. */
static int dead_file(int dirfd, const char *name, const char *suffix, char *proc)
{
    size_t n = strlen(name), k = strlen(suffix);
    int is_tmp = n > k + 4 && strcmp(name + n - 4, ".tmp") == 0 &&
                 strncmp(name + n - 4 - k, suffix, k) == 0;
    int is_final = !is_tmp && n > k && strcmp(name + n - k, suffix) == 0;
    size_t base = n - (is_tmp ? k + 4 : is_final ? k : 0);
    if ((!is_final && !is_tmp) || base >= 64 || !is_proc_name(name, base))
        return -1;
    if (mmvi_proc.named && strlen(mmvi_proc.name) == base && !memcmp(name, mmvi_proc.name, base))
        return -1; /* our own */
    struct stat st;
    if (!owned_file(dirfd, name, &st))
        return -1;
    /* A temporary file may belong to a process between its open and its flock: only one that
     * has been there a while can be a dead process's. */
    if (is_tmp && time(NULL) - st.st_mtime < 60)
        return -1;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        mmvi_os_close(fd);
        return -1;
    }
    memcpy(proc, name, base);
    proc[base] = '\0';
    return fd;
}

/* For each lock file of a dead process: its folder, then the lock. */
static void reap_entry(int dirfd, const char *name, void *arg)
{
    char folder[64];
    int fd = dead_file(dirfd, name, ".lock", folder);
    if (fd < 0)
        return;
    /* The lock goes only with its folder: a folder someone put a file into keeps its lock, so
     * that it is never left without one. */
    if (remove_folder(dirfd, folder, arg) == 0)
        unlinkat(dirfd, name, 0);
    mmvi_os_close(fd);
}

/* A dead process's live figures page (publish.c): its lock is the page's own. */
static void reap_live_entry(int dirfd, const char *name, void *arg)
{
    char proc[64];
    int fd = dead_file(dirfd, name, MMVI_LIVE_SUFFIX, proc);
    (void)arg;
    if (fd < 0)
        return;
    unlinkat(dirfd, name, 0);
    mmvi_os_close(fd);
}

void mmvi_reap_live(int dirfd)
{
    mmvi_os_each_entry(dirfd, reap_live_entry, NULL);
}

static void reap_fd(int heap_fd, uint64_t *files, uint64_t *bytes)
{
    struct tally t = {0, 0};
    mmvi_os_each_entry(heap_fd, reap_entry, &t);
    mmvi_stat_add(MMVI_STAT_FILES_REAPED, t.files);
    mmvi_stat_add(MMVI_STAT_BYTES_REAPED, t.bytes);
    if (files)
        *files += t.files;
    if (bytes)
        *bytes += t.bytes;
}

/* ---- the heap folder ------------------------------------------------------------------------- */

/* dir made absolute (a relative one against the current directory, now) into buf. */
static int absolute(const char *dir, char *buf, size_t size)
{
    if (dir[0] == '/')
        return fmt(buf, size, "%s%s", dir, "");
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    return fmt(buf, size, "%s/%s", strcmp(cwd, "/") ? cwd : "", dir);
}

/* Opens D's heap folder: made when `create`, else -ENOENT when missing. It must be a real
 * folder of ours: a symlink or another user's is refused (-EPERM), whoever owns D. */
static int open_heap(const char *dir, int create, char *path, size_t size, int *out)
{
    char heap[32];
    snprintf(heap, sizeof heap, HEAP_PREFIX "%u", (unsigned)geteuid());
    int rc = absolute(dir, path, size);
    if (rc == 0 && create)
        rc = mmvi_dir_prepare(path, 0);
    int dfd = rc < 0 ? -1 : open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rc < 0 || dfd < 0)
        return rc < 0 ? rc : -errno;
    if (create && mkdirat(dfd, heap, 0700) < 0 && errno != EEXIST)
        rc = -errno;
    int fd = rc < 0 ? -1 : openat(dfd, heap, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rc == 0 && fd < 0)
        rc = errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
    mmvi_os_close(dfd);
    struct stat st;
    if (rc == 0 && (fstat(fd, &st) < 0 || st.st_uid != geteuid()))
        rc = -EPERM;
    if (rc == 0) {
        size_t n = strlen(path);
        rc = fmt(path + n, size - n, "/%s%s", heap, "");
    }
    if (rc < 0) {
        if (fd >= 0)
            mmvi_os_close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

/* Takes the lock under a temporary name first and renames it into place, so that no other
 * process can ever see a lock file that is not yet locked (and reap a live folder). */
static int make_lock(struct mmvi_proc_dir *pd, int heap, const char *name)
{
    char tmp[64], final[64];
    fmt(tmp, sizeof tmp, "%s%s", name, ".lock.tmp");
    fmt(final, sizeof final, "%s%s", name, ".lock");
    int fd = openat(heap, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0 || renameat(heap, tmp, heap, final) < 0) {
        int err = -errno;
        unlinkat(heap, tmp, 0);
        mmvi_os_close(fd);
        return err;
    }
    hold_lock(pd, fd);
    return 0;
}

void mmvi_proc_make_name(char *buf, size_t size)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint32_t)(uintptr_t)&r ^ (uint32_t)getpid() * 2654435761u;
    snprintf(buf, size, "%s-%ld-%08x", host_tag(), (long)getpid(), r);
}

/* This process's folder and lock, in heap folder pd open as heap; the process's name is made
 * at its first folder, and kept for the others. */
static int make_own(struct mmvi_proc_dir *pd, int heap)
{
    if (!mmvi_proc.named) {
        mmvi_proc_make_name(mmvi_proc.name, sizeof mmvi_proc.name);
        mmvi_proc.named = 1;
    }
    int rc = make_lock(pd, heap, mmvi_proc.name);
    if (rc < 0)
        return rc;
    int fd = -1;
    if (mkdirat(heap, mmvi_proc.name, 0700) < 0 ||
        (fd = openat(heap, mmvi_proc.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        (rc = remember(fd, &pd->self)) < 0) {
        rc = rc < 0 ? rc : -errno;
        unlinkat(heap, mmvi_proc.name, AT_REMOVEDIR);
        char lock[64];
        fmt(lock, sizeof lock, "%s%s", mmvi_proc.name, ".lock");
        unlinkat(heap, lock, 0);
        drop_lock(pd);
        return rc;
    }
    __atomic_store_n(&pd->ready, 1, __ATOMIC_RELAXED); /* read by mmvi_heap_dirs_by_room */
    return 0;
}

int mmvi_proc_open(int d, const char *dir)
{
    struct mmvi_proc_dir *pd = dir_of(d);
    if (!pd)
        return -EINVAL;
    int fd, rc = open_heap(dir, 1, pd->dir, sizeof pd->dir, &fd);
    if (rc < 0)
        return rc;
    struct stat st;
    if (fstat(fd, &st) == 0) {
        pd->heap.dev = st.st_dev;
        pd->heap.ino = st.st_ino;
        reap_fd(fd, NULL, NULL);
        rc = make_own(pd, fd);
    } else {
        rc = -errno;
    }
    mmvi_os_close(fd);
    return rc;
}

/* Is the heap folder open as fd another user's? A fork child that dropped its privileges
 * (a server's worker: setuid after fork) can no longer make its folder in its parent's. */
static int foreign(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_uid != geteuid();
}

int mmvi_proc_reopen(int d)
{
    struct mmvi_proc_dir *pd = dir_of(d);
    int fd = pd ? heap_open(pd) : -EINVAL;
    if (pd && (fd == -EACCES || (fd >= 0 && foreign(fd)))) {
        /* The same directory, the heap folder of the user we are now: D/mmvec-heap-<euid>. */
        char dir[4096];
        fmt(dir, sizeof dir, "%s%s", pd->dir, "");
        char *slash = strrchr(dir, '/');
        if (fd >= 0)
            mmvi_os_close(fd);
        if (!slash || slash == dir)
            return -EACCES;
        *slash = '\0';
        return mmvi_proc_open(d, dir);
    }
    if (fd < 0)
        return fd;
    int rc = make_own(pd, fd);
    mmvi_os_close(fd);
    return rc;
}

void mmvi_proc_close(void)
{
    for (int d = 0; d < MMVI_MAX_DIRS; d++) {
        struct mmvi_proc_dir *pd = &mmvi_proc.d[d];
        if (!pd->ready)
            continue;
        mmvi_proc_unlinkat(d, MMVI_FORK_LOCK); /* if a fork made it */
        int heap = heap_open(pd);
        char lock[64];
        fmt(lock, sizeof lock, "%s%s", mmvi_proc.name, ".lock");
        if (heap >= 0 && (unlinkat(heap, mmvi_proc.name, AT_REMOVEDIR) == 0 || errno == ENOENT))
            unlinkat(heap, lock, 0);
        if (heap >= 0)
            mmvi_os_close(heap);
        drop_lock(pd);
        __atomic_store_n(&pd->ready, 0, __ATOMIC_RELAXED);
    }
}

void mmvi_proc_forget(void)
{
    /* The lock mappings are not in the child (MADV_DONTFORK); a lock descriptor is the child's
     * copy: closing it leaves the parent's flock alone. */
    for (int d = 0; d < MMVI_MAX_DIRS; d++) {
        struct mmvi_proc_dir *pd = &mmvi_proc.d[d];
        pd->lock_map = NULL;
        if (pd->lock_fd >= 0)
            mmvi_os_close(pd->lock_fd);
        pd->lock_fd = -1;
        __atomic_store_n(&pd->ready, 0, __ATOMIC_RELAXED);
    }
    mmvi_proc.named = 0;
}

int mmvi_proc_openat(int d, const char *file, int flags, mode_t mode)
{
    int dir = mmvi_proc_self_open(d);
    if (dir < 0)
        return dir;
    int fd = openat(dir, file, flags | O_NOFOLLOW | O_CLOEXEC, mode);
    int rc = fd < 0 ? -errno : fd;
    mmvi_os_close(dir);
    return rc;
}

int mmvi_proc_unlinkat(int d, const char *file)
{
    int dir = mmvi_proc_self_open(d);
    if (dir < 0)
        return dir;
    int rc = unlinkat(dir, file, 0) < 0 ? -errno : 0;
    mmvi_os_close(dir);
    return rc;
}

int mmvi_reap(const char *dir, uint64_t *files, uint64_t *bytes)
{
    if (!dir) {
        for (int d = 0; d < MMVI_MAX_DIRS; d++) {
            if (!mmvi_proc.d[d].dir[0])
                continue;
            int fd = heap_open(&mmvi_proc.d[d]);
            if (fd < 0)
                continue;
            reap_fd(fd, files, bytes);
            mmvi_os_close(fd);
        }
        return 0;
    }
    char path[4096];
    int fd, rc = open_heap(dir, 0, path, sizeof path, &fd);
    if (rc == -ENOENT) { /* no heap folder: nothing of ours was ever here */
        struct stat st;
        return stat(dir, &st) == 0 ? 0 : -errno;
    }
    if (rc < 0)
        return rc;
    reap_fd(fd, files, bytes);
    mmvi_os_close(fd);
    return 0;
}

int mmvi_block_file(int d, const char *proc, const char *uuid, char *buf, size_t size)
{
    const struct mmvi_proc_dir *pd = dir_of(d);
    int n = pd ? snprintf(buf, size, "%s/%s/%s.seg", pd->dir, proc, uuid) : -1;
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int mmv_clean(const char *dir, uint64_t *files, uint64_t *bytes)
{
    char def[4096];
    if (files)
        *files = 0;
    if (bytes)
        *bytes = 0;
    if (!dir) {
        int rc = mmvi_default_dir_path(def, sizeof def);
        if (rc < 0)
            return rc;
        dir = def;
    }
    return mmvi_reap(dir, files, bytes);
}
