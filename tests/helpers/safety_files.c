/* A child for tests/test_safety_files.c: what mmvec does to files and descriptors that are not
 * its own. Most sub-commands run under LD_PRELOAD of the interposer (plain malloc/realloc/free);
 * options come from the environment.
 *
 *   safety_files run               malloc(4 MiB), write it, free it, exit 0 (prints "owned=N")
 *   safety_files crash             malloc(4 MiB), write it, print "owned=N" and "path <file>",
 *                                  then kill itself with SIGKILL (its files stay behind)
 *   safety_files reldir CWD2 [mmv] a = 4 MiB block, chdir(CWD2), b = 4 MiB block,
 *                                  a = realloc(a, 64 MiB), all of a written; prints
 *                                  "owned a=N b=N", "a <path>", "b <path>" (or "a error <rc>"),
 *                                  "file a ok|bad|unreadable", the same for b, "data ok|bad",
 *                                  then "ready"; waits for EOF on stdin, frees, exits 0 (1 when
 *                                  the data were wrong). "mmv": through mmv_* instead of malloc.
 *   safety_files defaultdir        prints "dir <path>" from mmv_default_dir, or "error <rc>"
 *   safety_files statsfd OUT       makes a block, closes descriptors 3..1023, opens OUT
 *                                  (O_WRONLY|O_APPEND) and dups it until 3..299 all refer to it,
 *                                  writes "ok\n" to it once, exits normally
 *   safety_files lowfd             malloc(4 MiB), then open("/dev/null"); prints "devnull=FD",
 *                                  "lock FD TARGET" for each descriptor on a *.lock file, and
 *                                  "owned=N"
 *   safety_files conf              malloc(100) and malloc(4 MiB), written and freed; prints
 *                                  "owned=N" on stdout
 * Exit 2 on bad arguments, 3 when memory cannot be had.
 */
#define _GNU_SOURCE
#include "mmvec/alloc.h"
#include "mmvec/namer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define M ((size_t)1 << 20)

static unsigned char pat(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 131u + i * 7u + (i >> 12));
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pat(seed, i);
}

static int intact(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(seed, i))
            return 0;
    return 1;
}

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "safety_files: out of memory\n");
        exit(3);
    }
    return p;
}

static int cmd_run(void)
{
    unsigned char *p = must(malloc(4 * M));
    fill(p, 4 * M, 1);
    int ok = intact(p, 4 * M, 1);
    printf("owned=%d\n", (int)mmv_owns(p));
    free(p);
    return ok ? 0 : 1;
}

static int cmd_crash(void)
{
    unsigned char *p = must(malloc(4 * M));
    fill(p, 4 * M, 2);
    char path[4096];
    printf("owned=%d\n", (int)mmv_owns(p));
    if (mmv_block_path(p, path, sizeof path) == 0)
        printf("path %s\n", path);
    fflush(stdout);
    raise(SIGKILL);
    return 1;
}

/* "file X ok" when the file at path holds exactly the n bytes of p (MAP_SHARED: it must). */
static const char *same_as_file(const char *path, const unsigned char *p, size_t n)
{
    static unsigned char buf[1 << 20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return "unreadable";
    const char *verdict = "ok";
    for (size_t off = 0; off < n;) {
        size_t want = n - off < sizeof buf ? n - off : sizeof buf;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got <= 0) {
            verdict = "bad";
            break;
        }
        if (memcmp(buf, p + off, (size_t)got)) {
            verdict = "bad";
            break;
        }
        off += (size_t)got;
    }
    close(fd);
    return verdict;
}

static void say_path(const char *name, const void *p, char *path, size_t size)
{
    int rc = mmv_block_path(p, path, size);
    if (rc == 0)
        printf("%s %s\n", name, path);
    else
        printf("%s error %d\n", name, rc), path[0] = '\0';
}

static int cmd_reldir(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "mmv")))
        return 2;
    int api = argc == 4;
    void *(*xmalloc)(size_t) = api ? mmv_malloc : malloc;
    void *(*xrealloc)(void *, size_t) = api ? mmv_realloc : realloc;
    void (*xfree)(void *) = api ? mmv_free : free;

    unsigned char *a = must(xmalloc(4 * M));
    fill(a, 4 * M, 1);
    if (chdir(argv[2]) < 0) {
        fprintf(stderr, "safety_files: chdir %s: %s\n", argv[2], strerror(errno));
        return 2;
    }
    unsigned char *b = must(xmalloc(4 * M));
    fill(b, 4 * M, 2);
    a = must(xrealloc(a, 64 * M));
    int ok = intact(a, 4 * M, 1); /* realloc kept the old contents */
    fill(a, 64 * M, 3);
    ok = ok && intact(a, 64 * M, 3) && intact(b, 4 * M, 2);

    char pa[4096], pb[4096];
    printf("owned a=%d b=%d\n", (int)mmv_owns(a), (int)mmv_owns(b));
    say_path("a", a, pa, sizeof pa);
    say_path("b", b, pb, sizeof pb);
    printf("file a %s\n", pa[0] ? same_as_file(pa, a, 64 * M) : "unreadable");
    printf("file b %s\n", pb[0] ? same_as_file(pb, b, 4 * M) : "unreadable");
    printf("data %s\n", ok ? "ok" : "bad");
    printf("ready\n");
    fflush(stdout);
    for (char c;;) {
        ssize_t n = read(0, &c, 1);
        if (n == 0 || (n < 0 && errno != EINTR))
            break;
    }
    xfree(a);
    xfree(b);
    return ok ? 0 : 1;
}

static int cmd_defaultdir(void)
{
    char dir[4096];
    int rc = mmv_default_dir(dir, sizeof dir);
    if (rc == 0)
        printf("dir %s\n", dir);
    else
        printf("error %d (%s)\n", rc, strerror(-rc));
    return 0;
}

static int cmd_statsfd(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    unsigned char *p = must(malloc(4 * M));
    fill(p, 4 * M, 4);
    free(p);
    fflush(stdout);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    int out = open(argv[2], O_WRONLY | O_APPEND);
    if (out < 0)
        return 2;
    for (int fd = 3; fd < 300; fd++) {
        if (fd == out)
            continue;
        int d = dup(out); /* the lowest free descriptor: 3..299 fill up in order */
        if (d < 0)
            return 2;
        if (d != fd) {
            /* something else holds fd: make it ours too (the program owns its descriptors) */
            close(d);
            if (dup2(out, fd) < 0)
                return 2;
        }
    }
    if (write(3, "ok\n", 3) != 3)
        return 2;
    return 0;
}

static int cmd_lowfd(void)
{
    unsigned char *p = must(malloc(4 * M));
    fill(p, 4 * M, 5);
    int devnull = open("/dev/null", O_RDONLY);
    printf("devnull=%d\n", devnull);
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char link[300], target[4096];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strstr(target, ".lock"))
            printf("lock %s %s\n", e->d_name, target);
    }
    if (d)
        closedir(d);
    printf("owned=%d\n", (int)mmv_owns(p));
    free(p);
    return 0;
}

static int cmd_conf(void)
{
    unsigned char *small = must(malloc(100));
    unsigned char *big = must(malloc(4 * M));
    fill(small, 100, 6);
    fill(big, 4 * M, 7);
    int ok = intact(small, 100, 6) && intact(big, 4 * M, 7);
    printf("owned=%d\n", (int)mmv_owns(big));
    free(small);
    free(big);
    return ok ? 0 : 1;
}

/* A daemon that shuts itself off from its folder after its first block: a block of 64 MiB made
 * (a file, as root) and written, then the process drops to uid and gid 65534 (`how` "setuid") or
 * locks itself into the folder `root` (chroot, chdir), and frees the block. Prints the file's
 * path first: the caller, root, looks at it once we are gone. */
static int cmd_shutoff(const char *how, const char *root)
{
    size_t n = 64 * M;
    unsigned char *p = must(malloc(n));
    fill(p, n, 3);
    char path[4096];
    if (mmv_block_path(p, path, sizeof path) != 0) {
        fprintf(stderr, "safety_files: the 64 MiB block is not a file\n");
        return 1;
    }
    printf("path=%s\n", path);
    fflush(stdout);
    int rc = !strcmp(how, "setuid")
                 ? (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
                 : (chroot(root) != 0 || chdir("/") != 0);
    if (rc) {
        fprintf(stderr, "safety_files: %s: %s\n", how, strerror(errno));
        return 1;
    }
    int ok = intact(p, n, 3);
    free(p);
    printf("intact=%d\n", ok);
    return ok ? 0 : 1;
}

/* A server's worker: the process makes a block of 64 MiB (a file, as root), forks, and the child
 * drops to uid and gid 65534, then makes a block of its own, writes it, reads its parent's, frees
 * both and exits normally. Prints the child's block's path ("RAM" if it is not a file). */
static int cmd_forkdrop(void)
{
    size_t n = 64 * M;
    unsigned char *p = must(malloc(n));
    fill(p, n, 4);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        unsigned char *q = must(malloc(n));
        fill(q, n, 5);
        char path[4096];
        printf("child_block=%s\n", mmv_block_path(q, path, sizeof path) == 0 ? path : "RAM");
        int ok = intact(q, n, 5) && intact(p, n, 4);
        free(q);
        free(p);
        printf("child_intact=%d\n", ok);
        exit(ok ? 0 : 11);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "safety_files: the worker exited %d\n", WEXITSTATUS(st));
        return 1;
    }
    int ok = intact(p, n, 4);
    free(p);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "run") && argc == 2)
        return cmd_run();
    if (!strcmp(cmd, "crash") && argc == 2)
        return cmd_crash();
    if (!strcmp(cmd, "reldir"))
        return cmd_reldir(argc, argv);
    if (!strcmp(cmd, "defaultdir") && argc == 2)
        return cmd_defaultdir();
    if (!strcmp(cmd, "statsfd"))
        return cmd_statsfd(argc, argv);
    if (!strcmp(cmd, "lowfd") && argc == 2)
        return cmd_lowfd();
    if (!strcmp(cmd, "conf") && argc == 2)
        return cmd_conf();
    if (!strcmp(cmd, "shutoff") && argc == 4 &&
        (!strcmp(argv[2], "setuid") || !strcmp(argv[2], "chroot")))
        return cmd_shutoff(argv[2], argv[3]);
    if (!strcmp(cmd, "forkdrop") && argc == 2)
        return cmd_forkdrop();
    fprintf(stderr, "usage: safety_files run|crash|reldir CWD2 [mmv]|defaultdir|statsfd OUT|"
                    "lowfd|conf|shutoff setuid|chroot ROOT|forkdrop\n");
    return 2;
}
