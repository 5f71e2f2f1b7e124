/* Per-process folders, their locks, and removing the files of dead processes. Directory
 * listing uses getdents64 on a stack buffer because opendir() allocates, and this code runs
 * inside malloc. */
#define _GNU_SOURCE
#include "reaper.h"

#include "log.h"
#include "mmvec/alloc.h"
#include "namer.h"
#include "options.h"
#include "stats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct mmvi_proc mmvi_proc = {.lock_fd = -1};

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Calls fn(dirfd, name, arg) for each entry of the open directory fd but "." and "..". */
static void each_entry(int fd, void (*fn)(int, const char *, void *), void *arg)
{
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (long off = 0; off < n;) {
            struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
            off += d->d_reclen;
            if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
                fn(fd, d->d_name, arg);
        }
    }
}

struct tally {
    uint64_t files, bytes;
};

static void remove_file(int dirfd, const char *name, void *arg)
{
    struct tally *t = arg;
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || S_ISDIR(st.st_mode))
        return;
    if (unlinkat(dirfd, name, 0) == 0) {
        t->files++;
        t->bytes += (uint64_t)st.st_blocks * 512;
    }
}

/* Removes folder `name` (files only: we never make subfolders) from the directory dirfd. */
static void remove_folder(int dirfd, const char *name, struct tally *t)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        each_entry(fd, remove_file, t);
        close(fd);
    }
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* For each lock file: when its lock can be taken, its process is dead. */
static void reap_entry(int dirfd, const char *name, void *arg)
{
    struct tally *t = arg;
    int is_lock = ends_with(name, ".lock"), is_tmp = ends_with(name, ".lock.tmp");
    if (!is_lock && !is_tmp)
        return;
    if (mmvi_proc.ready && strncmp(name, mmvi_proc.name, strlen(mmvi_proc.name)) == 0 &&
        name[strlen(mmvi_proc.name)] == '.')
        return; /* our own */
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    /* A temporary lock may belong to a process between its open and its flock: only one that
     * has been there a while can be a dead process's. */
    struct stat st;
    if (is_tmp && (fstat(fd, &st) < 0 || time(NULL) - st.st_mtime < 60)) {
        close(fd);
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        char folder[64];
        size_t n = strlen(name) - (is_tmp ? strlen(".lock.tmp") : strlen(".lock"));
        if (n < sizeof folder) {
            memcpy(folder, name, n);
            folder[n] = '\0';
            remove_folder(dirfd, folder, t);
            unlinkat(dirfd, name, 0);
        }
    }
    close(fd);
}

int mmvi_reap(const char *dir, uint64_t *files, uint64_t *bytes)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct tally t = {0, 0};
    each_entry(fd, reap_entry, &t);
    close(fd);
    mmvi_stat_add(MMVI_STAT_FILES_REAPED, t.files);
    mmvi_stat_add(MMVI_STAT_BYTES_REAPED, t.bytes);
    if (files)
        *files += t.files;
    if (bytes)
        *bytes += t.bytes;
    return 0;
}

int mmvi_block_file(const char *proc, const char *uuid, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s/%s.seg", mmvi_proc.dir, proc, uuid);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int path2(char *buf, size_t size, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(buf, size, "%s/%s%s", dir, name, suffix);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Takes the lock under a temporary name first and renames it into place, so that no other
 * process can ever see a lock file that is not yet locked (and reap a live folder). */
static int make_lock(const char *dir, const char *name)
{
    char tmp[4200], final[4200];
    if (path2(tmp, sizeof tmp, dir, name, ".lock.tmp") < 0 ||
        path2(final, sizeof final, dir, name, ".lock") < 0)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0 || rename(tmp, final) < 0) {
        int err = -errno;
        unlink(tmp);
        close(fd);
        return err;
    }
    return fd;
}

int mmvi_proc_open(const char *dir)
{
    int rc = mmvi_dir_prepare(dir, 1);
    if (rc < 0)
        return rc;
    size_t n = strlen(dir);
    if (n >= sizeof mmvi_proc.dir)
        return -ENAMETOOLONG;
    if (dir != mmvi_proc.dir)
        memcpy(mmvi_proc.dir, dir, n + 1);
    mmvi_reap(dir, NULL, NULL);

    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint32_t)(uintptr_t)&r ^ (uint32_t)getpid() * 2654435761u;
    snprintf(mmvi_proc.name, sizeof mmvi_proc.name, "%ld-%08x", (long)getpid(), r);
    int fd = make_lock(dir, mmvi_proc.name);
    if (fd < 0)
        return fd;
    char folder[4200];
    path2(folder, sizeof folder, dir, mmvi_proc.name, "");
    if (mkdir(folder, 0700) < 0) {
        rc = -errno;
        path2(folder, sizeof folder, dir, mmvi_proc.name, ".lock");
        unlink(folder);
        close(fd);
        return rc;
    }
    mmvi_proc.lock_fd = fd;
    mmvi_proc.ready = 1;
    return 0;
}

void mmvi_proc_close(void)
{
    if (!mmvi_proc.ready)
        return;
    char path[4200];
    path2(path, sizeof path, mmvi_proc.dir, mmvi_proc.name, "");
    rmdir(path);
    path2(path, sizeof path, mmvi_proc.dir, mmvi_proc.name, ".lock");
    unlink(path);
    close(mmvi_proc.lock_fd);
    mmvi_proc.lock_fd = -1;
    mmvi_proc.ready = 0;
}

void mmvi_proc_forget(void)
{
    if (mmvi_proc.lock_fd >= 0)
        close(mmvi_proc.lock_fd); /* the parent still holds the lock through its own copy */
    mmvi_proc.lock_fd = -1;
    mmvi_proc.ready = 0;
    mmvi_proc.incarnation++;
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
