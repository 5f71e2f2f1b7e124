/* Holding other threads' writes off a range while it is copied: userfaultfd write protection.
 *
 * A thread (or the kernel on its behalf: read(2) into the range) that writes a protected page
 * waits in the kernel until the range is unprotected, woken, or its mapping replaced; then its
 * write goes to whatever is mapped there. Nothing reads the descriptor's events: writers just
 * wait. Needs a userfaultfd that also handles the kernel's own faults (root, CAP_SYS_PTRACE,
 * vm.unprivileged_userfaultfd=1, or access to /dev/userfaultfd), and a kernel that protects
 * pages never touched (UFFD_FEATURE_WP_UNPOPULATED, Linux 6.4). */
#ifndef MMVEC_WPROTECT_H
#define MMVEC_WPROTECT_H

#include "os.h"

#include <stddef.h>

/* A write-protection descriptor, or a negative errno (-EPERM, -ENOSYS, -EINVAL: not here). */
MMVI_HIDDEN int mmvi_wp_open(void);

/* Registers [p, p+len) (anonymous memory) for write protection. 0 or a negative errno. */
MMVI_HIDDEN int mmvi_wp_register(int fd, void *p, size_t len);

/* Protects (on) or unprotects and wakes (off) [p, p+len). 0 or a negative errno. */
MMVI_HIDDEN int mmvi_wp_protect(int fd, void *p, size_t len, int on);

/* Wakes the writers waiting on [p, p+len) (after its mapping was replaced). */
MMVI_HIDDEN void mmvi_wp_wake(int fd, void *p, size_t len);

#endif
