/* System-call wrappers: the only place that knows about fallocate fallbacks and map flags. */
#define _GNU_SOURCE
#include "os.h"

#include "stats_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

size_t mmvi_page_size(void)
{
    static size_t page;
    if (page == 0) {
        long p = sysconf(_SC_PAGESIZE);
        page = p > 0 ? (size_t)p : 4096;
    }
    return page;
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
    /* fallocate both reserves the blocks and extends the file size. */
    if (fallocate(fd, 0, (off_t)old_size, (off_t)(size - old_size)) == 0)
        return 0;
    int err = errno;
    if (err == EOPNOTSUPP || err == ENOSYS) {
        /* The filesystem cannot reserve space: a sparse file is the best it offers. */
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

void mmvi_os_advise(void *p, size_t len, int advice)
{
    int saved = errno;
    (void)madvise(p, len, advice);
    errno = saved;
}
