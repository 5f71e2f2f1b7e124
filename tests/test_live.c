/* The live figures page (src/base/figures.h, src/heap/publish.c) and what reads it (tools/live.c,
 * tools/record.c): `mmvec ps`, `mmvec stats PID`, `mmvec top`, MMVEC_STATS=json and
 * `mmvec run --record`. Every test has its own MMVEC_LIVE_DIR (a folder under /var/tmp) and
 * MMVEC_DIR, so that tests running at once never see each other's processes; the programs
 * looked at are tests/helpers/live_holder.c under LD_PRELOAD of the interposer. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define HOLDER MMVEC_HELPER_DIR "/live_holder"
#define PYTHON "/usr/bin/python3"
#define STATS_H MMVEC_SOURCE_DIR "/include/mmvec/stats.h"
#define CHILD_TIMEOUT 40 /* seconds: alarm() in every child, which survives exec */
#define LINE_TIMEOUT_MS 15000
#define MIB (1ull << 20)

static void teardown(void);

static char tdir[256];  /* the test's folder */
static char live[300];  /* MMVEC_LIVE_DIR: the root */
static char pages[400]; /* <live>/mmvec-live-<uid>: where the pages are */
static char seg[300];   /* MMVEC_DIR */
static char tmux_sock[300];

struct holder {
    pid_t pid;
    int in;        /* its stdin (write end); -1 once closed */
    int out;       /* its stdout (read end) */
    char buf[4096];
    size_t have;
    char err[320]; /* its stderr, a file */
};

static struct holder holders[6];

/* "<dir>/<name>" in one of 16 rotating buffers (util.h's are too small for the page folder). */
static char *pin(const char *dir, const char *name)
{
    static char bufs[16][1024];
    static int next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

/* ---- setup, teardown ------------------------------------------------------------------------ */

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* writing to a holder that died fails instead of killing us */
    tu_make_tmpdir(tdir, sizeof tdir, "/var/tmp/mmvec-livetest-XXXXXX");
    snprintf(live, sizeof live, "%s/live", tdir);
    snprintf(seg, sizeof seg, "%s/seg", tdir);
    snprintf(pages, sizeof pages, "%s/mmvec-live-%u", live, (unsigned)geteuid());
    cr_assert_eq(mkdir(live, 0700), 0);
    cr_assert_eq(mkdir(seg, 0700), 0);
}

/* In a child before exec: the signal state a program gets from a shell (we ignore SIGPIPE, and
 * the test runner may ignore or block others). */
static void plain_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
}

static void kill_tmux(void)
{
    if (!tmux_sock[0])
        return;
    pid_t pid = fork();
    if (pid == 0) {
        tu_redirect(NULL, 1, O_WRONLY);
        tu_redirect(NULL, 2, O_WRONLY);
        alarm(10);
        plain_signals();
        execlp("tmux", "tmux", "-S", tmux_sock, "kill-server", (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        tu_wait(pid);
    unlink(tmux_sock);
    tmux_sock[0] = '\0';
}

/* Strings made for a case (environments, outputs): freed at its end, so that LeakSanitizer (the
 * asan build runs these tests too) sees nothing left. */
static char **kept;
static size_t nkept;

static char *keep(char *s)
{
    char **more = realloc(kept, (nkept + 1) * sizeof *kept);
    cr_assert(s && more, "out of memory");
    kept = more;
    kept[nkept++] = s;
    return s;
}

static void teardown(void)
{
    for (size_t i = 0; i < nkept; i++)
        free(kept[i]);
    free(kept);
    kept = NULL;
    nkept = 0;
    kill_tmux();
    for (size_t i = 0; i < sizeof holders / sizeof *holders; i++) {
        struct holder *h = &holders[i];
        if (h->pid > 0) { /* a test that failed half way: its holders go now */
            kill(h->pid, SIGKILL);
            tu_wait(h->pid);
            if (h->in >= 0)
                close(h->in);
            close(h->out);
        }
        memset(h, 0, sizeof *h);
    }
    tu_rm_rf(tdir);
    tdir[0] = '\0';
}

static void skip_unless_preloadable(void)
{
#ifdef TU_SANITIZED
    TU_SKIP(teardown, "sanitizer build: its runtime must come first, so the interposer cannot be "
                      "preloaded into an uninstrumented child");
#endif
}

TestSuite(live, .init = setup, .fini = teardown, .timeout = 90);

/* ---- environments --------------------------------------------------------------------------- */

/* Puts "NAME=value" into env (n entries, room left by tu_child_env), replacing NAME's entry. */
static void env_put(char **env, size_t *n, const char *entry)
{
    size_t name = strcspn(entry, "=") + 1, i = 0;
    while (i < *n && strncmp(env[i], entry, name))
        i++;
    env[i] = (char *)entry;
    *n += i == *n;
    env[*n] = NULL;
}

static char *fmt(const char *f, const char *a)
{
    char *s;
    cr_assert(asprintf(&s, f, a) >= 0);
    return keep(s); /* lives until the case ends */
}

/* Our environment without LD_PRELOAD and MMVEC_* (util.h), then `extra`. With `holder`, first
 * the interposer, MMVEC_PLACEMENT=auto, MMVEC_THRESHOLD=1M and the test's MMVEC_DIR and
 * MMVEC_LIVE_DIR (extra may replace them). */
static char **make_env(const char *const *extra, int holder)
{
    size_t n;
    char **env = tu_child_env(64, &n, "MMVEC_PLACEMENT=");
    env[n] = NULL;
    if (holder) {
        env_put(env, &n, "LD_PRELOAD=" MMVEC_PRELOAD_LIB);
        env_put(env, &n, "MMVEC_PLACEMENT=auto");
        env_put(env, &n, "MMVEC_THRESHOLD=1M");
        env_put(env, &n, fmt("MMVEC_DIR=%s", seg));
        env_put(env, &n, fmt("MMVEC_LIVE_DIR=%s", live));
    }
    for (const char *const *x = extra; x && *x; x++)
        env_put(env, &n, *x);
    return env;
}

/* ---- running programs to their end ---------------------------------------------------------- */

struct out {
    int status;
    char *out, *err;
};

static int code(const struct out *r)
{
    return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
}

/* Runs argv (argv[0] the path; name, when given, what the program sees as its argv[0]) with
 * stdin from /dev/null, output kept. */
static struct out run_as(const char *const *argv, const char *name, const char *const *extra,
                         int holder)
{
    char **env = make_env(extra, holder);
    char *outp = tu_path_in(tdir, "run.out"), *errp = tu_path_in(tdir, "run.err");
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        tu_redirect(NULL, 0, O_RDONLY);
        tu_redirect(outp, 1, O_WRONLY | O_CREAT | O_TRUNC);
        tu_redirect(errp, 2, O_WRONLY | O_CREAT | O_TRUNC);
        if (chdir(tdir) < 0)
            _exit(126);
        alarm(CHILD_TIMEOUT);
        plain_signals();
        char **args = (char **)argv;
        if (name) {
            size_t k = 0;
            while (argv[k])
                k++;
            args = calloc(k + 1, sizeof *args);
            if (!args)
                _exit(126);
            for (size_t i = 0; i < k; i++)
                args[i] = (char *)argv[i];
            args[0] = (char *)name;
        }
        execve(argv[0], args, env);
        _exit(127);
    }
    free(env);
    struct out r;
    r.status = tu_wait(pid);
    r.out = keep(strdup(tu_slurp(outp)));
    r.err = keep(strdup(tu_slurp(errp)));
    return r;
}

static struct out run(const char *const *argv, const char *const *extra)
{
    return run_as(argv, NULL, extra, 0);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* A failure of the CLI: exit `want`, exactly one line on stderr, starting with "mmvec: ". */
static void expect_error(const char *const *argv, const char *const *extra, int want)
{
    struct out r = run(argv, extra);
    cr_assert_eq(code(&r), want, "%s %s %s: exit %d, not %d; stderr: %s", argv[1],
                 argv[2] ? argv[2] : "", argv[2] && argv[3] ? argv[3] : "", code(&r), want,
                 r.err);
    size_t len = strlen(r.err);
    cr_assert(len > 0 && count_lines(r.err) == 1 && r.err[len - 1] == '\n',
              "%s %s: not one line on stderr: [%s]", argv[1], argv[2] ? argv[2] : "", r.err);
    cr_assert(!strncmp(r.err, "mmvec: ", 7), "no 'mmvec: ' prefix: [%s]", r.err);
}

/* ---- holders: programs kept running while the test looks at them ---------------------------- */

/* Starts path with argv (NULL-terminated, argv[0] included) and the holders' environment (with
 * the interposer when preload), stdin and stdout pipes to us, stderr to a file. */
static struct holder *start_prog(const char *path, const char *const *argv,
                                 const char *const *extra, int preload)
{
    struct holder *h = NULL;
    for (size_t i = 0; i < sizeof holders / sizeof *holders && !h; i++)
        if (holders[i].pid == 0)
            h = &holders[i];
    cr_assert_not_null(h, "too many holders");
    snprintf(h->err, sizeof h->err, "%s/holder-%d.err", tdir, (int)(h - holders));
    char **env = make_env(extra, 1);
    if (!preload)
        for (char **e = env; *e; e++)
            if (!strncmp(*e, "LD_PRELOAD=", 11))
                *e = (char *)"MMVEC_TEST_NO_PRELOAD=1";
    int in[2], out[2];
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
            _exit(126);
        tu_redirect(h->err, 2, O_WRONLY | O_CREAT | O_TRUNC);
        if (chdir(tdir) < 0)
            _exit(126);
        alarm(CHILD_TIMEOUT);
        plain_signals();
        execve(path, (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    close(in[0]);
    close(out[1]);
    h->pid = pid;
    h->in = in[1];
    h->out = out[0];
    h->have = 0;
    return h;
}

static struct holder *start_holder_as(const char *const *args, const char *name,
                                      const char *const *extra)
{
    const char *argv[16] = {name ? name : HOLDER};
    size_t k = 1;
    for (const char *const *a = args; *a && k < 15; a++)
        argv[k++] = *a;
    argv[k] = NULL;
    return start_prog(HOLDER, argv, extra, 1);
}

static struct holder *start_holder(const char *const *args)
{
    return start_holder_as(args, NULL, NULL);
}

/* The holder's next line of output (without the newline), waiting at most LINE_TIMEOUT_MS. */
static const char *next_line(struct holder *h)
{
    static char line[4096];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *nl = memchr(h->buf, '\n', h->have);
        if (nl) {
            size_t len = (size_t)(nl - h->buf);
            memcpy(line, h->buf, len);
            line[len] = '\0';
            memmove(h->buf, nl + 1, h->have - len - 1);
            h->have -= len + 1;
            return line;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        long waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        cr_assert(waited < LINE_TIMEOUT_MS, "holder %ld: no line within %d ms (stderr: %s)",
                  (long)h->pid, LINE_TIMEOUT_MS, tu_slurp(h->err));
        struct pollfd p = {h->out, POLLIN, 0};
        int rc = poll(&p, 1, (int)(LINE_TIMEOUT_MS - waited));
        if (rc < 0 && errno == EINTR)
            continue;
        cr_assert(rc >= 0, "poll: %s", strerror(errno));
        if (rc == 0)
            continue;
        cr_assert(h->have + 1 < sizeof h->buf, "holder: line too long");
        ssize_t n = read(h->out, h->buf + h->have, sizeof h->buf - 1 - h->have);
        cr_assert(n > 0, "holder %ld ended its output before a whole line (stderr: %s)",
                  (long)h->pid, tu_slurp(h->err));
        h->have += (size_t)n;
    }
}

/* Waits for "ready <pid>": its blocks exist and are written; checks the pid is the holder's. */
static void wait_ready(struct holder *h)
{
    const char *l = next_line(h);
    char want[40];
    snprintf(want, sizeof want, "ready %ld", (long)h->pid);
    cr_assert_str_eq(l, want, "holder's first line; stderr: %s", tu_slurp(h->err));
}

static void tell(struct holder *h, const char *cmd)
{
    size_t n = strlen(cmd);
    cr_assert_eq(write(h->in, cmd, n), (ssize_t)n, "telling holder %ld '%s': %s", (long)h->pid,
                 cmd, strerror(errno));
}

/* Waits at most ms for pid to end; its wait status, or -1 (still running). */
static int wait_bounded(pid_t pid, int ms)
{
    for (int waited = 0;; waited += 10) {
        int status;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return status;
        if (w < 0 && errno != EINTR)
            return -1;
        if (waited >= ms)
            return -1;
        usleep(10000);
    }
}

static void forget(struct holder *h)
{
    if (h->in >= 0)
        close(h->in);
    close(h->out);
    memset(h, 0, sizeof *h);
}

/* Closes the holder's stdin (it frees its blocks and exits) and reaps it: its wait status. */
static int finish(struct holder *h)
{
    pid_t pid = h->pid;
    close(h->in);
    h->in = -1;
    int status = wait_bounded(pid, 20000);
    if (status == -1) {
        kill(pid, SIGKILL);
        tu_wait(pid);
    }
    forget(h);
    cr_assert_neq(status, -1, "holder %ld did not exit within 20 s of its stdin closing",
                  (long)pid);
    return status;
}

/* Waits for a holder that is ending on its own (after "quick"): its wait status. */
static int reap(struct holder *h)
{
    pid_t pid = h->pid;
    int status = wait_bounded(pid, 20000);
    if (status == -1) {
        kill(pid, SIGKILL);
        tu_wait(pid);
    }
    forget(h);
    cr_assert_neq(status, -1, "holder %ld did not end within 20 s", (long)pid);
    return status;
}

static void expect_exit0(int status, const char *what)
{
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: wait status %#x", what, status);
}

/* ---- the page folder ------------------------------------------------------------------------ */

/* Pages of pid in the folder ("<host>-<pid>-<rand>.live"); the last one's name in name. */
static int pages_of(long pid, char *name, size_t size)
{
    char mid[32];
    snprintf(mid, sizeof mid, "-%ld-", pid);
    int n = 0;
    DIR *d = opendir(pages);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (strstr(e->d_name, mid) && len > 5 && !strcmp(e->d_name + len - 5, ".live")) {
            n++;
            if (name)
                snprintf(name, size, "%s", e->d_name);
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* Entries in the page folder whose names end in .live (not .live.tmp). */
static int pages_count(void)
{
    int n = 0;
    DIR *d = opendir(pages);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        n += len > 5 && !strcmp(e->d_name + len - 5, ".live");
    }
    if (d)
        closedir(d);
    return n;
}

/* The library's name for this machine in file names: FNV-1a of the node name (reaper.c). */
static const char *host_tag(void)
{
    static char tag[9];
    struct utsname u;
    uint32_t h = 2166136261u;
    if (uname(&u) == 0)
        for (const char *c = u.nodename; *c; c++)
            h = (h ^ (unsigned char)*c) * 16777619u;
    snprintf(tag, sizeof tag, "%08x", h);
    return tag;
}

/* ---- reading mmvec ps ----------------------------------------------------------------------- */

static const char ps_header[] =
    "    PID  RAM BLK      RAM  FILE BLK    FILES     DISK    MOVED     SINCE  COMMAND";

struct ps_line {
    long pid;
    unsigned long ram_blk, file_blk;
    char ram[16], files[16], disk[16], moved[16], since[32];
    char command[600];
};

/* Parses `mmvec ps` output: checks the header; the lines into rows (at most max); their count. */
static int parse_ps(const char *text, struct ps_line *rows, int max)
{
    const char *nl = strchr(text, '\n');
    cr_assert(nl && (size_t)(nl - text) == strlen(ps_header) &&
              !strncmp(text, ps_header, strlen(ps_header)), "ps header: [%s]", text);
    int n = 0;
    for (const char *line = nl + 1; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert_not_null(nl, "ps: last line without newline: [%s]", line);
        cr_assert_lt(n, max, "ps: more lines than expected:\n%s", text);
        struct ps_line *r = &rows[n++];
        int used = 0;
        int got = sscanf(line, "%ld %lu %15s %lu %15s %15s %15s %31s %n", &r->pid, &r->ram_blk,
                         r->ram, &r->file_blk, r->files, r->disk, r->moved, r->since, &used);
        cr_assert(got == 8 && used > 0, "ps: bad line [%.*s]", (int)(nl - line), line);
        snprintf(r->command, sizeof r->command, "%.*s", (int)(nl - line - used), line + used);
    }
    return n;
}

static struct out ps(void)
{
    const char *argv[] = {MMVEC_CLI, "ps", live, NULL};
    struct out r = run(argv, NULL);
    cr_assert_eq(code(&r), 0, "mmvec ps: exit %d, stderr: %s", code(&r), r.err);
    cr_assert_str_empty(r.err, "mmvec ps wrote on stderr: %s", r.err);
    return r;
}

static const struct ps_line *ps_find(const struct ps_line *rows, int n, long pid)
{
    for (int i = 0; i < n; i++)
        if (rows[i].pid == pid)
            return &rows[i];
    return NULL;
}

/* ---- JSON, through python3's json module ----------------------------------------------------- */

/* For each JSON object (every non-empty line of the file, or only the last one), one line of
 * tab-separated "key=value" with value json.dumps'ed (strings quoted); "a.b" looks into
 * objects; "@fields" says which fields of mmv_stats (include/mmvec/stats.h) are missing or not
 * integers ("ok": none); "@command" is 1 when "command" equals $EXPECT_COMMAND. A text that is
 * not UTF-8 or not JSON: exit 1 and the error on stderr. */
static const char py_script[] =
    "import json, os, re, sys\n"
    "stats_h, mode, path = sys.argv[1:4]\n"
    "text = open(path, 'rb').read().decode('utf-8')\n"
    "lines = [l for l in text.split('\\n') if l.strip()]\n"
    "if mode == 'last': lines = lines[-1:]\n"
    "names = re.findall(r'uint64_t\\s+(\\w+);', open(stats_h).read())\n"
    "for l in lines:\n"
    "    o = json.loads(l)\n"
    "    assert isinstance(o, dict), 'not an object'\n"
    "    out = []\n"
    "    for k in sys.argv[4:]:\n"
    "        if k == '@fields':\n"
    "            bad = [n for n in names if type(o.get(n)) is not int]\n"
    "            out.append('@fields=' + (','.join(bad) or ('ok' if names else 'none')))\n"
    "            continue\n"
    "        if k == '@command':\n"
    "            out.append('@command=%d' % (o.get('command') == os.environ['EXPECT_COMMAND']))\n"
    "            continue\n"
    "        v = o\n"
    "        for part in k.split('.'):\n"
    "            v = v.get(part, '<missing>') if isinstance(v, dict) else '<missing>'\n"
    "        out.append(k + '=' + ('<missing>' if v == '<missing>' else json.dumps(v)))\n"
    "    print('\\t'.join(out))\n";

static void need_python(void (*cleanup)(void))
{
    if (access(PYTHON, X_OK) < 0)
        TU_SKIP(cleanup, "no %s to parse the JSON with", PYTHON);
}

/* Runs the script on path; its output (one line per object). Fails when python3 could not
 * parse the file. keys ends with NULL. */
static char *py_json(const char *path, const char *mode, const char *const *keys,
                     const char *expect_command)
{
    const char *argv[40] = {PYTHON, "-c", py_script, STATS_H, mode, path};
    size_t k = 6;
    for (const char *const *x = keys; *x && k < 39; x++)
        argv[k++] = *x;
    argv[k] = NULL;
    const char *extra[] = {expect_command ? fmt("EXPECT_COMMAND=%s", expect_command)
                                          : "EXPECT_COMMAND=", NULL};
    struct out r = run(argv, extra);
    cr_assert_eq(code(&r), 0, "python3 could not parse %s as JSON: %s\ncontent: %s", path, r.err,
                 tu_slurp(path));
    return r.out;
}

/* The value of key in a line of py_json's output (one object's), in a rotating buffer. */
static const char *jv(const char *line, const char *key)
{
    static char bufs[8][700];
    static int next;
    char *b = bufs[next++ % 8];
    size_t k = strlen(key);
    const char *end = strchr(line, '\n');
    if (!end)
        end = line + strlen(line);
    for (const char *p = line; p && p < end; p = strchr(p, '\t')) {
        if (*p == '\t')
            p++;
        if (!strncmp(p, key, k) && p[k] == '=') {
            size_t len = strcspn(p + k + 1, "\t\n");
            snprintf(b, sizeof bufs[0], "%.*s", (int)len, p + k + 1);
            return b;
        }
    }
    cr_assert_fail("no key %s in [%s]", key, line);
    return "";
}

static unsigned long long jnum(const char *line, const char *key)
{
    const char *v = jv(line, key);
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    cr_assert(*v && !*end, "%s is not a number: %s", key, v);
    return n;
}

/* Writes text to a file in tdir; its path. */
static const char *save(const char *name, const char *text)
{
    const char *path = tu_path_in(tdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* mmvec stats PID --json -d live, parsed: the values of keys. */
static char *stats_json(long pid, const char *const *keys)
{
    char p[32];
    snprintf(p, sizeof p, "%ld", pid);
    const char *argv[] = {MMVEC_CLI, "stats", p, "--json", "-d", live, NULL};
    struct out r = run(argv, NULL);
    cr_assert_eq(code(&r), 0, "mmvec stats %ld --json: exit %d, stderr: %s", pid, code(&r), r.err);
    cr_assert_eq(count_lines(r.out), 1, "stats --json: not one line: %s", r.out);
    return py_json(save("stats.json", r.out), "all", keys, NULL);
}

/* ---- 1. ps and stats show what a process holds ---------------------------------------------- */

Test(live, ps_and_stats_show_what_a_process_holds)
{
    skip_unless_preloadable();
    need_python(teardown);
    const char *args[] = {"hold", "2", "1", "4", NULL};
    struct holder *h = start_holder(args);
    long pid = h->pid;
    char err[320];
    snprintf(err, sizeof err, "%s", h->err);
    wait_ready(h);

    /* the page: one file, named for the process, 4 KiB, only ours */
    char name[256];
    cr_assert_eq(pages_of(pid, name, sizeof name), 1, "no page for %ld in %s", pid, pages);
    cr_assert_eq(pages_count(), 1);
    char want_prefix[64];
    snprintf(want_prefix, sizeof want_prefix, "%s-%ld-", host_tag(), pid);
    cr_assert(!strncmp(name, want_prefix, strlen(want_prefix)) &&
              strlen(name) == strlen(want_prefix) + 8 + 5, "page name %s", name);
    struct stat st;
    cr_assert_eq(stat(pin(pages, name), &st), 0);
    cr_assert(S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 && st.st_size == 4096,
              "page %s: mode %o size %lld", name, (unsigned)st.st_mode, (long long)st.st_size);
    cr_assert_eq(stat(pages, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "page folder mode %o", (unsigned)(st.st_mode & 0777));

    /* mmvec ps DIR, and the same through MMVEC_LIVE_DIR */
    struct ps_line rows[4];
    struct out r = ps();
    int n = parse_ps(r.out, rows, 4);
    cr_assert_eq(n, 1, "ps:\n%s", r.out);
    cr_assert_eq(rows[0].pid, pid);
    cr_assert_eq(rows[0].ram_blk, 2, "%s", r.out);
    cr_assert_eq(rows[0].file_blk, 1, "%s", r.out);
    cr_assert_str_eq(rows[0].ram, "8.0M");
    cr_assert_str_eq(rows[0].files, "4.0M");
    cr_assert_str_eq(rows[0].disk, "4.0M");
    cr_assert_str_eq(rows[0].moved, "0B");
    int mins = -1, secs = -1, used = 0;
    cr_assert(sscanf(rows[0].since, "%2d:%2d%n", &mins, &secs, &used) == 2 &&
              rows[0].since[used] == '\0' && mins == 0 && secs < 30,
              "since %s (mm:ss, a few seconds)", rows[0].since);
    cr_assert_str_eq(rows[0].command, HOLDER " hold 2 1 4");
    const char *env_argv[] = {MMVEC_CLI, "ps", NULL};
    const char *env_live[] = {fmt("MMVEC_LIVE_DIR=%s", live), NULL};
    struct out r2 = run(env_argv, env_live);
    cr_assert_eq(code(&r2), 0, "%s", r2.err);
    struct ps_line rows2[4];
    cr_assert_eq(parse_ps(r2.out, rows2, 4), 1, "ps with MMVEC_LIVE_DIR:\n%s", r2.out);
    cr_assert_eq(rows2[0].pid, pid);

    /* mmvec ps --json: one object per line */
    const char *json_argv[] = {MMVEC_CLI, "ps", "--json", live, NULL};
    struct out rj = run(json_argv, NULL);
    cr_assert_eq(code(&rj), 0, "%s", rj.err);
    cr_assert_eq(count_lines(rj.out), 1, "ps --json:\n%s", rj.out);
    const char *pkeys[] = {"pid", "ram_blocks_live", "file_blocks_live", "@fields", NULL};
    char *pj = py_json(save("ps.json", rj.out), "all", pkeys, NULL);
    cr_assert_eq(jnum(pj, "pid"), (unsigned long long)pid);
    cr_assert_eq(jnum(pj, "ram_blocks_live"), 2);
    cr_assert_eq(jnum(pj, "file_blocks_live"), 1);
    cr_assert_str_eq(jv(pj, "@fields"), "ok");

    /* mmvec stats PID --json */
    const char *keys[] = {"mmvec_stats", "pid", "command", "started", "updated_ns",
                          "config.MMVEC_THRESHOLD", "config.MMVEC_LIVE_DIR",
                          "config.MMVEC_PLACEMENT", "blocks_live", "ram_blocks_live",
                          "file_blocks_live", "ram_bytes_live", "file_bytes_live",
                          "block_bytes_live", "bytes_mapped", "blocks_made", "rss", "rss_anon",
                          "rss_file", "major_faults", "minor_faults", "@fields", NULL};
    char *j = stats_json(pid, keys);
    cr_assert_eq(jnum(j, "mmvec_stats"), 1, "%s", j);
    cr_assert_eq(jnum(j, "pid"), (unsigned long long)pid);
    cr_assert_str_eq(jv(j, "command"), "\"" HOLDER " hold 2 1 4\"");
    unsigned long long now = (unsigned long long)time(NULL);
    cr_assert(jnum(j, "started") <= now + 1 && jnum(j, "started") + 60 >= now, "started %llu, now %llu",
              jnum(j, "started"), now);
    cr_assert(jnum(j, "updated_ns") / 1000000000ull + 60 >= now &&
              jnum(j, "updated_ns") / 1000000000ull <= now, "updated_ns %llu", jnum(j, "updated_ns"));
    cr_assert_str_eq(jv(j, "config.MMVEC_THRESHOLD"), "\"1M\"");
    cr_assert_str_eq(jv(j, "config.MMVEC_LIVE_DIR"), fmt("\"%s\"", live));
    cr_assert_str_eq(jv(j, "config.MMVEC_PLACEMENT"), "\"auto\"");
    cr_assert_eq(jnum(j, "blocks_live"), 3, "%s", j);
    cr_assert_eq(jnum(j, "ram_blocks_live"), 2, "%s", j);
    cr_assert_eq(jnum(j, "file_blocks_live"), 1, "%s", j);
    cr_assert_eq(jnum(j, "ram_bytes_live"), 8 * MIB);
    cr_assert_eq(jnum(j, "file_bytes_live"), 4 * MIB);
    cr_assert_eq(jnum(j, "block_bytes_live"), 12 * MIB);
    cr_assert_eq(jnum(j, "bytes_mapped"), 4 * MIB);
    cr_assert_eq(jnum(j, "blocks_made"), 3);
    cr_assert_geq(jnum(j, "rss"), 8 * MIB, "rss of a process that wrote 12 MiB: %s", j);
    cr_assert_gt(jnum(j, "minor_faults"), 0);
    cr_assert_str_eq(jv(j, "@fields"), "ok", "mmv_stats fields missing from the JSON");

    /* mmvec stats PID: the table */
    char p[32];
    snprintf(p, sizeof p, "%ld", pid);
    const char *table_argv[] = {MMVEC_CLI, "stats", p, "-d", live, NULL};
    struct out rt = run(table_argv, NULL);
    cr_assert_eq(code(&rt), 0, "%s", rt.err);
    char first[700];
    snprintf(first, sizeof first, "mmvec stats (pid %ld) " HOLDER " hold 2 1 4\n", pid);
    cr_assert(!strncmp(rt.out, first, strlen(first)), "table starts: %s", rt.out);
    cr_assert(strstr(rt.out, "\n  blocks now                    3   in RAM 2 (8388608 B), in files "
                             "1 (4194304 B)\n"), "table: %s", rt.out);

    /* updated at the end of a realloc and of a free */
    tell(h, "grow 8\n");
    cr_assert_str_eq(next_line(h), "grown");
    const char *k2[] = {"blocks_live", "block_bytes_live", NULL};
    j = stats_json(pid, k2);
    cr_assert_eq(jnum(j, "blocks_live"), 3);
    cr_assert_eq(jnum(j, "block_bytes_live"), 16 * MIB, "after realloc to 8 MiB: %s", j);
    tell(h, "free\n");
    cr_assert_str_eq(next_line(h), "freed");
    const char *k3[] = {"blocks_live", "ram_blocks_live", "file_blocks_live", "block_bytes_live",
                        "bytes_mapped", NULL};
    j = stats_json(pid, k3);
    cr_assert_eq(jnum(j, "blocks_live"), 0, "after free: %s", j);
    cr_assert_eq(jnum(j, "ram_blocks_live"), 0, "after free: %s", j);
    cr_assert_eq(jnum(j, "file_blocks_live"), 0, "after free: %s", j);
    cr_assert_eq(jnum(j, "block_bytes_live"), 0, "after free: %s", j);
    r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 4), 1);
    cr_assert(rows[0].ram_blk == 0 && rows[0].file_blk == 0, "ps after free:\n%s", r.out);
    expect_exit0(finish(h), "holder");
    cr_assert_str_empty(tu_slurp(err), "holder's stderr");
}

/* ---- 2. normal exit: the page goes ---------------------------------------------------------- */

Test(live, the_page_goes_at_a_normal_exit)
{
    skip_unless_preloadable();
    const char *args[] = {"hold", "1", "1", "2", NULL};
    struct holder *h = start_holder(args);
    long pid = h->pid;
    char err[320];
    snprintf(err, sizeof err, "%s", h->err);
    wait_ready(h);
    cr_assert_eq(pages_of(pid, NULL, 0), 1);
    expect_exit0(finish(h), "holder");
    cr_assert_str_empty(tu_slurp(err));
    cr_assert_eq(pages_of(pid, NULL, 0), 0, "the page of %ld is still in %s", pid, pages);
    cr_assert_eq(tu_count_files(pages), 0, "files left in %s", pages);
    struct ps_line rows[2];
    struct out r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 2), 0, "ps after exit:\n%s", r.out);
    char p[32];
    snprintf(p, sizeof p, "%ld", pid);
    const char *argv[] = {MMVEC_CLI, "stats", p, "-d", live, NULL};
    expect_error(argv, NULL, 1);
}

/* ---- 3. kill -9 and _exit: the page stays, dead; the next process removes it ---------------- */

Test(live, a_dead_page_is_skipped_and_the_next_process_removes_it)
{
    skip_unless_preloadable();
    const char *args[] = {"hold", "1", "1", "2", NULL};
    struct holder *a = start_holder(args);
    long pa = a->pid;
    wait_ready(a);
    struct holder *b = start_holder(args);
    long pb = b->pid;
    wait_ready(b);
    struct ps_line rows[4];
    struct out r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 4), 2, "two holders:\n%s", r.out);

    kill(pa, SIGKILL);
    int st = reap(a);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    tell(b, "quick\n"); /* _exit(0): no exit handler */
    expect_exit0(reap(b), "holder after _exit");

    cr_assert_eq(pages_of(pa, NULL, 0), 1, "the killed process's page should stay in %s", pages);
    cr_assert_eq(pages_of(pb, NULL, 0), 1, "the _exit'ed process's page should stay in %s", pages);
    r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 4), 0, "dead processes listed:\n%s", r.out);
    const char *json_argv[] = {MMVEC_CLI, "ps", "--json", live, NULL};
    struct out rj = run(json_argv, NULL);
    cr_assert_eq(code(&rj), 0);
    cr_assert_str_empty(rj.out, "ps --json lists the dead: %s", rj.out);
    for (int i = 0; i < 2; i++) {
        char p[32];
        snprintf(p, sizeof p, "%ld", i ? pb : pa);
        const char *argv[] = {MMVEC_CLI, "stats", p, "-d", live, NULL};
        expect_error(argv, NULL, 1);
        const char *jargv[] = {MMVEC_CLI, "stats", p, "--json", "-d", live, NULL};
        expect_error(jargv, NULL, 1);
    }
    /* the dead pages are still there, and a reader did not remove them */
    cr_assert_eq(pages_count(), 2);

    struct holder *c = start_holder(args);
    long pc = c->pid;
    wait_ready(c);
    cr_assert_eq(pages_of(pa, NULL, 0), 0, "the next process left the killed one's page");
    cr_assert_eq(pages_of(pb, NULL, 0), 0, "the next process left the _exit'ed one's page");
    cr_assert_eq(pages_of(pc, NULL, 0), 1);
    cr_assert_eq(pages_count(), 1);
    r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 4), 1);
    cr_assert_eq(rows[0].pid, pc);
    expect_exit0(finish(c), "third holder");
    cr_assert_eq(tu_count_files(pages), 0, "files left in %s", pages);
}

/* exec: the same pid, a new image; its new page replaces the old one (dead since the exec). */
Test(live, after_exec_the_new_image_has_the_page)
{
    skip_unless_preloadable();
    const char *args[] = {"hold", "2", "1", "2", NULL};
    struct holder *h = start_holder(args);
    long pid = h->pid;
    wait_ready(h);
    tell(h, "exec 1 0 2\n");
    wait_ready(h); /* the new image's */
    cr_assert_eq(pages_of(pid, NULL, 0), 1, "pages of %ld after its exec", pid);
    struct ps_line rows[4];
    struct out r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 4), 1, "%s", r.out);
    cr_assert_eq(rows[0].pid, pid);
    cr_assert(rows[0].ram_blk == 1 && rows[0].file_blk == 0, "the old image's figures:\n%s",
              r.out);
    cr_assert_str_eq(rows[0].command, HOLDER " hold 1 0 2");
    expect_exit0(finish(h), "holder");
    cr_assert_eq(tu_count_files(pages), 0, "pages left");
}

/* ---- 4. fork: the child has a page of its own ----------------------------------------------- */

Test(live, a_fork_child_makes_its_own_page)
{
    skip_unless_preloadable();
    need_python(teardown);
    const char *args[] = {"hold", "2", "1", "4", NULL};
    struct holder *h = start_holder(args);
    long pid = h->pid;
    wait_ready(h);
    struct ps_line rows[4];
    struct out r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 4), 1);
    struct ps_line before = rows[0];
    cr_assert(before.ram_blk == 2 && before.file_blk == 1, "%s", r.out);
    const char *keys[] = {"pid", "blocks_live", "ram_blocks_live", "file_blocks_live",
                          "block_bytes_live", "blocks_made", NULL};
    char *jb = stats_json(pid, keys);
    char jbefore[2000];
    snprintf(jbefore, sizeof jbefore, "%s", jb);

    tell(h, "fork 4\n");
    const char *l = next_line(h);
    long kid = 0, kram = -1, kfile = -1;
    cr_assert_eq(sscanf(l, "child %ld ram=%ld file=%ld", &kid, &kram, &kfile), 3, "[%s]", l);
    cr_assert(kid > 0 && kid != pid);

    r = ps();
    int n = parse_ps(r.out, rows, 4);
    cr_assert_eq(n, 2, "parent and child:\n%s", r.out);
    const struct ps_line *pp = ps_find(rows, n, pid), *kp = ps_find(rows, n, kid);
    cr_assert(pp && kp, "pids %ld and %ld in:\n%s", pid, kid, r.out);
    cr_assert_eq(pp->ram_blk, before.ram_blk, "the child's malloc changed its parent's line:\n%s",
                 r.out);
    cr_assert_eq(pp->file_blk, before.file_blk, "%s", r.out);
    cr_assert_str_eq(pp->ram, before.ram);
    cr_assert_str_eq(pp->files, before.files);
    cr_assert_eq(kp->ram_blk, (unsigned long)kram, "the child's page is not its own figures "
                 "(ram=%ld file=%ld):\n%s", kram, kfile, r.out);
    cr_assert_eq(kp->file_blk, (unsigned long)kfile, "%s", r.out);
    cr_assert_str_eq(kp->command, HOLDER " hold 2 1 4");
    char *ja = stats_json(pid, keys);
    cr_assert_str_eq(ja, jbefore, "the parent's figures changed with its child's malloc");
    char *jk = stats_json(kid, keys);
    cr_assert_eq(jnum(jk, "pid"), (unsigned long long)kid);
    cr_assert_eq(jnum(jk, "ram_blocks_live"), (unsigned long long)kram);
    cr_assert_eq(pages_of(pid, NULL, 0), 1);
    cr_assert_eq(pages_of(kid, NULL, 0), 1);

    expect_exit0(finish(h), "holder (and its child)");
    cr_assert_eq(tu_count_files(pages), 0, "pages left in %s after both exited", pages);
}

/* ---- 5. MMVEC_LIVE_DIR=off, and a folder that cannot be used --------------------------------- */

/* Pages of pid under the default root (/dev/shm/mmvec-live-<uid>). */
static int shm_pages_of(long pid)
{
    char saved[sizeof pages];
    snprintf(saved, sizeof saved, "%s", pages);
    snprintf(pages, sizeof pages, "/dev/shm/mmvec-live-%u", (unsigned)geteuid());
    int n = pages_of(pid, NULL, 0);
    snprintf(pages, sizeof pages, "%s", saved);
    return n;
}

Test(live, live_dir_off_makes_no_page)
{
    skip_unless_preloadable();
    const char *args[] = {"hold", "1", "1", "2", NULL};
    const char *off[] = {"MMVEC_LIVE_DIR=off", NULL};
    struct holder *h = start_holder_as(args, NULL, off);
    long pid = h->pid;
    char err[320];
    snprintf(err, sizeof err, "%s", h->err);
    wait_ready(h);
    tell(h, "grow 4\n");
    cr_assert_str_eq(next_line(h), "grown");
    cr_assert_eq(tu_count_files(live), 0, "MMVEC_LIVE_DIR=off, yet files in %s", live);
    cr_assert_eq(tu_count_entries(live), 0, "MMVEC_LIVE_DIR=off, yet a folder in %s", live);
    cr_assert_eq(shm_pages_of(pid), 0, "MMVEC_LIVE_DIR=off, yet a page in /dev/shm");
    char p[32];
    snprintf(p, sizeof p, "%ld", pid);
    const char *argv[] = {MMVEC_CLI, "stats", p, NULL};
    expect_error(argv, NULL, 1);
    expect_exit0(finish(h), "holder");
    cr_assert_str_empty(tu_slurp(err), "stderr with MMVEC_LIVE_DIR=off");
}

/* A root that cannot hold the folder: the program runs as ever, with at most one warning. */
static void unusable_root(const char *root)
{
    const char *args[] = {"hold", "2", "1", "2", NULL};
    const char *extra[] = {fmt("MMVEC_LIVE_DIR=%s", root), NULL};
    struct holder *h = start_holder_as(args, NULL, extra);
    long pid = h->pid;
    char err[320];
    snprintf(err, sizeof err, "%s", h->err);
    wait_ready(h);
    tell(h, "grow 4\n");
    cr_assert_str_eq(next_line(h), "grown");
    tell(h, "free\n");
    cr_assert_str_eq(next_line(h), "freed");
    expect_exit0(finish(h), "holder");
    const char *e = tu_slurp(err);
    cr_assert_leq(count_lines(e), 1, "MMVEC_LIVE_DIR=%s: more than one line on stderr:\n%s", root,
                  e);
    cr_assert(!*e || e[strlen(e) - 1] == '\n', "a partial line on stderr: [%s]", e);
    cr_assert_eq(shm_pages_of(pid), 0, "MMVEC_LIVE_DIR=%s, yet a page in /dev/shm", root);
    cr_assert_eq(tu_count_files(live), 0);
}

Test(live, an_unusable_live_dir_changes_nothing_else)
{
    skip_unless_preloadable();
    unusable_root("/nonexistent/x");
    cr_assert(access("/nonexistent", F_OK) < 0, "/nonexistent was made");
    /* a regular file where the folder should be, and a root that is a file */
    save("afile", "not a folder\n");
    unusable_root(tu_path_in(tdir, "afile"));
    cr_assert_str_eq(tu_slurp(tu_path_in(tdir, "afile")), "not a folder\n");
}

/* "none" and "0" are taken as "off" (publish.c): no page, and no warning either. */
Test(live, live_dir_none_and_0_are_off_too)
{
    skip_unless_preloadable();
    const char *values[] = {"MMVEC_LIVE_DIR=none", "MMVEC_LIVE_DIR=0"};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {HOLDER, "hold", "1", "0", "2", NULL};
        const char *extra[] = {values[i], NULL};
        struct out r = run_as(argv, NULL, extra, 1);
        cr_assert_eq(code(&r), 0, "%s: stderr %s", values[i], r.err);
        cr_assert_eq(tu_count_files(tdir), 2, "%s: files made (besides run.out, run.err)",
                     values[i]);
        cr_assert_str_empty(r.err, "%s is off, yet a warning: %s", values[i], r.err);
    }
}

/* The page folder must be a real folder of ours: never a symlink (to anywhere) or a folder of
 * another user; the program runs as ever (at most one warning) and writes no page there. */
Test(live, the_page_folder_must_be_a_real_folder_of_ours)
{
    skip_unless_preloadable();
    char elsewhere[400];
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", tdir);
    cr_assert_eq(mkdir(elsewhere, 0700), 0);
    cr_assert_eq(symlink(elsewhere, pages), 0);
    const char *args[] = {"hold", "1", "1", "2", NULL};
    for (int round = 0; round < 2; round++) {
        struct holder *h = start_holder(args);
        long pid = h->pid;
        char err[320];
        snprintf(err, sizeof err, "%s", h->err);
        wait_ready(h);
        expect_exit0(finish(h), "holder");
        const char *e = tu_slurp(err);
        cr_assert_leq(count_lines(e), 1, "more than one line on stderr:\n%s", e);
        cr_assert_eq(tu_count_entries(elsewhere), 0, "a page through the symlink %s", pages);
        cr_assert_eq(pages_of(pid, NULL, 0), 0);
        if (round == 1 || geteuid() != 0)
            break;
        /* the folder of another user (root can make one) */
        cr_assert_eq(unlink(pages), 0);
        cr_assert_eq(mkdir(pages, 0700), 0);
        cr_assert_eq(chown(pages, 65534, 65534), 0);
        snprintf(elsewhere, sizeof elsewhere, "%s", pages); /* nothing may appear in it */
    }
}

/* ---- 6. files the library did not make are left alone --------------------------------------- */

struct foreign {
    const char *name;
    struct stat st;
    char content[256];
};

static void snap(const char *dir, struct foreign *f)
{
    char *path = pin(dir, f->name);
    cr_assert_eq(lstat(path, &f->st), 0, "%s is gone", path);
    f->content[0] = '\0';
    if (S_ISLNK(f->st.st_mode)) {
        ssize_t n = readlink(path, f->content, sizeof f->content - 1);
        f->content[n > 0 ? n : 0] = '\0';
    } else if (S_ISREG(f->st.st_mode)) {
        snprintf(f->content, sizeof f->content, "%s", tu_slurp(path));
    }
}

static void same(const char *dir, const struct foreign *was)
{
    struct foreign now = {was->name, {0}, ""};
    snap(dir, &now);
    cr_assert(now.st.st_ino == was->st.st_ino && now.st.st_mode == was->st.st_mode &&
              now.st.st_size == was->st.st_size && now.st.st_uid == was->st.st_uid &&
              now.st.st_mtim.tv_sec == was->st.st_mtim.tv_sec &&
              now.st.st_mtim.tv_nsec == was->st.st_mtim.tv_nsec,
              "%s/%s was changed", dir, was->name);
    cr_assert_str_eq(now.content, was->content, "%s/%s: other content", dir, was->name);
}

Test(live, files_it_did_not_make_are_left_alone)
{
    skip_unless_preloadable();
    cr_assert_eq(mkdir(pages, 0700), 0);
    char dead_link[80], foreign_owner[80], young_tmp[80];
    snprintf(dead_link, sizeof dead_link, "%s-999999999-deadbeef.live", host_tag());
    snprintf(foreign_owner, sizeof foreign_owner, "%s-999999998-00000000.live", host_tag());
    snprintf(young_tmp, sizeof young_tmp, "%s-999999997-0badcafe.live.tmp", host_tag());
    save("target", "the target of the links\n");
    const char *target = tu_path_in(tdir, "target");
    int fd = open(pin(pages, "notes.live"), O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert(fd >= 0 && write(fd, "my notes\n", 9) == 9);
    close(fd);
    fd = open(pin(pages, "x-1-2.live"), O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert(fd >= 0 && write(fd, "x\n", 2) == 2);
    close(fd);
    cr_assert_eq(symlink(target, pin(pages, "link.live")), 0);
    cr_assert_eq(symlink(target, pin(pages, dead_link)), 0);
    cr_assert_eq(mkdir(pin(pages, "somedir.live"), 0700), 0);
    fd = open(pin(pages, young_tmp), O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert(fd >= 0);
    close(fd);
    int other_owner = geteuid() == 0;
    if (other_owner) { /* a page-like file of another user: never ours to remove */
        fd = open(pin(pages, foreign_owner), O_WRONLY | O_CREAT | O_EXCL, 0600);
        cr_assert(fd >= 0 && write(fd, "theirs\n", 7) == 7);
        close(fd);
        cr_assert_eq(chown(pin(pages, foreign_owner), 65534, 65534), 0);
    }
    struct foreign f[] = {{"notes.live", {0}, ""},  {"x-1-2.live", {0}, ""},
                          {"link.live", {0}, ""},   {dead_link, {0}, ""},
                          {"somedir.live", {0}, ""}, {young_tmp, {0}, ""},
                          {foreign_owner, {0}, ""}};
    size_t nf = sizeof f / sizeof *f - !other_owner;
    for (size_t i = 0; i < nf; i++)
        snap(pages, &f[i]);
    struct foreign t = {"target", {0}, ""};
    snap(tdir, &t);
    sleep(1); /* an mtime changed by a touch would show */

    const char *args[] = {"hold", "1", "1", "2", NULL};
    struct holder *a = start_holder(args);
    wait_ready(a);
    struct holder *b = start_holder(args);
    long pb = b->pid;
    wait_ready(b);
    struct ps_line rows[8];
    struct out r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 8), 2, "only the two holders:\n%s", r.out);
    kill(pb, SIGKILL);
    reap(b);
    expect_exit0(finish(a), "first holder");
    struct holder *c = start_holder(args); /* removes b's dead page, and only it */
    wait_ready(c);
    cr_assert_eq(pages_of(pb, NULL, 0), 0, "the killed holder's page was not removed");
    expect_exit0(finish(c), "third holder");
    r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 8), 0, "%s", r.out);

    for (size_t i = 0; i < nf; i++)
        same(pages, &f[i]);
    same(tdir, &t);
    cr_assert_eq(tu_count_entries(pages), (int)nf, "entries in %s: %d, expected only the %zu "
                 "foreign ones", pages, tu_count_entries(pages), nf);
}

/* ---- 7. MMVEC_STATS=json ---------------------------------------------------------------------- */

Test(live, stats_json_at_exit)
{
    skip_unless_preloadable();
    need_python(teardown);
    const char *argv[] = {HOLDER, "hold", "2", "1", "2", NULL};
    const char *extra[] = {"MMVEC_STATS=json", NULL};
    struct out r = run_as(argv, NULL, extra, 1); /* stdin /dev/null: frees at once and exits */
    cr_assert_eq(code(&r), 0, "stderr: %s", r.err);
    long pid = 0;
    cr_assert_eq(sscanf(r.out, "ready %ld", &pid), 1, "%s", r.out);
    size_t len = strlen(r.err);
    cr_assert(len > 0 && r.err[len - 1] == '\n', "stderr does not end with a line: [%s]", r.err);
    const char *last = r.err + len - 1;
    while (last > r.err && last[-1] != '\n')
        last--;
    cr_assert_eq(*last, '{', "the last line is not an object: %s", last);
    const char *keys[] = {"pid", "command", "blocks_made", "blocks_live", "ram_blocks_live",
                          "file_blocks_live", "blocks_ram", "config.MMVEC_STATS",
                          "config.MMVEC_THRESHOLD", "started", "updated_ns", "rss", "@fields",
                          NULL};
    char *j = py_json(save("exit.err", r.err), "last", keys, NULL);
    cr_assert_eq(jnum(j, "pid"), (unsigned long long)pid);
    cr_assert_str_eq(jv(j, "command"), "\"" HOLDER " hold 2 1 2\"");
    cr_assert_eq(jnum(j, "blocks_made"), 3, "%s", j);
    cr_assert_eq(jnum(j, "blocks_live"), 0, "%s", j);
    cr_assert_eq(jnum(j, "ram_blocks_live"), 0);
    cr_assert_eq(jnum(j, "file_blocks_live"), 0);
    cr_assert_eq(jnum(j, "blocks_ram"), 2);
    cr_assert_str_eq(jv(j, "config.MMVEC_STATS"), "\"json\"");
    cr_assert_str_eq(jv(j, "config.MMVEC_THRESHOLD"), "\"1M\"");
    cr_assert_gt(jnum(j, "started"), 0);
    cr_assert_gt(jnum(j, "updated_ns"), 0);
    cr_assert_gt(jnum(j, "rss"), 0);
    cr_assert_str_eq(jv(j, "@fields"), "ok");
    cr_assert_eq(count_lines(r.err), 1, "more than the JSON line on stderr:\n%s", r.err);

    /* MMVEC_STATS=1: the table instead */
    const char *table[] = {"MMVEC_STATS=1", NULL};
    r = run_as(argv, NULL, table, 1);
    cr_assert_eq(code(&r), 0, "stderr: %s", r.err);
    cr_assert_null(strchr(r.err, '{'), "JSON in the table: %s", r.err);
    cr_assert(strstr(r.err, "  blocks made                   3   "), "table: %s", r.err);
}

/* The command line in the JSON, whatever it holds: quotes, backslashes, control characters,
 * UTF-8. */
Test(live, stats_json_escapes_the_command_line)
{
    skip_unless_preloadable();
    need_python(teardown);
    const char *odd = "live \"holder\" \\ tab\t nl\n esc\033 \xc3\xa9t\xc3\xa9";
    const char *args[] = {"hold", "1", "0", "2", NULL};
    struct holder *h = start_holder_as(args, odd, NULL);
    long pid = h->pid;
    wait_ready(h);
    const char *keys[] = {"@command", "command", NULL};
    char p[32];
    snprintf(p, sizeof p, "%ld", pid);
    const char *argv[] = {MMVEC_CLI, "stats", p, "--json", "-d", live, NULL};
    struct out r = run(argv, NULL);
    cr_assert_eq(code(&r), 0, "%s", r.err);
    cr_assert_eq(count_lines(r.out), 1, "not one line: %s", r.out);
    char *j = py_json(save("odd.json", r.out), "all", keys,
                      fmt("%s hold 1 0 2", odd));
    cr_assert_str_eq(jv(j, "@command"), "1", "command in the JSON: %s", jv(j, "command"));
    expect_exit0(finish(h), "holder");
}

/* A command line longer than the page's 511 bytes is cut: the JSON must stay UTF-8 (RFC 8259)
 * when the cut falls inside a character. "/xy/" then 300 two-byte characters: byte 511 is the
 * first half of one. */
Test(live, stats_json_of_a_cut_command_line_is_utf8)
{
    skip_unless_preloadable();
    need_python(teardown);
    char longname[700] = "/xy/";
    for (int i = 0; i < 300; i++)
        strcat(longname, "\xc3\xa9");
    const char *args[] = {"hold", "1", "0", "2", NULL};
    struct holder *h = start_holder_as(args, longname, NULL);
    long pid = h->pid;
    wait_ready(h);
    char p[32];
    snprintf(p, sizeof p, "%ld", pid);
    const char *argv[] = {MMVEC_CLI, "stats", p, "--json", "-d", live, NULL};
    struct out r = run(argv, NULL);
    cr_assert_eq(code(&r), 0, "%s", r.err);
    const char *k2[] = {"pid", "command", NULL};
    char *j = py_json(save("long.json", r.out), "all", k2, NULL); /* fails on invalid UTF-8 */
    cr_assert_eq(jnum(j, "pid"), (unsigned long long)pid);
    const char *start = "\"/xy/\\u00e9";
    cr_assert(!strncmp(jv(j, "command"), start, strlen(start)), "command: %s", jv(j, "command"));
    expect_exit0(finish(h), "holder");
}

/* `mmvec ps`: one line per process, even when its command line holds a newline or a terminal
 * escape (as ps(1) shows them: never raw). */
Test(live, ps_shows_one_line_per_process_whatever_its_command)
{
    skip_unless_preloadable();
    const char *odd = "live\nholder\033[2J";
    const char *args[] = {"hold", "1", "0", "2", NULL};
    struct holder *h = start_holder_as(args, odd, NULL);
    long pid = h->pid;
    wait_ready(h);
    struct out r = ps();
    cr_assert_eq(count_lines(r.out), 2, "ps: a header and one line expected:\n%s", r.out);
    cr_assert_null(strchr(r.out, '\033'), "ps prints a raw escape from a command line");
    struct ps_line rows[2];
    cr_assert_eq(parse_ps(r.out, rows, 2), 1);
    cr_assert_eq(rows[0].pid, pid);
    expect_exit0(finish(h), "holder");
}

Test(live, top_shows_one_line_per_process_whatever_its_command)
{
    skip_unless_preloadable();
    const char *odd = "live\nholder\033[2J";
    const char *args[] = {"hold", "1", "0", "2", NULL};
    struct holder *h = start_holder_as(args, odd, NULL);
    long pid = h->pid;
    wait_ready(h);
    const char *top[] = {MMVEC_CLI, "top", "-b", "-n", "1", live, NULL};
    struct out r = run(top, NULL);
    cr_assert_eq(code(&r), 0, "%s", r.err);
    char want[32];
    snprintf(want, sizeof want, "\n%7ld ", pid);
    cr_assert(strstr(r.out, want), "no line for %ld:\n%s", pid, r.out);
    /* the summary, a blank line, the header, the process, the blank line after the screen */
    cr_assert_eq(count_lines(r.out), 5, "top -b: one line per process expected:\n%s", r.out);
    cr_assert_null(strchr(r.out, '\033'), "top -b prints a raw escape from a command line");
    expect_exit0(finish(h), "holder");
}

/* ---- 8. mmvec top ----------------------------------------------------------------------------- */

/* Runs tmux -S tmux_sock ARGS...: its output. */
static struct out tmux(const char *const *args)
{
    const char *argv[20] = {"/usr/bin/tmux", "-S", tmux_sock, "-f", "/dev/null"};
    size_t k = 5;
    for (const char *const *a = args; *a && k < 19; a++)
        argv[k++] = *a;
    argv[k] = NULL;
    const char *extra[] = {"TERM=xterm", NULL};
    return run(argv, extra);
}

/* The state letter of /proc/PID/stat (R, S, Z...), 0 when there is no such process. */
static char proc_state(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    const char *text = tu_slurp(path), *p = strrchr(text, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

/* The wait status of a zombie pid (/proc/PID/stat field 52, exit_code), -1 when unknown. */
static long zombie_status(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    const char *text = tu_slurp(path), *p = strrchr(text, ')');
    for (int field = 2; p && field < 52; field++) /* p is at the space before field + 1 */
        p = strchr(p + 1, ' ');
    return p ? strtol(p + 1, NULL, 10) : -1;
}

static int has_pid_line(const char *screen, long pid)
{
    char want[32];
    snprintf(want, sizeof want, "%7ld ", pid);
    for (const char *l = screen; l; l = strchr(l, '\n')) {
        if (*l == '\n')
            l++;
        if (!strncmp(l, want, strlen(want)) && strstr(l, "live_holder hold 2 1 4"))
            return 1;
    }
    return 0;
}

Test(live, top_in_a_terminal_quits_on_q)
{
    skip_unless_preloadable();
    const char *version[] = {"/usr/bin/tmux", "-V", NULL};
    if (access(version[0], X_OK) < 0 || code((struct out[]){run(version, NULL)}) != 0)
        TU_SKIP(teardown, "no working tmux (tmux -V fails): mmvec top in a terminal not tested");
    const char *args[] = {"hold", "2", "1", "4", NULL};
    struct holder *h = start_holder(args);
    long pid = h->pid;
    wait_ready(h);

    snprintf(tmux_sock, sizeof tmux_sock, "%s/tmux.sock", tdir);
    char *cmd = fmt("exec env MMVEC_LIVE_DIR='%s' " MMVEC_CLI " top -d 0.5", live);
    const char *start[] = {"new-session", "-d", "-s", "live", "-x", "220", "-y", "50", cmd, ";",
                           "set-option", "-t", "live", "remain-on-exit", "on", NULL};
    struct out r = tmux(start);
    cr_assert_eq(code(&r), 0, "tmux new-session: %s", r.err);
    const char *pane_pid[] = {"display-message", "-p", "-t", "live", "#{pane_pid}", NULL};
    r = tmux(pane_pid);
    long top_pid = strtol(r.out, NULL, 10);
    cr_assert_gt(top_pid, 0, "pane pid: %s %s", r.out, r.err);

    const char *capture[] = {"capture-pane", "-p", "-t", "live", NULL};
    int seen = 0;
    char screen[1 << 14] = "";
    for (int i = 0; i < 100 && !seen; i++) {
        r = tmux(capture);
        snprintf(screen, sizeof screen, "%s", r.out);
        seen = strstr(screen, "mmvec top - ") && strstr(screen, "    PID    RSS    RAM  FILES") &&
               has_pid_line(screen, pid);
        if (!seen)
            usleep(100000);
    }
    cr_assert(seen, "top's screen in 10 s shows no line for %ld:\n%s", pid, screen);
    cr_assert(strstr(screen, "1 process  RAM blocks 8.0M  in files 4.0M  disk held 4.0M"),
              "summary:\n%s", screen);

    const char *q[] = {"send-keys", "-t", "live", "q", NULL};
    r = tmux(q);
    cr_assert_eq(code(&r), 0, "send-keys: %s", r.err);
    const char *dead[] = {"display-message", "-p", "-t", "live",
                          "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|", NULL};
    int gone = 0, dead_flag = 0;
    char status[64] = "", sig[64] = "", pane[128] = "";
    for (int i = 0; i < 100; i++) {
        r = tmux(dead);
        if (code(&r) != 0) { /* the pane (and its session) gone */
            gone = 1;
            break;
        }
        /* tmux marks the pane dead at the terminal's EOF, and has the status a moment later */
        snprintf(pane, sizeof pane, "%s", r.out);
        char *field[3] = {r.out, NULL, NULL};
        for (int f = 0; f < 2 && field[f]; f++)
            if ((field[f + 1] = strchr(field[f], '|')))
                *field[f + 1]++ = '\0';
        char *end = field[2] ? strchr(field[2], '|') : NULL;
        if (end)
            *end = '\0';
        dead_flag = !strcmp(field[0], "1");
        snprintf(status, sizeof status, "%s", field[1] ? field[1] : "");
        snprintf(sig, sizeof sig, "%s", field[2] ? field[2] : "");
        if (dead_flag && (status[0] || sig[0]))
            break;
        if (dead_flag && i >= 10 && proc_state(top_pid) == 'Z')
            break; /* tmux slow to reap it: see below */
        usleep(100000);
    }
    char state = proc_state(top_pid);
    cr_assert(gone || dead_flag, "mmvec top still running 10 s after 'q' (pane: %s, process "
              "state %c)", pane, state ? state : '-');
    cr_assert(state == 0 || state == 'Z', "the pane is dead but mmvec top (%ld) is in state %c",
              top_pid, state);
    if (!gone) {
        const char *cap[] = {"capture-pane", "-p", "-t", "live", NULL};
        struct out c = tmux(cap);
        cr_assert(!sig[0], "mmvec top died of signal %s after 'q':\n%s", sig, c.out);
        if (!status[0] && state == 'Z') {
            /* Seen under load: tmux (3.3a) leaves its pane's process a zombie for a long while
             * after the terminal's EOF; the kernel has the exit status meanwhile. */
            long ws = zombie_status(top_pid);
            cr_assert(ws >= 0, "no exit status for the zombie %ld", top_pid);
            cr_assert(WIFEXITED((int)ws) && WEXITSTATUS((int)ws) == 0,
                      "mmvec top ended with wait status %#lx after 'q':\n%s", ws, c.out);
        } else {
            cr_assert(status[0], "no exit status from tmux 10 s after the pane died (%s); "
                      "process state %c; screen:\n%s", pane, state ? state : '-', c.out);
            cr_assert_str_eq(status, "0", "mmvec top's exit status after 'q'");
        }
    }
    kill_tmux();
    expect_exit0(finish(h), "holder");
}

Test(live, top_batch_prints_screens)
{
    skip_unless_preloadable();
    const char *args[] = {"hold", "2", "1", "4", NULL};
    struct holder *h = start_holder(args);
    long pid = h->pid;
    wait_ready(h);
    const char *argv[] = {MMVEC_CLI, "top", "-b", "-n", "2", "-d", "0.2", live, NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct out r = run(argv, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(code(&r), 0, "%s", r.err);
    cr_assert_str_empty(r.err);
    cr_assert_null(strchr(r.out, '\033'), "batch mode clears the screen");
    int screens = 0, lines = 0;
    for (const char *p = r.out; (p = strstr(p, "mmvec top - ")); p++)
        screens++;
    char want[32];
    snprintf(want, sizeof want, "\n%7ld ", pid);
    for (const char *p = r.out; (p = strstr(p, want)); p++)
        lines++;
    cr_assert_eq(screens, 2, "screens:\n%s", r.out);
    cr_assert_eq(lines, 2, "lines for %ld:\n%s", pid, r.out);
    int heads = 0;
    for (const char *p = r.out; (p = strstr(p, "    PID    RSS    RAM  FILES   DISK  MOVED/s    "
                                               "READ/s   WRITE/s MAJFL/s  COMMAND\n")); p++)
        heads++;
    cr_assert_eq(heads, 2, "%s", r.out);
    cr_assert(strstr(r.out, "1 process  RAM blocks 8.0M  in files 4.0M  disk held 4.0M"), "%s",
              r.out);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert(took >= 0.15 && took < 5, "two screens 0.2 s apart took %.2f s", took);
    /* the same root through MMVEC_LIVE_DIR */
    const char *argv2[] = {MMVEC_CLI, "top", "-b", "-n", "1", NULL};
    const char *env[] = {fmt("MMVEC_LIVE_DIR=%s", live), NULL};
    r = run(argv2, env);
    cr_assert_eq(code(&r), 0, "%s", r.err);
    cr_assert(strstr(r.out, want), "top with MMVEC_LIVE_DIR:\n%s", r.out);
    expect_exit0(finish(h), "holder");
}

/* ---- 9. mmvec run --record -------------------------------------------------------------------- */

static const char record_header[] =
    "t_s,rss_bytes,rss_anon_bytes,rss_file_bytes,ram_block_bytes,file_block_bytes,"
    "disk_read_bytes,disk_write_bytes,major_faults,minor_faults,cgroup_usage_bytes,"
    "memory_limit_bytes,spill_bytes";

struct csv_summary {
    int rows;
    int blocks_seen;   /* rows with ram_block_bytes or file_block_bytes > 0 */
    int usage_seen;    /* rows with cgroup_usage_bytes */
    int limit_rows;    /* rows whose memory_limit_bytes equals the limit asked for */
};

/* Checks the recording's shape and sums it up. */
static struct csv_summary check_csv(const char *path, const char *cmd, unsigned long long limit)
{
    struct csv_summary s = {0, 0, 0, 0};
    const char *text = tu_slurp(path);
    char want[400];
    snprintf(want, sizeof want, "# mmvec record: %s; interval 100 ms; memory limit %llu\n", cmd,
             limit);
    cr_assert(!strncmp(text, want, strlen(want)), "first line:\n%s\nexpected:\n%s", text, want);
    const char *line = text + strlen(want);
    cr_assert(!strncmp(line, record_header, strlen(record_header)) &&
              line[strlen(record_header)] == '\n', "header: %s", line);
    line += strlen(record_header) + 1;
    double last_t = -1;
    for (const char *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert_not_null(nl, "a row without its newline: %s", line);
        char row[600];
        snprintf(row, sizeof row, "%.*s", (int)(nl - line), line);
        char *f[13];
        int nfields = 0;
        for (char *p = row, *c;; p = c + 1) {
            cr_assert_lt(nfields, 13, "more than 13 fields: %.*s", (int)(nl - line), line);
            f[nfields++] = p;
            c = strchr(p, ',');
            if (!c)
                break;
            *c = '\0';
        }
        cr_assert_eq(nfields, 13, "row %d: %d fields", s.rows, nfields);
        for (int i = 0; i < 13; i++) {
            char *end;
            strtod(f[i], &end);
            cr_assert(!*end, "row %d field %d is not a number: [%s]", s.rows, i, f[i]);
        }
        double t = strtod(f[0], NULL);
        cr_assert(*f[0] && t > last_t, "t_s not increasing: %f after %f", t, last_t);
        last_t = t;
        s.blocks_seen += strtoull(f[4], NULL, 10) > 0 || strtoull(f[5], NULL, 10) > 0;
        s.usage_seen += *f[10] != '\0' && strtoull(f[10], NULL, 10) > 0;
        s.limit_rows += limit && strtoull(f[11], NULL, 10) == limit;
        s.rows++;
    }
    return s;
}

Test(live, run_record_samples_the_program)
{
    skip_unless_preloadable();
    const char *csv = tu_path_in(tdir, "f.csv");
    const char *argv[] = {MMVEC_CLI, "run", "--record", csv, "-t", "1M", "-d", seg, "--",
                          HOLDER, "churn", "1000", "4", "5", NULL};
    const char *extra[] = {fmt("MMVEC_LIVE_DIR=%s", live), "MMVEC_PLACEMENT=auto", NULL};
    struct out r = run(argv, extra);
    cr_assert_eq(code(&r), 5, "the program's exit 5 not passed through: %d, stderr: %s", code(&r),
                 r.err);
    cr_assert_str_eq(r.out, "done\n");
    struct csv_summary s = check_csv(csv, HOLDER " churn 1000 4 5", 0);
    cr_assert_geq(s.rows, 5, "%d rows in a second:\n%s", s.rows, tu_slurp(csv));
    cr_assert_leq(s.rows, 30, "%d rows in a second:\n%s", s.rows, tu_slurp(csv));
    cr_assert_gt(s.blocks_seen, 0, "no row saw the program's blocks:\n%s", tu_slurp(csv));
    cr_assert_eq(tu_count_files(pages), 0, "the program's page is left");
}

Test(live, run_record_with_a_memory_limit)
{
    skip_unless_preloadable();
    const char *csv = tu_path_in(tdir, "m.csv");
    const char *argv[] = {MMVEC_CLI, "run", "--record", csv, "--memory", "64M", "-t", "1M", "-d",
                          seg, "--", HOLDER, "churn", "700", "4", "3", NULL};
    const char *extra[] = {fmt("MMVEC_LIVE_DIR=%s", live), "MMVEC_PLACEMENT=auto", NULL};
    struct out r = run(argv, extra);
    if (code(&r) == 1 && strstr(r.err, "cannot set a memory limit"))
        TU_SKIP(teardown, "mmvec run --memory cannot set a limit here: %s", r.err);
    cr_assert_eq(code(&r), 3, "the program's exit 3 not passed through: %d, stderr: %s", code(&r),
                 r.err);
    cr_assert_str_eq(r.out, "done\n");
    struct csv_summary s = check_csv(csv, HOLDER " churn 700 4 3", 64 * MIB);
    cr_assert_geq(s.rows, 4, "%d rows:\n%s", s.rows, tu_slurp(csv));
    cr_assert_gt(s.usage_seen, 0, "no row has the group's usage:\n%s", tu_slurp(csv));
    cr_assert_eq(s.limit_rows, s.rows, "memory_limit_bytes is not the limit in every row:\n%s",
                 tu_slurp(csv));
    cr_assert_gt(s.blocks_seen, 0, "no row saw the program's blocks:\n%s", tu_slurp(csv));
}

/* With --record, mmvec run is the program's parent: a signal to it reaches the program, the
 * program's death by a signal is mmvec run's, and the rows follow what the program holds. */
Test(live, run_record_forwards_signals)
{
    skip_unless_preloadable();
    const char *csv = tu_path_in(tdir, "s.csv");
    const char *argv[] = {MMVEC_CLI, "run", "--record", csv, "-t", "1M", "-d", seg, "--",
                          HOLDER, "hold", "2", "0", "2", NULL};
    const char *extra[] = {"MMVEC_PLACEMENT=auto", NULL};
    struct holder *h = start_prog(MMVEC_CLI, argv, extra, 0);
    pid_t run_pid = h->pid;
    long pid = 0;
    const char *l = next_line(h);
    cr_assert_eq(sscanf(l, "ready %ld", &pid), 1, "[%s] stderr: %s", l, tu_slurp(h->err));
    cr_assert_neq(pid, (long)run_pid, "with --record, the program is mmvec run's child");
    usleep(450000); /* a few rows while it holds 4 MiB in RAM */
    struct ps_line rows[4];
    struct out r = ps();
    cr_assert_eq(parse_ps(r.out, rows, 4), 1, "%s", r.out);
    cr_assert_eq(rows[0].pid, pid, "ps shows the program, not mmvec run:\n%s", r.out);
    cr_assert_eq(kill(run_pid, SIGTERM), 0);
    int st = wait_bounded(run_pid, 10000);
    if (st == -1)
        kill(run_pid, SIGKILL), tu_wait(run_pid);
    forget(h);
    cr_assert_neq(st, -1, "mmvec run --record still running 10 s after SIGTERM");
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "mmvec run's wait status %#x", st);
    cr_assert(kill((pid_t)pid, 0) < 0 && errno == ESRCH, "the program %ld outlived mmvec run", pid);
    struct csv_summary s = check_csv(csv, HOLDER " hold 2 0 2", 0);
    cr_assert_geq(s.rows, 3, "%s", tu_slurp(csv));
    cr_assert_gt(s.blocks_seen, 0, "%s", tu_slurp(csv));
}

/* ---- 10. usage errors --------------------------------------------------------------------------- */

Test(live, usage_errors)
{
    const char *live_env[] = {fmt("MMVEC_LIVE_DIR=%s", live), NULL};
    const char *nopid[] = {MMVEC_CLI, "stats", NULL};
    const char *abc[] = {MMVEC_CLI, "stats", "abc", NULL};
    const char *partly[] = {MMVEC_CLI, "stats", "12x", NULL};
    const char *zero[] = {MMVEC_CLI, "stats", "0", NULL};
    const char *two[] = {MMVEC_CLI, "stats", "1", "2", NULL};
    const char *noproc[] = {MMVEC_CLI, "stats", "999999999", NULL};
    const char *ps_missing[] = {MMVEC_CLI, "ps", "/nonexistent", NULL};
    const char *ps_bad[] = {MMVEC_CLI, "ps", "--bogus", NULL};
    const char *ps_two[] = {MMVEC_CLI, "ps", live, live, NULL};
    const char *top_d0[] = {MMVEC_CLI, "top", "-d", "0", NULL};
    const char *top_dx[] = {MMVEC_CLI, "top", "-d", "x", NULL};
    const char *top_n0[] = {MMVEC_CLI, "top", "-n", "0", NULL};
    const char *top_bad[] = {MMVEC_CLI, "top", "-z", NULL};
    expect_error(nopid, NULL, 2);
    expect_error(abc, NULL, 2);
    expect_error(partly, NULL, 2);
    expect_error(zero, NULL, 2);
    expect_error(two, NULL, 2);
    expect_error(noproc, NULL, 1);
    expect_error(noproc, live_env, 1);
    expect_error(ps_missing, NULL, 1);
    expect_error(ps_bad, NULL, 2);
    expect_error(ps_two, NULL, 2);
    expect_error(top_d0, NULL, 2);
    expect_error(top_dx, NULL, 2);
    expect_error(top_n0, NULL, 2);
    expect_error(top_bad, NULL, 2);
    const char *rec_bad[] = {MMVEC_CLI, "run", "--record", "/nonexistent/f.csv", "--",
                             "/bin/true", NULL};
    expect_error(rec_bad, NULL, 1);
    /* an empty root: the header only */
    const char *ps_empty[] = {MMVEC_CLI, "ps", live, NULL};
    struct out r = run(ps_empty, NULL);
    cr_assert_eq(code(&r), 0, "%s", r.err);
    cr_assert_str_eq(r.out, fmt("%s\n", ps_header));
    const char *ps_json_empty[] = {MMVEC_CLI, "ps", "--json", live, NULL};
    r = run(ps_json_empty, NULL);
    cr_assert_eq(code(&r), 0, "%s", r.err);
    cr_assert_str_empty(r.out);
}
