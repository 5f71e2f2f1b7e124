// A C++ program with large new/delete and std::vector growth, for the interposer's tests.
//
//   cxxprog [--preloaded]
//
// stdout: only results computed from the data (checksums, sizes), so a run under the preload
// must print exactly what a run without it prints. With --preloaded it also checks (on stderr,
// exit 1 on failure) that every standard operator new/delete resolves into libmmvec_preload and
// that large blocks from each form of new are segment blocks (MMVEC_THRESHOLD must be <= 1M).
#include "mmvec/alloc.h"
#include "mmvec/stats.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

#ifndef __cpp_sized_deallocation
// clang enables sized deallocation only with -fsized-deallocation, and <new> then hides these
// declarations; the interposer exports them anyway, so they are declared here to be called.
void operator delete(void *, std::size_t) noexcept;
void operator delete[](void *, std::size_t) noexcept;
void operator delete(void *, std::size_t, std::align_val_t) noexcept;
void operator delete[](void *, std::size_t, std::align_val_t) noexcept;
#endif

namespace {

bool preloaded = false;
int checks = 0;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        checks++;                                                                        \
        if (!(cond)) {                                                                   \
            std::fprintf(stderr, "cxxprog: FAIL line %d: %s\n", __LINE__, #cond);        \
            std::exit(1);                                                                \
        }                                                                                \
    } while (0)

constexpr std::size_t kLarge = std::size_t(1) << 20;

std::uint64_t fnv(const void *p, std::size_t n, std::uint64_t h = 1469598103934665603ull)
{
    const unsigned char *c = static_cast<const unsigned char *>(p);
    for (std::size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

void owned(const void *p)
{
    if (preloaded)
        CHECK(mmv_owns(p));
}

// ---- the workload: deterministic output ------------------------------------------------------

void vector_growth()
{
    std::vector<std::uint64_t> v;
    for (std::uint64_t i = 0; i < 5000000; i++)
        v.push_back(i * 2654435761u ^ (i >> 3));
    std::uint64_t sum = std::accumulate(v.begin(), v.end(), std::uint64_t(0));
    std::printf("vector: size %zu sum %llu hash %016llx\n", v.size(), (unsigned long long)sum,
                (unsigned long long)fnv(v.data(), v.size() * sizeof v[0]));
    v.resize(1000);
    v.shrink_to_fit();
    std::printf("vector: after shrink %zu hash %016llx\n", v.size(),
                (unsigned long long)fnv(v.data(), v.size() * sizeof v[0]));
}

void arrays()
{
    std::size_t n = 8u << 20;
    std::uint32_t *a = new std::uint32_t[n];
    for (std::size_t i = 0; i < n; i++)
        a[i] = std::uint32_t(i * 2246822519u);
    std::sort(a, a + n);
    std::printf("array: %zu sorted hash %016llx\n", n,
                (unsigned long long)fnv(a, n * sizeof *a));
    delete[] a;
    std::vector<std::vector<int>> rows(200);
    std::uint64_t total = 0;
    for (std::size_t r = 0; r < rows.size(); r++) {
        rows[r].assign(100000 + r, int(r));
        total += std::accumulate(rows[r].begin(), rows[r].end(), std::uint64_t(0));
    }
    std::printf("rows: %zu total %llu\n", rows.size(), (unsigned long long)total);
}

void strings_and_maps()
{
    std::string s;
    for (int i = 0; s.size() < (16u << 20); i++)
        s += std::to_string(i) + ",";
    std::printf("string: %zu bytes hash %016llx\n", s.size(),
                (unsigned long long)fnv(s.data(), s.size()));
    std::unordered_map<std::uint64_t, std::uint64_t> m;
    m.reserve(1000000);
    for (std::uint64_t i = 0; i < 1000000; i++)
        m[i * 7919] = i;
    std::uint64_t acc = 0;
    for (std::uint64_t i = 0; i < 1000000; i += 3)
        acc += m[i * 7919];
    std::map<int, std::string> small;
    for (int i = 0; i < 10000; i++)
        small[i % 977] += "x";
    std::printf("maps: %zu entries acc %llu small %zu\n", m.size(), (unsigned long long)acc,
                small.size());
}

// ---- the operators: every standard form, checked --------------------------------------------

const char *const kOperators[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t", "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm",
    "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

void check_resolution()
{
    for (const char *name : kOperators) {
        void *f = dlsym(RTLD_DEFAULT, name);
        Dl_info di;
        bool ok = f && dladdr(f, &di) && di.dli_fname &&
                  std::strstr(di.dli_fname, "libmmvec_preload");
        if (!ok)
            std::fprintf(stderr, "cxxprog: %s does not resolve into libmmvec_preload\n", name);
        CHECK(ok);
    }
}

bool aligned(const void *p, std::size_t a) { return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0; }

void plain_forms()
{
    void *a = ::operator new(kLarge), *b = ::operator new[](kLarge);
    void *c = ::operator new(kLarge, std::nothrow), *d = ::operator new[](kLarge, std::nothrow);
    CHECK(a && b && c && d);
    for (void *p : {a, b, c, d}) {
        owned(p);
        std::memset(p, 0x5a, kLarge);
    }
    ::operator delete(a);
    ::operator delete[](b, kLarge);
    ::operator delete(c, std::nothrow);
    ::operator delete[](d, std::nothrow);
    void *e = ::operator new(kLarge);
    ::operator delete(e, kLarge);
    void *f = ::operator new[](kLarge);
    ::operator delete[](f);
}

void aligned_forms()
{
    for (std::size_t al : {std::size_t(64), std::size_t(4096), std::size_t(2) << 20}) {
        std::align_val_t av{al};
        void *a = ::operator new(kLarge, av), *b = ::operator new[](kLarge, av);
        void *c = ::operator new(kLarge, av, std::nothrow);
        void *d = ::operator new[](kLarge, av, std::nothrow);
        CHECK(a && b && c && d);
        for (void *p : {a, b, c, d}) {
            CHECK(aligned(p, al));
            owned(p);
            std::memset(p, 0xa5, kLarge);
        }
        ::operator delete(a, av);
        ::operator delete[](b, kLarge, av);
        ::operator delete(c, av, std::nothrow);
        ::operator delete[](d, av, std::nothrow);
        void *e = ::operator new(kLarge, av);
        ::operator delete(e, kLarge, av);
        void *f = ::operator new[](kLarge, av);
        ::operator delete[](f, av);
    }
}

// Too big for anyone: throwing forms throw bad_alloc, nothrow forms give nullptr.
void failing_forms()
{
    std::size_t huge = SIZE_MAX / 2;
    bool threw = false;
    try {
        void *p = ::operator new(huge);
        ::operator delete(p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
    threw = false;
    try {
        void *p = ::operator new[](huge, std::align_val_t{4096});
        ::operator delete[](p, std::align_val_t{4096});
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
    CHECK(::operator new(huge, std::nothrow) == nullptr);
    CHECK(::operator new[](huge, std::align_val_t{64}, std::nothrow) == nullptr);
}

} // namespace

int main(int argc, char **argv)
{
    preloaded = argc > 1 && std::strcmp(argv[1], "--preloaded") == 0;
    if (preloaded) {
        check_resolution();
        CHECK(mmv_threshold() <= kLarge);
    }
    plain_forms();
    aligned_forms();
    failing_forms();
    vector_growth();
    arrays();
    strings_and_maps();
    if (preloaded) {
        mmv_stats st;
        CHECK(mmv_stats_get(&st) == 0 && st.blocks_made > 0);
    }
    std::fprintf(stderr, "cxxprog: %d checks passed%s\n", checks, preloaded ? " (preloaded)" : "");
    return 0;
}
