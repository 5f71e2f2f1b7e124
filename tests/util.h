/* Small tools shared by the Criterion tests (tests/test_*.c): temp directories, counting and
 * reading files, running child programs, skipping with cleanup.
 *
 * Every test file is an executable of its own and includes this header once, so everything
 * here is `static` (no library to link, no symbol clashes); a file that does not use a tool
 * must not get -Wunused-function for it under -Werror, hence TU_UNUSED. Include it after
 * defining _GNU_SOURCE (pipe2, asprintf, environ) and before the file's own code. */
#ifndef MMVEC_TESTS_UTIL_H
#define MMVEC_TESTS_UTIL_H

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TU_UNUSED __attribute__((unused))

/* TU_SANITIZED: an ASan/TSan/MSan build, whose runtime must come first in a process, so the
 * interposer cannot be preloaded into an uninstrumented child: such tests skip. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define TU_SANITIZED 1
#endif
#endif

extern char **environ;

/* ---- skipping ------------------------------------------------------------------------------ */

/* Criterion (2.4) runs no .fini after cr_skip_test(): a test that skips after its .init made
 * a temp dir (or mounted, captured, ...) must clean up itself. TU_SKIP(cleanup, fmt, ...)
 * formats the reason first (it may name what cleanup removes), calls cleanup(), then skips.
 * Make cleanup safe to run twice, in case a Criterion version does run .fini after a skip. */
#define TU_SKIP(cleanup, ...)                                                                \
    do {                                                                                     \
        char tu_why_[1200];                                                                  \
        snprintf(tu_why_, sizeof tu_why_, __VA_ARGS__);                                      \
        cleanup();                                                                           \
        cr_skip_test("%s", tu_why_);                                                         \
    } while (0)

/* ---- where mmvec keeps its files ---------------------------------------------------------- */

/* The heap folder mmvec makes in segment directory dir: "<dir>/mmvec-heap-<euid>" (src/heap/reaper.h).
 * Each process folder in it is "<host>-<pid>-<random>", next to its "<...>.lock". */
TU_UNUSED static const char *tu_heap_dir(const char *dir)
{
    static char bufs[8][4200];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/mmvec-heap-%u", dir, (unsigned)geteuid());
    return b;
}

/* ---- temp directories ---------------------------------------------------------------------- */

/* mkdtemp of `tmpl` ("/tmp/name-XXXXXX") into buf; the test fails when it cannot. */
TU_UNUSED static void tu_make_tmpdir(char *buf, size_t size, const char *tmpl)
{
    snprintf(buf, size, "%s", tmpl);
    cr_assert_not_null(mkdtemp(buf), "mkdtemp: %s", strerror(errno));
}

TU_UNUSED static int tu_rm_entry_(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0; /* best effort: go on with the rest of the tree */
}

TU_UNUSED static int tu_rm_entry_checked_(const char *path, const struct stat *st, int flag,
                                struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path); /* the first failure stops the walk and is returned */
}

/* rm -rf dir, best effort (for teardowns); nothing for NULL or "". Does not follow links. */
TU_UNUSED static void tu_rm_rf(const char *dir)
{
    if (dir && *dir)
        nftw(dir, tu_rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
}

/* rm -r dir for a test that checks it worked: 0, or non-zero at the first failure. */
TU_UNUSED static int tu_rm_rf_checked(const char *dir)
{
    return nftw(dir, tu_rm_entry_checked_, 16, FTW_DEPTH | FTW_PHYS);
}

/* "<dir>/<name>" in one of 32 rotating buffers, so that several can be used in one call. */
TU_UNUSED static char *tu_path_in(const char *dir, const char *name)
{
    static char bufs[32][400];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* Mounts a tmpfs with `opts` at <base>/mnt (the directory is made, the test fails if it
 * cannot be); false when not allowed (not root), with mnt set to "" so teardown skips it. */
TU_UNUSED static bool tu_mount_tmpfs(char *mnt, size_t size, const char *base, const char *opts)
{
    snprintf(mnt, size, "%s/mnt", base);
    cr_assert_eq(mkdir(mnt, 0700), 0);
    if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, opts) != 0) {
        mnt[0] = '\0';
        return false;
    }
    return true;
}

/* ---- counting files -------------------------------------------------------------------------- */

static int tu_nfiles_; /* nftw has no context argument */

TU_UNUSED static int tu_count_seg_entry_(const char *path, const struct stat *st, int flag,
                               struct FTW *ftw)
{
    (void)st, (void)ftw;
    size_t n = strlen(path);
    if (flag == FTW_F && n > 4 && !strcmp(path + n - 4, ".seg"))
        tu_nfiles_++;
    return 0;
}

TU_UNUSED static int tu_count_file_entry_(const char *path, const struct stat *st, int flag,
                                struct FTW *ftw)
{
    (void)path, (void)st, (void)ftw;
    if (flag != FTW_D && flag != FTW_DP)
        tu_nfiles_++;
    return 0;
}

/* Segment files (regular files named *.seg) anywhere under dir. */
TU_UNUSED static int tu_count_segs(const char *dir)
{
    tu_nfiles_ = 0;
    nftw(dir, tu_count_seg_entry_, 16, FTW_PHYS);
    return tu_nfiles_;
}

/* Entries other than directories anywhere under dir: segment files, locks, anything. */
TU_UNUSED static int tu_count_files(const char *dir)
{
    tu_nfiles_ = 0;
    nftw(dir, tu_count_file_entry_, 16, FTW_PHYS);
    return tu_nfiles_;
}

/* Entries directly in dir, not counting names that start with '.'; 0 when it cannot be read. */
TU_UNUSED static int tu_count_entries(const char *dir)
{
    int n = 0;
    DIR *h = opendir(dir);
    for (struct dirent *e; h && (e = readdir(h));)
        n += e->d_name[0] != '.';
    if (h)
        closedir(h);
    return n;
}

/* ---- reading ------------------------------------------------------------------------------- */

/* Reads fd to its end (or until buf is full), NUL-terminated; returns the bytes read. */
TU_UNUSED static size_t tu_read_fd(int fd, char *buf, size_t size)
{
    size_t got = 0;
    for (ssize_t n; got + 1 < size && (n = read(fd, buf + got, size - 1 - got)) != 0;) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

/* The start of a file (up to 64 KiB), NUL-terminated, "" when missing; in one of 4 rotating
 * buffers, so that several results can appear in one message. */
TU_UNUSED static char *tu_slurp(const char *path)
{
    static char bufs[4][1 << 16];
    static int next;
    char *buf = bufs[next++ % 4];
    buf[0] = '\0';
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return buf;
    ssize_t n = read(fd, buf, sizeof bufs[0] - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    return buf;
}

/* ---- child processes ------------------------------------------------------------------------ */

/* The environment for a child: ours without LD_PRELOAD and MMVEC_* (so the caller's settings
 * cannot change a test; MMVEC_PLACEMENT stays: ctest sets it for the tests of the file path),
 * and without `also_drop` (a "NAME=" prefix) when it is not NULL.
 * There are `room` zeroed slots after the *n entries kept: the caller appends its own and the
 * array stays NULL-terminated. Built before fork (the child only execs); free() the array. */
TU_UNUSED static char **tu_child_env(size_t room, size_t *n, const char *also_drop)
{
    size_t cap = room;
    for (char **e = environ; *e; e++)
        cap++;
    char **env = calloc(cap, sizeof *env);
    cr_assert_not_null(env);
    *n = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) &&
            (strncmp(*e, "MMVEC_", 6) || !strncmp(*e, "MMVEC_PLACEMENT=", 16)) &&
            (!also_drop || strncmp(*e, also_drop, strlen(also_drop))))
            env[(*n)++] = *e;
    return env;
}

/* In a child before exec: fd from path (NULL: /dev/null) opened with flags; exit 126 if not. */
TU_UNUSED static void tu_redirect(const char *path, int fd, int flags)
{
    int f = open(path ? path : "/dev/null", flags, 0600);
    if (f < 0 || dup2(f, fd) < 0)
        _exit(126);
    close(f);
}

/* waitpid through EINTR; the wait status. */
TU_UNUSED static int tu_wait(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

/* ---- memory cgroups (v1) -------------------------------------------------------------------- */

#define TU_MEMCG_ROOT "/sys/fs/cgroup/memory"

/* Writes text to <dir>/<file> (which must exist: a cgroup file); 0, or -errno. */
TU_UNUSED static int tu_write_text(const char *dir, const char *file, const char *text)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, text, strlen(text));
    int rc = n == (ssize_t)strlen(text) ? 0 : -errno;
    close(fd);
    return rc;
}

/* This process's memory cgroup folder (a group made in it keeps the caller's limits in force). */
TU_UNUSED static void tu_own_memcg(char *buf, size_t size)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[1024];
    snprintf(buf, size, "%s", TU_MEMCG_ROOT);
    while (f && fgets(line, sizeof line, f)) {
        char *p = strstr(line, ":memory:");
        if (p) {
            p[strcspn(p, "\n")] = '\0';
            snprintf(buf, size, "%s%s", TU_MEMCG_ROOT, p + strlen(":memory:"));
            break;
        }
    }
    if (f)
        fclose(f);
}

/* Makes a uniquely named child "<prefix>-<pid>-<ns>" of this process's memory cgroup, its path
 * in cg, with memory.limit_in_bytes `limit` (and memory.memsw.limit_in_bytes, where swap is
 * counted: over the limit means killed). Skips through TU_SKIP(cleanup, ...) without a v1 memory
 * controller or the right to make the group or set its limit; cg is "" when no group was made.
 * Remove the group with tu_remove_memcg (cleanup should). */
TU_UNUSED static void tu_make_memcg(char *cg, size_t size, const char *prefix,
                                    unsigned long long limit, void (*cleanup)(void))
{
    if (access(TU_MEMCG_ROOT "/memory.limit_in_bytes", F_OK) < 0)
        TU_SKIP(cleanup, "no cgroup v1 memory controller at " TU_MEMCG_ROOT);
    char parent[512];
    tu_own_memcg(parent, sizeof parent);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(cg, size, "%s/%s-%ld-%ld", parent, prefix, (long)getpid(), ts.tv_nsec);
    if (mkdir(cg, 0755) < 0) {
        int err = errno;
        cg[0] = '\0';
        TU_SKIP(cleanup, "cannot create a memory cgroup under %s: %s (needs root and a writable "
                         "cgroup v1 memory hierarchy)", parent, strerror(err));
    }
    char text[32];
    snprintf(text, sizeof text, "%llu", limit);
    int rc = tu_write_text(cg, "memory.limit_in_bytes", text);
    if (rc < 0)
        TU_SKIP(cleanup, "cannot set memory.limit_in_bytes in %s: %s", cg, strerror(-rc));
    tu_write_text(cg, "memory.memsw.limit_in_bytes", text);
}

/* Kills whatever is left in group cg (only the test's child can be), then removes it (rmdir may
 * need a moment after the last task is gone) and sets cg to ""; nothing when cg is "". */
TU_UNUSED static void tu_remove_memcg(char *cg)
{
    if (!*cg)
        return;
    char procs[700];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", cg);
    for (int tries = 0; tries < 100 && rmdir(cg) < 0 && errno == EBUSY; tries++) {
        FILE *f = fopen(procs, "r");
        long pid;
        while (f && fscanf(f, "%ld", &pid) == 1)
            kill((pid_t)pid, SIGKILL);
        if (f)
            fclose(f);
        usleep(50000);
    }
    cg[0] = '\0';
}

/* A number from a file of group cg, or of its line "key N" when key is given; -1 when absent. */
TU_UNUSED static long long tu_memcg_number(const char *cg, const char *file, const char *key)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", cg, file);
    const char *text = tu_slurp(path), *p = text;
    if (!*text)
        return -1;
    if (key) {
        size_t n = strlen(key);
        for (p = strstr(text, key); p && !(p == text || p[-1] == '\n'); p = strstr(p + n, key)) {
        }
        if (!p || p[n] != ' ')
            return -1;
        p += n;
    }
    return strtoll(p, NULL, 10);
}

/* ---- test data ------------------------------------------------------------------------------ */

/* Byte i of the pattern `seed`: differs between seeds, offsets and 4 KiB pages. */
TU_UNUSED static unsigned char tu_pat(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 131u + i * 7u + (i >> 12));
}

TU_UNUSED static void tu_fill(void *p, size_t n, unsigned seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = tu_pat(seed, i);
}

#endif
