#ifndef SWIFT_LIBNFS_SHIM_H
#define SWIFT_LIBNFS_SHIM_H

// pkg-config adds no include path for libnfs: the header lives under nfsc/.
#include <stdint.h>
#include <stddef.h>
#include <sys/time.h>
#include <nfsc/libnfs.h>

// libnfs 6 ("API v2") reorders the arguments of the read/write calls and drops
// nfs_create. Swift calls these wrappers, so one Swift source builds against
// libnfs 4.x-5.x and 6.x.

static inline int swiftnfs_pread(struct nfs_context *nfs, struct nfsfh *fh,
                                 uint64_t offset, uint64_t count, void *buf) {
#ifdef LIBNFS_API_V2
    return nfs_pread(nfs, fh, buf, (size_t)count, offset);
#else
    return nfs_pread(nfs, fh, offset, count, buf);
#endif
}

static inline int swiftnfs_pwrite(struct nfs_context *nfs, struct nfsfh *fh,
                                  uint64_t offset, uint64_t count, const void *buf) {
#ifdef LIBNFS_API_V2
    return nfs_pwrite(nfs, fh, buf, (size_t)count, offset);
#else
    return nfs_pwrite(nfs, fh, offset, count, buf);
#endif
}

static inline int swiftnfs_read(struct nfs_context *nfs, struct nfsfh *fh,
                                uint64_t count, void *buf) {
#ifdef LIBNFS_API_V2
    return nfs_read(nfs, fh, buf, (size_t)count);
#else
    return nfs_read(nfs, fh, count, buf);
#endif
}

static inline int swiftnfs_write(struct nfs_context *nfs, struct nfsfh *fh,
                                 uint64_t count, const void *buf) {
#ifdef LIBNFS_API_V2
    return nfs_write(nfs, fh, buf, (size_t)count);
#else
    return nfs_write(nfs, fh, count, buf);
#endif
}

// nfs_open2 with O_CREAT covers nfs_create on every version.
static inline int swiftnfs_open(struct nfs_context *nfs, const char *path,
                                int flags, int mode, struct nfsfh **fh) {
    return nfs_open2(nfs, path, flags, mode, fh);
}

// nfs_utimes takes a two-element timeval array; Swift cannot form one from a tuple pointer cleanly.
static inline int swiftnfs_utimes(struct nfs_context *nfs, const char *path,
                                  int64_t atime_sec, int64_t atime_usec,
                                  int64_t mtime_sec, int64_t mtime_usec) {
    struct timeval tv[2];
    tv[0].tv_sec = (time_t)atime_sec; tv[0].tv_usec = (suseconds_t)atime_usec;
    tv[1].tv_sec = (time_t)mtime_sec; tv[1].tv_usec = (suseconds_t)mtime_usec;
    return nfs_utimes(nfs, path, tv);
}

#endif
