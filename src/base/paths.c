/* Paths: the default segment directory, making directories safely, uuid names. Used by the
 * core (the namer) and the heap (process folders) alike. */
#define _GNU_SOURCE
#include "paths.h"

#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <uuid/uuid.h>

static int fmt(char *buf, size_t size, const char *a, const char *b)
{
    int n = snprintf(buf, size, "%s%s", a, b);
    if (n < 0)
        return -EINVAL;
    return (size_t)n < size ? 0 : -ENAMETOOLONG;
}

int mmvi_fs_is_network(long type)
{
    switch ((unsigned long)type & 0xffffffffUL) {
    case 0x6969UL:     /* NFS */
    case 0xff534d42UL: /* CIFS */
    case 0xfe534d42UL: /* SMB2 */
    case 0x517bUL:     /* SMB */
    case 0x5346414fUL: /* AFS */
    case 0x6b414653UL: /* kAFS */
    case 0x00c36400UL: /* Ceph */
    case 0x01021997UL: /* 9P (virtio-fs shares of VMs too) */
    case 0x0bd00bd0UL: /* Lustre */
    case 0x47504653UL: /* GPFS */
    case 0x65735546UL: /* FUSE: sshfs, gvfs, ...; also local ones, which are rare for a home */
        return 1;
    default:
        return 0;
    }
}

/* Is the filesystem that holds `path` (or its nearest existing parent) on this machine? Heap
 * contents must not cross a network (slow, and a lost server is a SIGBUS), nor fill a shared
 * home quota. */
static int local(const char *path)
{
    char p[4096];
    if (fmt(p, sizeof p, path, "") < 0)
        return 0;
    for (;;) {
        struct statfs st;
        if (statfs(p, &st) == 0)
            return !mmvi_fs_is_network((long)st.f_type);
        char *slash = strrchr(p, '/');
        if (!slash || slash == p)
            return 1;
        *slash = '\0';
    }
}

int mmvi_default_dir_path(char *buf, size_t size)
{
    if (!buf || size == 0)
        return -EINVAL;
    const char *v = mmvi_getenv("MMVEC_DIR");
    if (v && *v)
        return fmt(buf, size, v, "");
    v = mmvi_getenv("XDG_CACHE_HOME");
    if (v && v[0] == '/' && local(v))
        return fmt(buf, size, v, "/mmvec");
    v = mmvi_getenv("HOME");
    if (v && v[0] == '/' && local(v))
        return fmt(buf, size, v, "/.cache/mmvec");
    /* Shared by every user: the folder carries the uid, so that each has one of their own. */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "/var/tmp/mmvec-%u", (unsigned)geteuid());
    return fmt(buf, size, tmp, "");
}

/* Checks that an existing directory is one we may safely put private files in. */
static int check_dir(const char *dir, int strict)
{
    struct stat st;
    if ((strict ? lstat(dir, &st) : stat(dir, &st)) < 0)
        return -errno;
    if (S_ISLNK(st.st_mode))
        return -EPERM;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (strict && st.st_uid != geteuid())
        return -EPERM;
    return 0;
}

int mmvi_dir_prepare(const char *dir, int strict)
{
    if (!dir || !*dir)
        return -EINVAL;
    char path[4096];
    int rc = fmt(path, sizeof path, dir, "");
    if (rc < 0)
        return rc;
    if (check_dir(path, strict) == 0)
        return 0;
    /* mkdir -p: create each missing component; an existing one is fine. */
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return check_dir(path, strict);
}

void mmvi_uuid_text(char out[37])
{
    uuid_t id;
    uuid_generate_random(id);
    uuid_unparse_lower(id, out);
}

int mmvi_uuid_path(const char *dir, const char *suffix, char *buf, size_t size)
{
    char text[37];
    mmvi_uuid_text(text);
    int n = snprintf(buf, size, "%s/%s%s", dir, text, suffix);
    if (n < 0)
        return -EINVAL;
    return (size_t)n < size ? 0 : -ENAMETOOLONG;
}

