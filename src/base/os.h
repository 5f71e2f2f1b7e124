/* Thin wrappers over the system calls mmvec uses. Every function returns 0 or a negative errno
 * (pointers: MAP_FAILED-free, see each comment) and sets no global state but the stats. */
#ifndef MMVEC_OS_H
#define MMVEC_OS_H

#include <stddef.h>
#include <sys/types.h>

#define MMVI_HIDDEN __attribute__((visibility("hidden")))

/* The page size, read once. */
MMVI_HIDDEN size_t mmvi_page_size(void);

/* Rounds n up to a multiple of the page size; 0 when that overflows. */
MMVI_HIDDEN size_t mmvi_page_round(size_t n);

/* Creates a new file 0600 (O_EXCL|O_NOFOLLOW|O_CLOEXEC) and reserves `size` bytes of disk for it.
 * On success *fd is open read-write. On failure nothing is left behind. */
MMVI_HIDDEN int mmvi_os_create(const char *path, size_t size, int *fd);

/* Opens an existing file read-write (O_NOFOLLOW|O_CLOEXEC). */
MMVI_HIDDEN int mmvi_os_open(const char *path, int *fd);

/* Makes the file `size` bytes long. Growing reserves the new disk space with fallocate (a full
 * disk is -ENOSPC now, never a SIGBUS later); only where the filesystem does not support
 * fallocate does it fall back to ftruncate. Shrinking frees the tail. */
MMVI_HIDDEN int mmvi_os_resize(int fd, size_t old_size, size_t size);

/* Maps `len` bytes of fd from offset `off`, shared read-write. With `at` non-NULL the mapping
 * replaces whatever is at `at` (MAP_FIXED). Returns 0 and *out, or a negative errno. */
MMVI_HIDDEN int mmvi_os_map(int fd, size_t off, size_t len, void *at, int private_cow, void **out);

/* Unmaps; counts a failure in the stats. */
MMVI_HIDDEN int mmvi_os_unmap(void *p, size_t len);

/* Moves/resizes a mapping (mremap with MREMAP_MAYMOVE, or MREMAP_FIXED to `to` when non-NULL). */
MMVI_HIDDEN int mmvi_os_remap(void *p, size_t old_len, size_t new_len, void *to, void **out);

/* Grows a mapping where it stands (mremap without MREMAP_MAYMOVE): the space after it must be
 * unmapped. */
MMVI_HIDDEN int mmvi_os_remap_in_place(void *p, size_t old_len, size_t new_len);

/* Reads a small file (procfs, sysfs) whole into buf (up to size - 1 bytes), NUL-terminated,
 * without allocating. 0 or a negative errno. */
MMVI_HIDDEN int mmvi_os_read_file(const char *path, char *buf, size_t size);

/* Calls fn(fd, name, arg) for each entry of the open directory fd but "." and "..", listing it
 * with getdents64 on a stack buffer (opendir allocates, and this runs inside malloc). */
MMVI_HIDDEN void mmvi_os_each_entry(int fd, void (*fn)(int, const char *, void *), void *arg);

/* close(2) that keeps errno. */
MMVI_HIDDEN void mmvi_os_close(int fd);

/* madvise that ignores failure (advice only). */
MMVI_HIDDEN void mmvi_os_advise(void *p, size_t len, int advice);

/* ---- Appended for segments and vectors (core). ---- */

/* What fstat says about fd: regular file or not, size, identity. */
typedef struct mmvi_file_info {
    unsigned long long dev, ino;
    size_t size;
    int regular;
} mmvi_file_info;
MMVI_HIDDEN int mmvi_os_file_info(int fd, mmvi_file_info *out);

/* pread/pwrite of exactly len bytes at off (retrying short transfers and EINTR); a file that
 * ends early is -ENODATA for the read. */
MMVI_HIDDEN int mmvi_os_pread_all(int fd, void *buf, size_t len, size_t off);
MMVI_HIDDEN int mmvi_os_pwrite_all(int fd, const void *buf, size_t len, size_t off);

/* unlink(2) as a negative errno. */
MMVI_HIDDEN int mmvi_os_unlink(const char *path);

/* Makes the file `size` bytes long, reserving the disk space of a growth. Small files (up to
 * MMVI_WRITE_RESERVE_MAX bytes) are grown by writing zeros: the filesystem reserves the space at
 * write time (-ENOSPC now, never a SIGBUS later) without allocating blocks yet, so deleting a
 * short-lived file does not free (and, with -o discard, TRIM) blocks: ~90 us saved per file.
 * Larger growth uses mmvi_os_resize (fallocate). Shrinking cuts the file. */
#define MMVI_WRITE_RESERVE_MAX ((size_t)64 << 10)
MMVI_HIDDEN int mmvi_os_reserve(int fd, size_t old_size, size_t size);

/* Opens the file at path read-write (with `create`: a new file, 0600, O_EXCL), makes it `size`
 * bytes (> 0; growing reserves the space with fallocate), maps it shared read-write and closes
 * the descriptor. *info (optional) receives the file's identity and size. A new file is removed
 * again on failure; an existing one gets its old size back when it was grown. */
MMVI_HIDDEN int mmvi_os_map_file(const char *path, int create, size_t size, mmvi_file_info *info,
                                 void **out);

/* Resizes our own file at path from old to size bytes (both > 0) and moves the mapping p (old
 * bytes of it) to cover size bytes, without copying. The file must still be the one `id` names
 * (else -ESTALE: never resize a file that replaced ours). On failure the file keeps its size and
 * the mapping stays where it was. */
MMVI_HIDDEN int mmvi_os_resize_mapped(const char *path, const mmvi_file_info *id, void *p,
                                      size_t old, size_t size, void **out);

/* The same for a descriptor the caller holds (no identity check). */
MMVI_HIDDEN int mmvi_os_resize_fd_mapped(int fd, void *p, size_t old, size_t size, void **out);

/* Unlinks path only if it is still the file `id` names (lstat check): a file that replaced ours
 * is left alone (-ESTALE). A path already gone is success. */
MMVI_HIDDEN int mmvi_os_unlink_own(const char *path, const mmvi_file_info *id);

#endif
