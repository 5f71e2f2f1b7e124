/* A program built against an installed mmvec: a vector, and an explicit large block. */
#include <mmvec.h>
#include <stdio.h>

int main(void)
{
    mmv_vec v;
    uint64_t x = 7, y = 0;
    if (mmv_vec_init(&v, sizeof x, NULL) || mmv_vec_push(&v, &x) || !mmv_vec_pop(&v, &y) || y != 7)
        return 1;
    mmv_vec_destroy(&v);
    void *p = mmv_malloc(64 << 20);
    if (!p)
        return 2;
    mmv_free(p);
    puts("consumer ok");
    return 0;
}
