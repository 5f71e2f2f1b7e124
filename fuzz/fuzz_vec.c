/* Fuzz target: random sequences of vector operations (include/mmvec/vec.h) checked against a
 * plain in-memory model (a malloc'ed array).
 *
 * Input: byte 0 picks the element size (1..48), byte 1 whether a clear function is set; then
 * each operation is one opcode byte followed by the bytes it needs (indexes, counts, element
 * contents). After every operation the vector must equal the model: same length, same bytes,
 * capacity >= len, the documented growth and error rules, disk size = header page + capacity *
 * elem_size. The clear function is counted and its elements hashed: it must see exactly the
 * elements the documentation says it destroys. Every file goes to a private directory, and
 * after each input that directory must be empty (no leaked file).
 */
#define _GNU_SOURCE
#include "mmvec/vec.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LEN 4096 /* elements: keeps every check cheap */
#define MAX_ELEM 48

#define CHECK(c)                                                                                \
    do {                                                                                        \
        if (!(c)) {                                                                             \
            fprintf(stderr, "fuzz_vec: check failed at line %d: %s\n", __LINE__, #c);          \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static char dir[256];
static mmv_namer namer;

/* ---- the model and the input ---------------------------------------------------------------- */

struct model {
    unsigned char *a;
    size_t len, es;
    int clear_set;
    uint64_t expect_cleared, expect_hash; /* what the clear function must have seen */
};

static uint64_t cleared, cleared_hash; /* what it did see */
static size_t clear_es;                /* the clear function gets no size: it is this */

static uint64_t elem_hash(const void *e, size_t es)
{
    const unsigned char *b = e;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < es; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void on_clear(void *e)
{
    cleared++;
    cleared_hash += elem_hash(e, clear_es); /* a sum: the order of the calls is not specified */
}

struct input {
    const uint8_t *p;
    size_t n;
};

static unsigned take(struct input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static size_t take16(struct input *in)
{
    return take(in) | (size_t)take(in) << 8;
}

/* An element from the input (zeros once it runs out). */
static void take_elem(struct input *in, unsigned char *e, size_t es)
{
    for (size_t i = 0; i < es; i++)
        e[i] = (unsigned char)take(in);
}

/* Elements i..i+n of the model are destroyed: the clear function (if set) must see them. */
static void model_gone(struct model *m, size_t i, size_t n)
{
    if (!m->clear_set)
        return;
    for (size_t k = 0; k < n; k++) {
        m->expect_cleared++;
        m->expect_hash += elem_hash(m->a + (i + k) * m->es, m->es);
    }
}

/* ---- checks --------------------------------------------------------------------------------- */

static void check_same(const mmv_vec *v, const struct model *m)
{
    CHECK(mmv_vec_len(v) == m->len);
    CHECK(mmv_vec_capacity(v) >= m->len);
    CHECK(mmv_vec_elem_size(v) == m->es);
    CHECK(mmv_vec_is_empty(v) == (m->len == 0));
    if (m->len)
        CHECK(memcmp(mmv_vec_data(v), m->a, m->len * m->es) == 0);
    CHECK(mmv_vec_at(v, m->len) == NULL);
    if (m->len)
        CHECK(mmv_vec_at(v, m->len - 1) == (char *)mmv_vec_data(v) + (m->len - 1) * m->es);
    size_t cap = mmv_vec_capacity(v);
    if (cap)
        CHECK(mmv_vec_disk_size(v) == (size_t)sysconf(_SC_PAGESIZE) + cap * m->es);
    else
        CHECK(mmv_vec_disk_size(v) == 0);
    CHECK(cleared == m->expect_cleared && cleared_hash == m->expect_hash);
}

static size_t files_in_dir(void)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    CHECK(d != NULL);
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* ---- operations ------------------------------------------------------------------------------ */

static void model_insert(struct model *m, size_t i, const unsigned char *e, size_t n)
{
    memmove(m->a + (i + n) * m->es, m->a + i * m->es, (m->len - i) * m->es);
    memcpy(m->a + i * m->es, e, n * m->es);
    m->len += n;
}

static void model_erase(struct model *m, size_t i, size_t n)
{
    memmove(m->a + i * m->es, m->a + (i + n) * m->es, (m->len - i - n) * m->es);
    m->len -= n;
}

static void op_push(mmv_vec *v, struct model *m, struct input *in, int within)
{
    unsigned char e[MAX_ELEM];
    take_elem(in, e, m->es);
    size_t cap = mmv_vec_capacity(v);
    int rc = within ? mmv_vec_push_within_capacity(v, e) : mmv_vec_push(v, e);
    if (within && m->len == cap) {
        CHECK(rc == -ENOSPC);
        return;
    }
    CHECK(rc == 0);
    model_insert(m, m->len, e, 1);
    size_t pc = mmv_vec_page_capacity(m->es);
    if (mmv_vec_capacity(v) != cap) /* it grew: by the documented policy */
        CHECK(mmv_vec_capacity(v) % pc == 0 && mmv_vec_capacity(v) >= cap + (cap > pc ? cap : pc));
}

static void op_push_self(mmv_vec *v, struct model *m, struct input *in)
{
    /* Pushing an element of the vector itself: the push may move the mapping first. */
    if (!m->len)
        return;
    size_t i = take16(in) % m->len;
    CHECK(mmv_vec_push(v, mmv_vec_at(v, i)) == 0);
    unsigned char e[MAX_ELEM];
    memcpy(e, m->a + i * m->es, m->es);
    model_insert(m, m->len, e, 1);
}

static void op_pop(mmv_vec *v, struct model *m, struct input *in)
{
    unsigned char out[MAX_ELEM];
    int with_out = take(in) & 1;
    bool ok = mmv_vec_pop(v, with_out ? out : NULL);
    CHECK(ok == (m->len > 0));
    if (!ok)
        return;
    if (with_out)
        CHECK(memcmp(out, m->a + (m->len - 1) * m->es, m->es) == 0);
    m->len--; /* pop hands the element back: no clear call */
}

static void op_insert(mmv_vec *v, struct model *m, struct input *in)
{
    unsigned char e[MAX_ELEM];
    size_t i = take16(in) % (m->len + 2); /* len + 1 is out of range */
    take_elem(in, e, m->es);
    int rc = mmv_vec_insert(v, i, e);
    if (i > m->len) {
        CHECK(rc == -ERANGE);
        return;
    }
    CHECK(rc == 0);
    model_insert(m, i, e, 1);
}

static void op_remove(mmv_vec *v, struct model *m, struct input *in, int swap)
{
    unsigned char out[MAX_ELEM];
    size_t i = take16(in) % (m->len + 1);
    int with_out = take(in) & 1;
    int rc = swap ? mmv_vec_swap_remove(v, i, with_out ? out : NULL)
                  : mmv_vec_remove(v, i, with_out ? out : NULL);
    if (i >= m->len) {
        CHECK(rc == -ERANGE);
        return;
    }
    CHECK(rc == 0);
    if (with_out)
        CHECK(memcmp(out, m->a + i * m->es, m->es) == 0);
    else
        model_gone(m, i, 1);
    if (swap && i != m->len - 1)
        memcpy(m->a + i * m->es, m->a + (m->len - 1) * m->es, m->es);
    model_erase(m, swap ? m->len - 1 : i, 1);
}

static void op_truncate(mmv_vec *v, struct model *m, struct input *in, int first)
{
    size_t k = take16(in) % (m->len + 2);
    CHECK((first ? mmv_vec_truncate_first(v, k) : mmv_vec_truncate(v, k)) == 0);
    if (first) {
        size_t gone = k < m->len ? k : m->len;
        model_gone(m, 0, gone);
        model_erase(m, 0, gone);
    } else if (k < m->len) {
        model_gone(m, k, m->len - k);
        m->len = k;
    }
}

static void op_clear(mmv_vec *v, struct model *m)
{
    CHECK(mmv_vec_clear(v) == 0);
    model_gone(m, 0, m->len);
    m->len = 0;
}

static void op_extend(mmv_vec *v, struct model *m, struct input *in)
{
    size_t n = take(in) % 64;
    unsigned char *e = malloc(n * m->es + 1);
    CHECK(e != NULL);
    take_elem(in, e, n * m->es);
    CHECK(mmv_vec_extend(v, e, n) == 0);
    model_insert(m, m->len, e, n);
    free(e);
}

static void op_extend_self(mmv_vec *v, struct model *m, struct input *in)
{
    /* arr inside the vector: it must survive the vector's own growth. */
    if (!m->len)
        return;
    size_t from = take16(in) % m->len, n = take16(in) % (m->len - from + 1);
    CHECK(mmv_vec_extend(v, mmv_vec_at(v, from), n) == 0);
    model_insert(m, m->len, m->a + from * m->es, n);
}

static void op_reserve(mmv_vec *v, struct model *m, struct input *in)
{
    size_t add = take16(in) % 2048;
    CHECK(mmv_vec_reserve(v, add) == 0);
    CHECK(mmv_vec_capacity(v) >= m->len + add);
    CHECK(mmv_vec_reserve(v, SIZE_MAX) < 0); /* overflow: an error, nothing changes */
}

static void op_shrink(mmv_vec *v, struct model *m)
{
    CHECK(mmv_vec_shrink_to_fit(v) == 0);
    CHECK(mmv_vec_capacity(v) == m->len);
}

static int cmp_bytes_es;
static int cmp_bytes(const void *a, const void *b)
{
    return memcmp(a, b, (size_t)cmp_bytes_es);
}

static void op_sort(mmv_vec *v, struct model *m)
{
    cmp_bytes_es = (int)m->es;
    CHECK(mmv_vec_sort(v, cmp_bytes) == 0);
    qsort(m->a, m->len, m->es, cmp_bytes); /* equal elements are equal bytes: order is unique */
}

static void op_clone(mmv_vec *v, struct model *m)
{
    mmv_vec c;
    CHECK(mmv_vec_clone(&c, v) == 0);
    CHECK(mmv_vec_equal(&c, v));
    CHECK(mmv_vec_len(&c) == m->len);
    if (m->len) {
        /* Independent copies: changing the clone leaves the original alone. */
        ((unsigned char *)mmv_vec_data(&c))[0] ^= 1;
        CHECK(!mmv_vec_equal(&c, v));
    }
    CHECK(mmv_vec_destroy(&c) == 0); /* no clear function on a clone */
}

/* close_keep then open: the file round trip must give back the same elements. */
static void op_reopen(mmv_vec *v, struct model *m, struct input *in)
{
    char path[512];
    const char *p = mmv_vec_path(v);
    CHECK(p && strlen(p) < sizeof path);
    strcpy(path, p);
    unsigned flags = take(in) & 1 ? MMV_KEEP_NO_DATA_CHECKSUM : 0;
    CHECK(mmv_vec_close_keep_flags(v, flags) == 0); /* the clear function is not called */
    CHECK(mmv_vec_open(path, m->es + 1, v) == -EINVAL); /* another element size */
    CHECK(mmv_vec_open(path, m->es, v) == 0);
    CHECK(mmv_vec_set_namer(v, &namer) == 0);
    if (m->clear_set)
        CHECK(mmv_vec_set_clear_fn(v, on_clear) == 0);
}

static void one_op(mmv_vec *v, struct model *m, struct input *in)
{
    switch (take(in) % 17) {
    case 0: case 1: case 2: op_push(v, m, in, 0); break;
    case 3: op_push(v, m, in, 1); break;
    case 4: op_push_self(v, m, in); break;
    case 5: op_pop(v, m, in); break;
    case 6: op_insert(v, m, in); break;
    case 7: op_remove(v, m, in, 0); break;
    case 8: op_remove(v, m, in, 1); break;
    case 9: op_truncate(v, m, in, 0); break;
    case 10: op_truncate(v, m, in, 1); break;
    case 11: op_clear(v, m); break;
    case 12: op_extend(v, m, in); break;
    case 13: op_extend_self(v, m, in); break;
    case 14: op_reserve(v, m, in); break;
    case 15:
        if (take(in) & 1)
            op_shrink(v, m);
        else
            op_sort(v, m);
        break;
    case 16:
        if (take(in) & 1)
            op_clone(v, m);
        else
            op_reopen(v, m, in);
        break;
    }
}

/* ---- the target ------------------------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Under scripts/fuzz.sh, inside its own directory, which it checks for leaked files. */
    const char *base = getenv("MMVEC_FUZZ_TMP");
    if (!base || snprintf(dir, sizeof dir, "%s/vec-XXXXXX", base) >= (int)sizeof dir)
        strcpy(dir, "/tmp/mmvec-fuzz-vec-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    setenv("MMVEC_DIR", dir, 1); /* the default namer too (vectors reopened from a file use it) */
    namer = mmv_namer_in_dir(dir);
    return 0;
}

__attribute__((destructor)) static void remove_dir(void)
{
    if (dir[0])
        rmdir(dir); /* empty by then, or the last input failed and left evidence */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    struct model m = {0};
    m.es = 1 + take(&in) % MAX_ELEM;
    m.clear_set = take(&in) & 1;
    clear_es = m.es;
    m.a = malloc((MAX_LEN * 3 + 64) * m.es); /* room for a doubling past MAX_LEN */
    CHECK(m.a != NULL);
    cleared = cleared_hash = 0;
    mmv_vec v;
    CHECK(mmv_vec_init(&v, m.es, &namer) == 0);
    if (m.clear_set)
        CHECK(mmv_vec_set_clear_fn(&v, on_clear) == 0);
    while (in.n && m.len < MAX_LEN) {
        one_op(&v, &m, &in);
        check_same(&v, &m);
    }
    model_gone(&m, 0, m.len);
    CHECK(mmv_vec_destroy(&v) == 0);
    CHECK(cleared == m.expect_cleared && cleared_hash == m.expect_hash);
    CHECK(mmv_vec_len(&v) == 0 && mmv_vec_data(&v) == NULL);
    CHECK(files_in_dir() == 0); /* destroy removed the file; nothing else was left */
    free(m.a);
    return 0;
}
