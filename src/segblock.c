/* The file behind a block: made, unlinked, unmapped. */
#define _GNU_SOURCE
#include "segblock.h"

#include "namer.h"
#include "options.h"
#include "reaper.h"
#include "registry.h"
#include "small.h"
#include "stats_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int mmvi_block_owned(const struct mmvi_block *b)
{
    return b->incarnation == mmvi_proc.incarnation;
}

int mmvi_block_path_of(const struct mmvi_block *b, char *buf, size_t size)
{
    return mmvi_block_file(b->proc, b->uuid, buf, size);
}

int mmvi_segblock_make(struct mmvi_block *b)
{
    char path[4200];
    int fd, rc;
    memcpy(b->proc, mmvi_proc.name, sizeof b->proc);
    mmvi_uuid_text(b->uuid);
    rc = mmvi_block_path_of(b, path, sizeof path);
    if (rc == 0)
        rc = mmvi_os_create(path, b->size, &fd);
    if (rc < 0)
        return rc;
    void *p;
    rc = mmvi_os_map(fd, 0, b->size, (void *)b->addr, 0, &p);
    mmvi_os_close(fd);
    if (rc < 0) {
        unlink(path);
        /* A failed MAP_FIXED may have left a hole: fill it (or mark it lost) before reuse. */
        if (mmvi_space_refill(b->addr, b->size)) {
            /* A failed MAP_FIXED left a hole that someone took: that space is gone. */
            pthread_mutex_lock(&mmvi_lock);
            mmvi_space_lose(b->addr, b->span);
            pthread_mutex_unlock(&mmvi_lock);
            b->span = 0; /* so that forgetting b gives nothing back */
        }
        return rc;
    }
    if (mmvi_opt.unlink_files) {
        unlink(path);
        b->unlinked = 1;
    }
    if (mmvi_opt.advice == MADV_RANDOM)
        mmvi_os_advise(p, b->size, MADV_RANDOM);
    mmvi_stat_mapped(1, (int64_t)b->size);
    return 0;
}

void mmvi_segblock_unlink(struct mmvi_block *b)
{
    char path[4200];
    if (b->unlinked || !mmvi_block_owned(b))
        return;
    if (mmvi_block_path_of(b, path, sizeof path) == 0)
        unlink(path);
    b->unlinked = 1;
}

void mmvi_segblock_unmap(struct mmvi_block *b)
{
    /* One mmap over the whole span drops the file pages and restores the reservation at once. */
    if (mmvi_space_unmap(b->addr, b->span) < 0)
        mmvi_stat_inc(MMVI_STAT_UNMAP_FAILED);
    mmvi_stat_mapped(-1, -(int64_t)b->size);
}

void mmvi_block_forget(struct mmvi_block *b)
{
    if (b->state) { /* published: in the list and the table */
        if (b->prev)
            b->prev->next = b->next;
        else
            mmvi_blocks = b->next;
        if (b->next)
            b->next->prev = b->prev;
    }
    mmvi_registry_set(b->addr, b->span, NULL);
    mmvi_space_give(b->addr, b->span);
    mmvi_je_free(b);
}
