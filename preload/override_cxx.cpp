// C++ operator new/delete in all their standard forms, mapped onto the mmvec allocator.
// Throwing forms loop on the new_handler as the standard requires; nothing else lives here.
#include <cerrno>
#include <cstddef>
#include <new>

extern "C" {
void *mmv_malloc(std::size_t n);
void mmv_free(void *p);
/* Sized delete: the C++ contract guarantees n is the size new was asked for, unaligned. */
__attribute__((visibility("hidden"))) void mmvi_free_sized(void *p, std::size_t n);
void *mmv_aligned_alloc(std::size_t align, std::size_t n);
}

#define EXPORT __attribute__((visibility("default")))

namespace {
void *alloc_or_throw(std::size_t n, std::size_t align)
{
    for (;;) {
        void *p = align ? mmv_aligned_alloc(align, n ? n : 1) : mmv_malloc(n);
        if (p)
            return p;
        std::new_handler h = std::get_new_handler();
        if (!h)
            throw std::bad_alloc();
        h();
    }
}

void *alloc_nothrow(std::size_t n, std::size_t align) noexcept
{
    try {
        return alloc_or_throw(n, align);
    } catch (...) {
        return nullptr;
    }
}
} // namespace

EXPORT void *operator new(std::size_t n) { return alloc_or_throw(n, 0); }
EXPORT void *operator new[](std::size_t n) { return alloc_or_throw(n, 0); }
EXPORT void *operator new(std::size_t n, const std::nothrow_t &) noexcept { return alloc_nothrow(n, 0); }
EXPORT void *operator new[](std::size_t n, const std::nothrow_t &) noexcept { return alloc_nothrow(n, 0); }
EXPORT void *operator new(std::size_t n, std::align_val_t a) { return alloc_or_throw(n, static_cast<std::size_t>(a)); }
EXPORT void *operator new[](std::size_t n, std::align_val_t a) { return alloc_or_throw(n, static_cast<std::size_t>(a)); }
EXPORT void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept { return alloc_nothrow(n, static_cast<std::size_t>(a)); }
EXPORT void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept { return alloc_nothrow(n, static_cast<std::size_t>(a)); }

EXPORT void operator delete(void *p) noexcept { mmv_free(p); }
EXPORT void operator delete[](void *p) noexcept { mmv_free(p); }
EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept { mmv_free(p); }
EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept { mmv_free(p); }
EXPORT void operator delete(void *p, std::size_t n) noexcept { mmvi_free_sized(p, n); }
EXPORT void operator delete[](void *p, std::size_t n) noexcept { mmvi_free_sized(p, n); }
EXPORT void operator delete(void *p, std::align_val_t) noexcept { mmv_free(p); }
EXPORT void operator delete[](void *p, std::align_val_t) noexcept { mmv_free(p); }
EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { mmv_free(p); }
EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { mmv_free(p); }
EXPORT void operator delete(void *p, std::size_t, std::align_val_t) noexcept { mmv_free(p); }
EXPORT void operator delete[](void *p, std::size_t, std::align_val_t) noexcept { mmv_free(p); }
