/* System-call wrappers: the only place that knows about fallocate fallbacks and map flags. */
#define _GNU_SOURCE
#include "os.h"

#include "log.h"
#include "options.h"
#include "stats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

size_t mmvi_page_size(void)
{
    static size_t page; /* threads racing here all store the same value */
    size_t v = __atomic_load_n(&page, __ATOMIC_RELAXED);
    if (v == 0) {
        long p = sysconf(_SC_PAGESIZE);
        v = p > 0 ? (size_t)p : 4096;
        __atomic_store_n(&page, v, __ATOMIC_RELAXED);
    }
    return v;
}

size_t mmvi_page_round(size_t n)
{
    size_t mask = mmvi_page_size() - 1;
    if (n > SIZE_MAX - mask)
        return 0;
    return (n + mask) & ~mask;
}

void mmvi_os_close(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
}

int mmvi_os_open(const char *path, int *fd)
{
    int f = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0)
        return -errno;
    *fd = f;
    return 0;
}

int mmvi_os_create(const char *path, size_t size, int *fd)
{
    int f = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f < 0)
        return -errno;
    int rc = mmvi_os_resize(f, 0, size);
    if (rc < 0) {
        unlink(path);
        mmvi_os_close(f);
        return rc;
    }
    *fd = f;
    return 0;
}

int mmvi_os_resize(int fd, size_t old_size, size_t size)
{
    if (size > (size_t)INT64_MAX)
        return -EFBIG;
    if (size <= old_size) {
        if (ftruncate(fd, (off_t)size) < 0) {
            mmvi_stat_inc(MMVI_STAT_TRUNCATE_FAILED);
            return -errno;
        }
        return 0;
    }
    /* fallocate both reserves the blocks and extends the file size. A signal may interrupt a
     * large one: that is no failure, it starts again. */
    int rc;
    do
        rc = fallocate(fd, 0, (off_t)old_size, (off_t)(size - old_size));
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return 0;
    int err = errno;
    if (err == EOPNOTSUPP || err == ENOSYS) {
        /* The filesystem cannot reserve space (FUSE, NFS before 4.2): a sparse file is the best
         * it offers, and a full disk becomes a SIGBUS when a page is first written. */
        mmvi_stat_inc(MMVI_STAT_SPARSE_FILES);
        if (mmvi_opt.strict)
            return -EOPNOTSUPP;
        mmvi_warn_once(MMVI_WARN_SPARSE, "the filesystem cannot reserve disk space (no "
                       "fallocate): files are sparse, and a full disk would end the program "
                       "with SIGBUS (MMVEC_STRICT=1 refuses such files)");
        if (ftruncate(fd, (off_t)size) == 0)
            return 0;
        err = errno;
        mmvi_stat_inc(MMVI_STAT_TRUNCATE_FAILED);
    } else {
        mmvi_stat_inc(MMVI_STAT_FALLOCATE_FAILED);
        /* A failed fallocate may have allocated part of the range: give it back. */
        if (ftruncate(fd, (off_t)old_size) < 0)
            mmvi_stat_inc(MMVI_STAT_TRUNCATE_FAILED);
    }
    return -err;
}

int mmvi_os_map(int fd, size_t off, size_t len, void *at, int private_cow, void **out)
{
    int flags = (private_cow ? MAP_PRIVATE : MAP_SHARED) | (at ? MAP_FIXED : 0);
    void *p = mmap(at, len, PROT_READ | PROT_WRITE, flags, fd, (off_t)off);
    if (p == MAP_FAILED) {
        mmvi_stat_inc(MMVI_STAT_MAP_FAILED);
        return -errno;
    }
    *out = p;
    return 0;
}

int mmvi_os_unmap(void *p, size_t len)
{
    if (munmap(p, len) < 0) {
        mmvi_stat_inc(MMVI_STAT_UNMAP_FAILED);
        return -errno;
    }
    return 0;
}

int mmvi_os_remap(void *p, size_t old_len, size_t new_len, void *to, void **out)
{
    void *q = to ? mremap(p, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, to)
                 : mremap(p, old_len, new_len, MREMAP_MAYMOVE);
    if (q == MAP_FAILED) {
        mmvi_stat_inc(MMVI_STAT_MAP_FAILED);
        return -errno;
    }
    *out = q;
    return 0;
}


int mmvi_os_remap_in_place(void *p, size_t old_len, size_t new_len)
{
    if (mremap(p, old_len, new_len, 0) == MAP_FAILED)
        return -errno;
    return 0;
}

void mmvi_os_advise(void *p, size_t len, int advice)
{
    int saved = errno;
    (void)madvise(p, len, advice);
    errno = saved;
}

/* ---- Appended for segments and vectors (core). ---- */
#include <sys/stat.h>

int mmvi_os_file_info(int fd, mmvi_file_info *out)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    out->dev = (unsigned long long)st.st_dev;
    out->ino = (unsigned long long)st.st_ino;
    out->size = st.st_size > 0 ? (size_t)st.st_size : 0;
    out->regular = S_ISREG(st.st_mode);
    return 0;
}

int mmvi_os_pread_all(int fd, void *buf, size_t len, size_t off)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ENODATA;
        p += n;
        off += (size_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int mmvi_os_pwrite_all(int fd, const void *buf, size_t len, size_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        off += (size_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int mmvi_os_unlink(const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

int mmvi_os_reserve(int fd, size_t old_size, size_t size)
{
    if (size <= old_size || size > MMVI_WRITE_RESERVE_MAX)
        return mmvi_os_resize(fd, old_size, size);
    static char zeros[MMVI_WRITE_RESERVE_MAX]; /* never written: .bss, costs no RAM or file */
    for (size_t off = old_size; off < size;) {
        size_t n = size - off < sizeof zeros ? size - off : sizeof zeros;
        int rc = mmvi_os_pwrite_all(fd, zeros, n, off);
        if (rc < 0) {
            if (ftruncate(fd, (off_t)old_size) < 0) /* give back what was written */
                mmvi_stat_inc(MMVI_STAT_TRUNCATE_FAILED);
            return rc;
        }
        off += n;
    }
    return 0;
}

/* Sizes an open file and maps it; the caller closes fd. */
static int size_and_map(int fd, size_t size, mmvi_file_info *info, void **out)
{
    mmvi_file_info fi = {0};
    int rc = mmvi_os_file_info(fd, &fi);
    if (rc < 0)
        return rc;
    if (!fi.regular)
        return -EINVAL;
    size_t old = fi.size;
    rc = old == size ? 0 : mmvi_os_reserve(fd, old, size);
    if (rc < 0)
        return rc;
    rc = mmvi_os_map(fd, 0, size, NULL, 0, out);
    if (rc < 0 && old < size)
        (void)mmvi_os_resize(fd, size, old); /* give back what we reserved */
    fi.size = size;
    if (rc == 0 && info)
        *info = fi;
    return rc;
}

/* A new empty file, without mmvi_os_create's ftruncate(fd, 0): on ext4 a truncate to 0 arms
 * auto_da_alloc, which allocates the blocks at close, and freeing them at unlink then costs a
 * TRIM (~0.1-2 ms on a discard mount) instead of ~4 us. */
static int create_empty(const char *path, int *fd)
{
    int f = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f < 0)
        return -errno;
    *fd = f;
    return 0;
}

int mmvi_os_map_file(const char *path, int create, size_t size, mmvi_file_info *info, void **out)
{
    if (!path || size == 0 || !out)
        return -EINVAL;
    int fd = -1;
    int rc = create ? create_empty(path, &fd) : mmvi_os_open(path, &fd);
    if (rc < 0)
        return rc;
    rc = size_and_map(fd, size, info, out);
    if (rc < 0 && create)
        unlink(path);
    mmvi_os_close(fd);
    return rc;
}

/* Shrinking cuts the file first: until the mapping shrinks too, its tail is never touched. */
static int resize_fd_mapped(int fd, void *p, size_t old, size_t size, void **out)
{
    int rc = mmvi_os_reserve(fd, old, size);
    if (rc < 0)
        return rc;
    rc = mmvi_os_remap(p, old, size, NULL, out);
    if (rc < 0)
        (void)mmvi_os_resize(fd, size, old);
    return rc;
}

int mmvi_os_resize_mapped(const char *path, const mmvi_file_info *id, void *p, size_t old,
                          size_t size, void **out)
{
    if (!path || !id || !p || old == 0 || size == 0 || !out)
        return -EINVAL;
    int fd = -1;
    int rc = mmvi_os_open(path, &fd);
    if (rc < 0)
        return rc;
    mmvi_file_info now = {0};
    rc = mmvi_os_file_info(fd, &now);
    if (rc == 0 && (now.dev != id->dev || now.ino != id->ino))
        rc = -ESTALE;
    if (rc == 0)
        rc = resize_fd_mapped(fd, p, old, size, out);
    mmvi_os_close(fd);
    return rc;
}

int mmvi_os_resize_fd_mapped(int fd, void *p, size_t old, size_t size, void **out)
{
    if (fd < 0 || !p || old == 0 || size == 0 || !out)
        return -EINVAL;
    return resize_fd_mapped(fd, p, old, size, out);
}

int mmvi_os_unlink_own(const char *path, const mmvi_file_info *id)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if ((unsigned long long)st.st_dev != id->dev || (unsigned long long)st.st_ino != id->ino)
        return -ESTALE;
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}
