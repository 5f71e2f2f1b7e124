/* CPython's own test suite under the interposer: Debian's /usr/bin/python3.11 runs regrtest's
 * test_subprocess and test_multiprocessing_fork (from the libpython3.11-testsuite package) with
 * LD_PRELOAD=libmmvec_preload.so, MMVEC_THRESHOLD=64K and MMVEC_DIR=<a temp dir of the test>,
 * and each module must end with exit status 0. These two modules are a program of the real
 * world leaning on everything a preloaded allocator can get wrong: fork without exec (workers,
 * pools, managers, queues, shared ctypes), fork+exec, vfork/posix_spawn, close_fds and
 * pass_fds, rlimits, signals, setuid children, kill -9 and _exit, and the interpreter's own
 * large blocks (at 64K it makes segment blocks from its first milliseconds on).
 *
 * Debian's interpreter, not the `python3` first on PATH (a pyenv build may be there): Debian's
 * is the one the test package belongs to. A module that fails prints, before the assertion,
 * unittest's summary of its failures (the tracebacks) from the run's output.
 *
 * Excluded cases: only those that fail on this machine WITHOUT the preload too (regrtest's
 * `-i PAT`, see *_ignore below). Measured without the preload on Debian 12 (python3.11
 * 3.11.2-6+deb12u9, root, 2 cores): none. Every case of both modules passes or skips itself
 * (Windows only, 'RLIMIT_NPROC had no effect; probably superuser', 'failed to reach the file
 * descriptor limit', 'not appropriate for threads/manager', ...), so nothing is excluded.
 * A case that fails only under the preload is mmvec's bug and must stay in.
 *
 * Run time (same machine, plain run / preloaded): test_subprocess 23 s / 25-33 s,
 * test_multiprocessing_fork 68 s / 67-71 s. In 3.11 test_multiprocessing_fork is one module,
 * which regrtest -jN would not split, so it runs whole. Each run has a deadline (regrtest's
 * --timeout a little before it dumps the tracebacks of a hang and exits); at the deadline the
 * whole process group is killed. Both deadlines together stay under ctest's 600 s.
 *
 * Placement: the default (MMVEC_PLACEMENT=auto; ctest does not set =file for this test), so
 * with memory plentiful the blocks are RAM, the placement users get. Under MMVEC_PLACEMENT=file
 * test_multiprocessing_fork can crash a fork child (seen once in CI: SIGSEGV while unmarshalling
 * in test_access): MMVEC_FORK=private lets a child see the parent's later writes to pages it has
 * not touched yet (docs/interposer.md, fork), such as the parent's interned-strings dict table,
 * a block at 64K. That limit of file blocks is issue 8's; tests/test_safety_fork.c tests what
 * private mode does guarantee.
 *
 * Skipped, loudly: in sanitizer builds (the interposer cannot be preloaded into an
 * uninstrumented child), and when /usr/bin/python3.11 or the test package is missing
 * (scripts/install-deps.sh installs libpython3.11-testsuite). */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define PYTHON "/usr/bin/python3.11"
#define THRESHOLD "64K"

static char tdir[256];   /* this test's temp directory: logs and the segment directory */
static char segdir[300]; /* MMVEC_DIR of the preloaded runs: <tdir>/seg */
static pid_t group = -1; /* the running child's process group, killed at teardown */

static void kill_group(void)
{
    if (group > 0)
        kill(-group, SIGKILL);
}

static void teardown(void)
{
    kill_group();
    group = -1;
    tu_rm_rf(tdir); /* the segment directory with it */
    tdir[0] = '\0';
}

static void setup(void)
{
    tu_make_tmpdir(tdir, sizeof tdir, "/tmp/mmvec-cpython-XXXXXX");
    snprintf(segdir, sizeof segdir, "%s/seg", tdir);
}

/* ---- running the interpreter ----------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct outcome {
    int status;      /* wait status */
    int timed_out;   /* killed at the deadline */
    double seconds;
};

/* Runs argv (argv[0] = PYTHON) in a process group of its own, stdin /dev/null, stdout and
 * stderr into `log`, with our environment minus LD_PRELOAD, MMVEC_* and PYTHON* (so neither
 * the caller's settings nor a pyenv's change the run), plus the preload when `preload`. At
 * `deadline` seconds the whole group is killed; when the interpreter ends, whatever of its
 * group is still running (a test's leftover child) is killed too, before the leader is reaped
 * (so that its group id cannot have been reused meanwhile). */
static struct outcome run_python(const char *const *argv, int preload, const char *log,
                                 double deadline)
{
    size_t n;
    char **env = tu_child_env(8, &n, "PYTHON");
    char *own[2] = {NULL, NULL};
    if (preload) {
        cr_assert(asprintf(&own[0], "LD_PRELOAD=%s", MMVEC_PRELOAD_LIB) > 0);
        cr_assert(asprintf(&own[1], "MMVEC_DIR=%s", segdir) > 0);
        env[n++] = own[0];
        env[n++] = own[1];
        env[n++] = "MMVEC_THRESHOLD=" THRESHOLD;
    }
    env[n] = NULL;

    struct outcome o = {0, 0, 0};
    double start = now_s();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        /* What the test runner set up must not leak into the interpreter: signal dispositions
         * and mask (an ignored SIGPIPE survives exec) and its descriptors. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++)
            signal(s, SIG_DFL);
        tu_redirect(NULL, 0, O_RDONLY);
        tu_redirect(log, 1, O_WRONLY | O_CREAT | O_APPEND);
        if (dup2(1, 2) < 0)
            _exit(126);
        if (close_range(3, ~0U, 0) < 0)
            for (int fd = 3; fd < 4096; fd++)
                close(fd);
        if (chdir(tdir) < 0) /* `-m` puts the current directory first on sys.path */
            _exit(126);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with the child's own call */
    group = pid;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (rc < 0 && errno == EINTR)
            continue;
        cr_assert(rc == 0, "waitid: %s", strerror(errno));
        if (si.si_pid == pid)
            break;
        if (now_s() - start > deadline) {
            o.timed_out = 1;
            kill(-pid, SIGKILL);
            break;
        }
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    kill(-pid, SIGKILL); /* a test's leftover child, if any; the zombie leader keeps the id */
    o.status = tu_wait(pid);
    o.seconds = now_s() - start;
    group = -1;
    free(env);
    free(own[0]);
    free(own[1]);
    return o;
}

/* A whole file, malloc'ed and NUL-terminated ("" when missing). */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (size_t got = 1; f && got;) {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 1 << 17;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    }
    if (f)
        fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    cr_assert_not_null(buf);
    buf[len] = '\0';
    return buf;
}

/* unittest's headers of its failing cases ("FAIL: test_x (...)", "ERROR: ..."), one a line, in
 * buf (truncated to its size). */
static void failing_cases(const char *text, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if ((!strncmp(line, "FAIL: ", 6) || !strncmp(line, "ERROR: ", 7)) && used + len + 3 < size) {
            used += (size_t)snprintf(buf + used, size - used, "  %.*s\n", (int)len, line);
        }
        line += len + (end != NULL);
    }
    if (!used)
        snprintf(buf, size, "  (none reported by unittest: see the output above)\n");
}

/* Prints to stderr what explains a failed run: unittest's summary of its failures with their
 * tracebacks (from the first "=====" rule on), else the end of the output. */
static void print_failures(const char *module, const char *text)
{
    static const char rule[] = "\n======================================================================\n";
    const char *summary = strstr(text, rule);
    size_t len = strlen(text), cap = 60000;
    const char *from = summary ? summary + 1 : text + (len > 16000 ? len - 16000 : 0);
    if (strlen(from) > cap)
        from += strlen(from) - cap;
    fprintf(stderr, "---- %s under LD_PRELOAD=%s MMVEC_THRESHOLD=" THRESHOLD ": %s ----\n%s\n"
            "---- end of %s ----\n",
            module, MMVEC_PRELOAD_LIB, summary ? "unittest's failures" : "the end of its output",
            from, module);
}

/* ---- the test ------------------------------------------------------------------------------- */

struct module {
    const char *name;           /* under test., as regrtest names it */
    double deadline;            /* seconds; regrtest's own --timeout is 30 s less */
    const char *const *ignore;  /* regrtest -i patterns (fnmatch on the case id), NULL-ended */
};

static void run_module(const struct module *m)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
                      "preloaded into %s", PYTHON);
#endif
    if (access(PYTHON, X_OK) != 0)
        TU_SKIP(teardown, "%s is not installed (Debian's python3.11; scripts/install-deps.sh "
                          "installs it with libpython3.11-testsuite)", PYTHON);

    /* The test package is there? Asked of the interpreter itself, without the preload. */
    char *log = tu_path_in(tdir, "probe.log");
    const char *probe[] = {PYTHON, "-c",
                           "import importlib.util as u, sys\n"
                           "sys.exit(0 if u.find_spec('test.libregrtest') and "
                           "u.find_spec('test.' + sys.argv[1]) else 3)\n",
                           m->name, NULL};
    struct outcome o = run_python(probe, 0, log, 60);
    if (WIFEXITED(o.status) && WEXITSTATUS(o.status) == 3)
        TU_SKIP(teardown, "test.%s is not installed for %s: install Debian's "
                          "libpython3.11-testsuite (scripts/install-deps.sh does)", m->name, PYTHON);
    cr_assert(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0,
              "%s cannot run (wait status %#x):\n%s", PYTHON, o.status, read_all(log));

    /* The preload is really in effect: a 1 MiB bytearray of a preloaded interpreter is one of
     * mmvec's blocks (in RAM or a file, as the placement decides). */
    log = tu_path_in(tdir, "preload-probe.log");
    const char *check[] = {PYTHON, "-c",
                           "import ctypes, sys\n"
                           "b = bytearray(1 << 20)\n"
                           "owns = ctypes.CDLL(None).mmv_owns\n"
                           "owns.restype, owns.argtypes = ctypes.c_bool, [ctypes.c_void_p]\n"
                           "p = ctypes.addressof((ctypes.c_char * 1).from_buffer(b))\n"
                           "sys.exit(0 if owns(p) else 4)\n",
                           NULL};
    o = run_python(check, 1, log, 60);
    cr_assert(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0,
              "a preloaded %s did not make a 1 MiB bytearray one of mmvec's blocks at "
              "MMVEC_THRESHOLD=" THRESHOLD " (wait status %#x): the preload is not in effect; "
              "its output:\n%s", PYTHON, o.status, read_all(log));

    /* The module. */
    char timeout[32];
    snprintf(timeout, sizeof timeout, "--timeout=%d", (int)m->deadline - 30);
    const char *argv[64] = {PYTHON, "-m", "test", "-v", timeout};
    size_t argc = 5;
    for (const char *const *i = m->ignore; i && *i && argc + 4 < 64; i++) {
        argv[argc++] = "-i";
        argv[argc++] = *i;
    }
    argv[argc++] = m->name;
    argv[argc] = NULL;
    log = tu_path_in(tdir, "regrtest.log");
    o = run_python(argv, 1, log, m->deadline);

    char *text = read_all(log);
    int ok = !o.timed_out && WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0;
    cr_log_info("%s under the preload: %s in %.1f s", m->name, ok ? "passed" : "FAILED",
                o.seconds);
    if (ok) {
        free(text);
        return;
    }
    print_failures(m->name, text);
    char cases[4000], how[128];
    failing_cases(text, cases, sizeof cases);
    free(text);
    if (o.timed_out)
        snprintf(how, sizeof how, "killed at its %.0f s deadline", m->deadline);
    else if (WIFEXITED(o.status))
        snprintf(how, sizeof how, "exit %d (regrtest: 2 = cases failed, 1 = a hang past its "
                 "--timeout: tracebacks above)", WEXITSTATUS(o.status));
    else
        snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(o.status),
                 strsignal(WTERMSIG(o.status)));
    cr_assert_fail("%s -m test %s under LD_PRELOAD=%s MMVEC_THRESHOLD=" THRESHOLD ": %s, after "
                   "%.1f s; failing cases:\n%s",
                   PYTHON, m->name, MMVEC_PRELOAD_LIB, how, o.seconds, cases);
}

/* No case is excluded: none fails here without the preload (see the top of the file). A case
 * that does on another machine goes here, with the reason, e.g. a test that needs the network. */
static const char *const subprocess_ignore[] = {NULL};
static const char *const multiprocessing_fork_ignore[] = {NULL};

TestSuite(cpython, .init = setup, .fini = teardown, .timeout = 560);

Test(cpython, test_subprocess_under_preload)
{
    const struct module m = {"test_subprocess", 220, subprocess_ignore};
    run_module(&m);
}

Test(cpython, test_multiprocessing_fork_under_preload)
{
    const struct module m = {"test_multiprocessing_fork", 320, multiprocessing_fork_ignore};
    run_module(&m);
}
