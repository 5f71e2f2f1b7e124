// placement_malloc_large: the workload of mimalloc-bench's malloc-large, written anew for this
// suite (its source is not copied here): ITERATIONS (default 2000) times, one of 20 live
// buffers, chosen at random, is replaced by a std::make_unique<char[]> (zero-filled) of a
// random size between 5 and 25 MiB; std::mt19937 with the fixed seed 42 and
// std::uniform_int_distribution, as there. Timed inside with the steady clock; output in the
// suite's format (bench/aw.h): RESULT,mlarge,<param>,<metric>,<value>,<unit>.
//   placement_malloc_large [--expect-sym=NAME] [ITERATIONS]
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

int main(int argc, char **argv)
{
    int i = 1;
    if (i < argc && std::strncmp(argv[i], "--expect-sym=", 13) == 0) {
        if (!dlsym(RTLD_DEFAULT, argv[i] + 13)) {
            std::printf("FAIL,mlarge,-,%s not found: the allocator under test is not loaded\n",
                        argv[i] + 13);
            return 3;
        }
        i++;
    }
    long iterations = i < argc ? std::atol(argv[i]) : 2000;
    if (iterations <= 0) {
        std::fprintf(stderr, "usage: placement_malloc_large [--expect-sym=NAME] [ITERATIONS]\n");
        return 2;
    }
    constexpr int live = 20;
    constexpr size_t min_size = 5u << 20, max_size = 25u << 20;
    std::unique_ptr<char[]> buffers[live];
    std::mt19937 gen(42);
    std::uniform_int_distribution<> size_of(min_size, max_size);
    std::uniform_int_distribution<> slot_of(0, live - 1);
    unsigned long long bytes = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (long k = 0; k < iterations; k++) {
        int slot = slot_of(gen);
        size_t size = (size_t)size_of(gen);
        buffers[slot] = std::make_unique<char[]>(size);
        bytes += size;
    }
    auto t1 = std::chrono::steady_clock::now();
    for (auto &b : buffers)
        b.reset();
    auto t2 = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(t1 - t0).count();
    double f = std::chrono::duration<double>(t2 - t1).count();
    char param[64];
    std::snprintf(param, sizeof param, "%ld x 5-25 MiB; 20 live", iterations);
    std::printf("RESULT,mlarge,%s,seconds,%.6g,s\n", param, s);
    std::printf("RESULT,mlarge,%s,us_per_alloc,%.6g,us\n", param, s / (double)iterations * 1e6);
    std::printf("RESULT,mlarge,%s,zeroed_GBps,%.6g,GB/s\n", param, (double)bytes / s / 1e9);
    std::printf("RESULT,mlarge,%s,free_s,%.6g,s\n", param, f);
    return 0;
}
