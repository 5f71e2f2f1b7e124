/* alloc_workloads: one benchmark workload, one allocator, CSV-ish lines on stdout.
 *
 * The driver is started once per (round, allocator, workload) by bench/suite.py. The allocator
 * is whatever LD_PRELOAD put under malloc (glibc when nothing), except the two that a program
 * cannot get by preloading: memkind's file-backed PMEM kind and the naive one-file-per-block
 * allocator, chosen with --alloc. Output lines (the suite parses them):
 *   RESULT,<workload>,<param>,<metric>,<value>,<unit>
 *   FAIL,<workload>,<param>,<reason>      (the measurement is invalid; exit status != 0 follows)
 *   SKIP,<workload>,<param>,<reason>      (cannot run here, e.g. no writable cgroup)
 *   INFO,<key>,<value>
 */
#ifndef AW_H
#define AW_H

#include <stddef.h>
#include <stdint.h>

/* One allocator, as the workloads see it. */
struct aw_alloc {
    const char *name;
    void *(*malloc)(size_t size);
    void *(*calloc)(size_t n, size_t size);
    void *(*realloc)(void *p, size_t size);
    void (*free)(void *p);
};

/* Exit codes the suite understands. */
enum {
    AW_EXIT_OK = 0,
    AW_EXIT_FAIL = 1,
    AW_EXIT_USAGE = 2,
    AW_EXIT_NOT_ACTIVE = 3,
    AW_EXIT_TOO_SLOW = 4,
};

#define AW_PAGE 4096u

/* Backends: 0 or a negative errno. dir is where memkind/naive put their files. */
int aw_alloc_select(const char *name, const char *dir, const struct aw_alloc **out);
void aw_alloc_shutdown(void);

/* Output and time. */
double aw_now(void);
void aw_result(const char *wl, const char *param, const char *metric, double v, const char *unit);
void aw_fail(const char *wl, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void aw_skip(const char *wl, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void aw_info(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "256K" / "1M" / "4G" / plain bytes; 0 on success, -EINVAL on a bad string. */
int aw_parse_size(const char *s, uint64_t *out);
/* "1M" etc. for a parameter column; buf of at least 32 bytes. */
const char *aw_size_name(uint64_t bytes, char *buf, size_t size);
/* Writes one byte per page of [p + from, p + to) so every page is really faulted in. */
void aw_touch_pages(char *p, size_t from, size_t to);
/* Keeps the compiler from proving the block dead and eliding malloc/free. */
static inline void aw_escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Workloads: each returns an exit code; argv holds its own arguments. */
int aw_wl_churn(const struct aw_alloc *a, int argc, char **argv);
int aw_wl_realloc(const struct aw_alloc *a, int argc, char **argv);
int aw_wl_calloc(const struct aw_alloc *a, int argc, char **argv);
int aw_wl_small(const struct aw_alloc *a, int argc, char **argv);
int aw_wl_ooc(const struct aw_alloc *a, int argc, char **argv);
int aw_wl_vec(const struct aw_alloc *a, int argc, char **argv);
int aw_wl_exec(int argc, char **argv);
int aw_wl_check(const struct aw_alloc *a, int argc, char **argv);

#endif
