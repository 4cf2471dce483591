#ifndef SWIFT_LIBNFS_SHIM_H
#define SWIFT_LIBNFS_SHIM_H

// pkg-config adds no include path for libnfs: the header lives under nfsc/.
#include <stdint.h>
#include <stddef.h>
#include <sys/time.h>
#include <nfsc/libnfs.h>

// Every difference between the libnfs versions this package supports (4.0.0
// through 7.0.0) lives here, keyed on what each version's header declares.
// libnfs 6 ("API v2") reorders the arguments of the read/write calls (and reads
// into the caller's buffer), returns size_t from readmax/writemax, and drops
// nfs_create and the read-ahead setter.
// Swift calls these wrappers, so one Swift source builds against all of them.

// libnfs 6 returns size_t where 4.x-5.x return uint64_t.
static inline uint64_t swiftnfs_get_readmax(struct nfs_context *nfs) {
    return (uint64_t)nfs_get_readmax(nfs);
}

static inline uint64_t swiftnfs_get_writemax(struct nfs_context *nfs) {
    return (uint64_t)nfs_get_writemax(nfs);
}

// libnfs 6 dropped its read-ahead (and page cache) setters.
static inline int swiftnfs_has_readahead(void) {
#ifdef LIBNFS_FEATURE_READAHEAD
    return 1;
#else
    return 0;
#endif
}

// 2 for libnfs 6 and later ("API v2"), 1 before.
static inline int swiftnfs_api_version(void) {
#ifdef LIBNFS_API_V2
    return 2;
#else
    return 1;
#endif
}

// 1 for libnfs 5.x: its socket writer resumes a partly sent request wrongly
// (it skips the bytes already sent in every later piece of the request, not
// only in the first; 6.0 resets that count), so a send the kernel cut short
// corrupts the stream. 5.x is the API v1 header with the multithreading feature.
static inline int swiftnfs_resumes_partial_sends_wrongly(void) {
#if defined(LIBNFS_FEATURE_MULTITHREADING) && !defined(LIBNFS_API_V2)
    return 1;
#else
    return 0;
#endif
}

// libnfs 5.0 added the READDIR/READDIRPLUS reply size setter (4.x asks for
// 8 KiB, about 50 entries a round trip); the feature macros 5.0 added with it
// tell the headers apart. Returns 0 where there is no setter.
static inline int swiftnfs_set_readdir_buffer(struct nfs_context *nfs, uint32_t dircount, uint32_t maxcount) {
#ifdef LIBNFS_FEATURE_MULTITHREADING
    nfs_set_readdir_max_buffer_size(nfs, dircount, maxcount);
    return 1;
#else
    (void)nfs; (void)dircount; (void)maxcount;
    return 0;
#endif
}

static inline int swiftnfs_has_readdir_buffer(void) {
#ifdef LIBNFS_FEATURE_MULTITHREADING
    return 1;
#else
    return 0;
#endif
}

// An address inside libnfs, for dladdr to name the library actually loaded.
static inline void *swiftnfs_symbol_address(void) {
    return (void *)&nfs_init_context;
}

// The engine's asynchronous calls (Sources/LibNFS/Engine). API v2 reads go
// straight into `buf` and hand the callback no data; 4.x-5.x ignore `buf` and
// hand the callback libnfs's own copy, valid only during the callback. Writes
// are copied at submit by 4.x, and read from `buf` until they are sent by 5.x
// and API v2 (zero-copy), so the caller keeps `buf` alive until the callback on every version.
static inline int swiftnfs_pread_async(struct nfs_context *nfs, struct nfsfh *fh,
                                       uint64_t offset, uint64_t count, void *buf,
                                       nfs_cb cb, void *private_data) {
#ifdef LIBNFS_API_V2
    return nfs_pread_async(nfs, fh, buf, (size_t)count, offset, cb, private_data);
#else
    (void)buf;
    return nfs_pread_async(nfs, fh, offset, count, cb, private_data);
#endif
}

static inline int swiftnfs_pwrite_async(struct nfs_context *nfs, struct nfsfh *fh,
                                        uint64_t offset, uint64_t count, const void *buf,
                                        nfs_cb cb, void *private_data) {
#ifdef LIBNFS_API_V2
    return nfs_pwrite_async(nfs, fh, buf, (size_t)count, offset, cb, private_data);
#else
    return nfs_pwrite_async(nfs, fh, offset, count, buf, cb, private_data);
#endif
}

// nfs_utimes takes a two-element timeval array (copied at submit); Swift cannot
// form one from a tuple pointer cleanly. nfs_open2 with O_CREAT covers the
// nfs_create that API v2 dropped, so Swift calls nfs_open2_async directly.
static inline int swiftnfs_utimes_async(struct nfs_context *nfs, const char *path,
                                        int64_t atime_sec, int64_t atime_usec,
                                        int64_t mtime_sec, int64_t mtime_usec,
                                        nfs_cb cb, void *private_data) {
    struct timeval tv[2];
    tv[0].tv_sec = (time_t)atime_sec; tv[0].tv_usec = (suseconds_t)atime_usec;
    tv[1].tv_sec = (time_t)mtime_sec; tv[1].tv_usec = (suseconds_t)mtime_usec;
    return nfs_utimes_async(nfs, path, tv, cb, private_data);
}

#endif
