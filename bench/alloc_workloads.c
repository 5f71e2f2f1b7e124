/* alloc_workloads: runs ONE workload with ONE allocator and prints its measurements (aw.h).
 *
 *   alloc_workloads [--alloc=libc|memkind|naive] [--dir=DIR] [--expect-sym=NAME] WORKLOAD ARGS
 *
 *   churn SIZE [MAX_CYCLES [BUDGET_MS]]      1. malloc(SIZE), one byte per page, free
 *   realloc steps|double START MAX [STEP]    2. realloc growth writing each new tail
 *   calloc SIZE [REPS [STRIDE_PAGES]]        3. calloc, touch one page in STRIDE, free
 *   small THREADS PAIRS LIVE                 4. small objects
 *   exec NAME PROGRAM ARGS...                5. an unmodified program (timed from outside)
 *   ooc TOTAL CHUNK [CGROUP_LIMIT]           6. out of core: write + checksum a big heap
 *   vec N                                    7. N pushes into a realloc'd array, then a sum
 *   check [SIZE]                             is mmvec's interposer in charge of malloc(SIZE)?
 *
 * --expect-sym=NAME fails with exit 3 unless NAME resolves in the process (e.g. mallocx for
 * jemalloc): a preload that did not load must never be measured under its name.
 */
#define _GNU_SOURCE
#include "aw.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

struct options {
    const char *alloc, *dir, *expect;
    int argi;
};

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){"libc", NULL, NULL, 1};
    for (; o->argi < argc && strncmp(argv[o->argi], "--", 2) == 0; o->argi++) {
        const char *a = argv[o->argi];
        if (strncmp(a, "--alloc=", 8) == 0)
            o->alloc = a + 8;
        else if (strncmp(a, "--dir=", 6) == 0)
            o->dir = a + 6;
        else if (strncmp(a, "--expect-sym=", 13) == 0)
            o->expect = a + 13;
        else
            return -1;
    }
    return o->argi < argc ? 0 : -1;
}

static int dispatch(const struct aw_alloc *a, const char *wl, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(const struct aw_alloc *, int, char **);
    } table[] = {
        {"churn", aw_wl_churn}, {"realloc", aw_wl_realloc}, {"calloc", aw_wl_calloc},
        {"small", aw_wl_small}, {"ooc", aw_wl_ooc},         {"vec", aw_wl_vec},
        {"check", aw_wl_check},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(wl, table[i].name) == 0)
            return table[i].fn(a, argc, argv);
    return AW_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0) {
        fprintf(stderr,
                "usage: %s [--alloc=libc|memkind|naive] [--dir=DIR] [--expect-sym=NAME] "
                "WORKLOAD ARGS (see the comment at the top of alloc_workloads.c)\n",
                argv[0]);
        return AW_EXIT_USAGE;
    }
    if (o.expect && !dlsym(RTLD_DEFAULT, o.expect)) {
        aw_fail(argv[o.argi], "-", "preload not active: symbol %s not found", o.expect);
        return AW_EXIT_NOT_ACTIVE;
    }
    const char *wl = argv[o.argi];
    int rc;
    if (strcmp(wl, "exec") == 0) {
        rc = aw_wl_exec(argc - o.argi - 1, argv + o.argi + 1);
    } else {
        const struct aw_alloc *a = NULL;
        if (aw_alloc_select(o.alloc, o.dir, &a) != 0) {
            aw_fail(wl, "-", "cannot set up allocator %s (dir %s)", o.alloc,
                    o.dir ? o.dir : "none");
            return AW_EXIT_FAIL;
        }
        rc = dispatch(a, wl, argc - o.argi - 1, argv + o.argi + 1);
        aw_alloc_shutdown();
    }
    if (rc == AW_EXIT_USAGE)
        fprintf(stderr, "%s: bad arguments for workload %s\n", argv[0], wl);
    return rc;
}
