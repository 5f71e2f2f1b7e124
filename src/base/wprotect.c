/* userfaultfd write protection (wprotect.h). */
#define _GNU_SOURCE
#include "wprotect.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1u << 13) /* Linux 6.4; older headers lack it */
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/* A userfaultfd for user and kernel faults alike: a write the kernel makes for the program
 * (read(2) into the range) must wait too, never fail with EFAULT. */
static int uffd_new(void)
{
    int fd = -1, err = ENOSYS;
#ifdef SYS_userfaultfd
    fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0)
        return fd;
    err = errno;
#endif
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0)
        return -err;
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    err = errno;
    close(dev);
    return fd >= 0 ? fd : -err;
}

int mmvi_wp_open(void)
{
    int fd = uffd_new();
    if (fd < 0)
        return fd;
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_UNPOPULATED};
    if (ioctl(fd, UFFDIO_API, &api) < 0 || !(api.ioctls & (1ull << _UFFDIO_REGISTER))) {
        int err = errno ? errno : EINVAL;
        close(fd);
        return -err;
    }
    return fd;
}

int mmvi_wp_register(int fd, void *p, size_t len)
{
    struct uffdio_register reg = {.range = {(uintptr_t)p, len}, .mode = UFFDIO_REGISTER_MODE_WP};
    if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0)
        return -errno;
    return (reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT)) ? 0 : -EINVAL;
}

int mmvi_wp_protect(int fd, void *p, size_t len, int on)
{
    struct uffdio_writeprotect wp = {.range = {(uintptr_t)p, len},
                                     .mode = on ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
    return ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

void mmvi_wp_wake(int fd, void *p, size_t len)
{
    struct uffdio_range r = {(uintptr_t)p, len};
    ioctl(fd, UFFDIO_WAKE, &r);
}
