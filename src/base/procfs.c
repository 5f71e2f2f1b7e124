/* Reading /proc and /sys: whole small files and directory entries (os.h). Nothing but system
 * calls, so that the command line tool can use them too (tools/memrun.c, with memlimit.c). */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int mmvi_os_read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* procfs gives about a page per read(): a longer file (mountinfo, memory.stat) needs more. */
    size_t len = 0;
    for (ssize_t n; len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            close(fd);
            return -err;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return 0;
}

struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

void mmvi_os_each_entry(int fd, void (*fn)(int, const char *, void *), void *arg)
{
    char buf[4096] __attribute__((aligned(8)));
    lseek(fd, 0, SEEK_SET);
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
