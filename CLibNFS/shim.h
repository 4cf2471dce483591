#ifndef SWIFT_LIBNFS_SHIM_H
#define SWIFT_LIBNFS_SHIM_H

// pkg-config adds no include path for libnfs: the header lives under nfsc/.
#include <stdint.h>
#include <stddef.h>
#include <sys/time.h>
#include <errno.h>
#include <string.h>
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

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

// libnfs 6.x run a mount's calls with retrans 0, and their pdu_set_timeout
// then gives each call a major timeout of the moment it was queued: the
// once-a-second timeout scan fails any call of the mount it finds waiting, so
// a mount whose server took 1.2 s over each reply failed after 1.0 s
// ("command timed out"), whatever the timeout (7.0.0 fixed it).
// This gives the calls of a mount in progress one retransmission, so that they
// time out at the timeout instead. rpc_disconnect, between the MOUNT and the
// NFS connection, resets retrans to 0, so the caller sets it again each time
// it services the mount. libnfs exports rpc_set_resiliency from 6.0 on; 6.0.2
// declares it only in its private header, 7.0.0 in libnfs.h, both so.
// Returns 0 where there is nothing to set (API v1, or no timeout).
#ifdef LIBNFS_API_V2
void rpc_set_resiliency(struct rpc_context *rpc, int num_tcp_reconnect, int timeout, int retrans);
#endif
static inline int swiftnfs_mount_retransmits(struct nfs_context *nfs, int timeout_ms) {
#ifdef LIBNFS_API_V2
    if (timeout_ms <= 0) return 0;
    rpc_set_resiliency(nfs_get_rpc_context(nfs), 0, timeout_ms, 1);
    return 1;
#else
    (void)nfs; (void)timeout_ms;
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

// NFSv3 calls on file handles (Sources/LibNFS/Engine/HandleOperations.swift),
// sent on the context's own RPC connection with libnfs's raw layer: a call
// names its file by handle, so nothing is looked up from the root first.
// 4.x-5.x name the calls rpc_nfs3_*_async and return 0 or -1; API v2 names
// them rpc_nfs3_*_task and returns the queued PDU or NULL. The arguments are
// encoded when queued, except a WRITE's bytes on API v2 and 5.x, which are sent
// from the caller's buffer: it lives until the callback.
#ifdef LIBNFS_API_V2
#define SWIFTNFS_RPC3(call, rpc, cb, args, pd) (rpc_nfs3_##call##_task((rpc), (cb), (args), (pd)) != NULL ? 0 : -1)
#else
#define SWIFTNFS_RPC3(call, rpc, cb, args, pd) rpc_nfs3_##call##_async((rpc), (cb), (args), (pd))
#endif

// libnfs's struct nfs_fh, which nfs_get_fh returns but no public header
// declares: the same two fields from 4.0.0 through 7.0.0.
struct swiftnfs_fh_view {
    int len;
    char *val;
};

static inline size_t swiftnfs_fh_length(struct nfsfh *fh) {
    return (size_t)((struct swiftnfs_fh_view *)nfs_get_fh(fh))->len;
}

static inline const void *swiftnfs_fh_bytes(struct nfsfh *fh) {
    return ((struct swiftnfs_fh_view *)nfs_get_fh(fh))->val;
}

// The export's root handle, from the mount's MNT reply. libnfs exports
// nfs_get_rootfh from 4.0.0 through 7.0.0 but declares it only in its private
// header; the declaration here is that one.
const struct nfs_fh *nfs_get_rootfh(struct nfs_context *nfs);

static inline size_t swiftnfs_root_fh_length(struct nfs_context *nfs) {
    return (size_t)((const struct swiftnfs_fh_view *)nfs_get_rootfh(nfs))->len;
}

static inline const void *swiftnfs_root_fh_bytes(struct nfs_context *nfs) {
    return ((const struct swiftnfs_fh_view *)nfs_get_rootfh(nfs))->val;
}

static inline void swiftnfs_set_fh3(nfs_fh3 *fh, const void *bytes, size_t length) {
    fh->data.data_len = (u_int)length;
    fh->data.data_val = (char *)bytes;
}

// Every NFSv3 reply begins with its nfsstat3.
static inline int32_t swiftnfs3_status(const void *res) {
    return (int32_t)*(const nfsstat3 *)res;
}

static inline int swiftnfs3_lookup_async(struct nfs_context *nfs, const void *dir, size_t dir_length,
                                         const char *name, rpc_cb cb, void *private_data) {
    LOOKUP3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.what.dir, dir, dir_length);
    args.what.name = (char *)name;
    return SWIFTNFS_RPC3(lookup, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

// The handle found (valid during the callback) and its attributes, NULL when the server sent none.
static inline const void *swiftnfs3_lookup_result(const void *res, size_t *length, const fattr3 **attributes) {
    const LOOKUP3resok *ok = &((const LOOKUP3res *)res)->LOOKUP3res_u.resok;
    *attributes = ok->obj_attributes.attributes_follow ? &ok->obj_attributes.post_op_attr_u.attributes : NULL;
    *length = ok->object.data.data_len;
    return ok->object.data.data_val;
}

// API v2 reads into `buf`, which lives until the callback; 4.x-5.x ignore it.
static inline int swiftnfs3_read_async(struct nfs_context *nfs, const void *fh, size_t fh_length,
                                       uint64_t offset, uint32_t count, void *buf,
                                       rpc_cb cb, void *private_data) {
    READ3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.file, fh, fh_length);
    args.offset = offset;
    args.count = count;
#ifdef LIBNFS_API_V2
    return rpc_nfs3_read_task(nfs_get_rpc_context(nfs), cb, buf, count, &args, private_data) != NULL ? 0 : -1;
#else
    (void)buf;
    return rpc_nfs3_read_async(nfs_get_rpc_context(nfs), cb, &args, private_data);
#endif
}

// How many bytes a READ returned and whether they end the file. 4.x-5.x set
// `bytes` to them (valid during the callback); API v2 has put them in `buf`
// already and sets it NULL.
static inline uint32_t swiftnfs3_read_result(const void *res, const void **bytes, int *eof) {
    const READ3resok *ok = &((const READ3res *)res)->READ3res_u.resok;
    *eof = ok->eof ? 1 : 0;
#ifdef LIBNFS_API_V2
    *bytes = NULL;
    return ok->count;
#else
    *bytes = ok->data.data_val;
    return ok->count < ok->data.data_len ? ok->count : ok->data.data_len;
#endif
}

// `stable`: 0 UNSTABLE, 1 DATA_SYNC, 2 FILE_SYNC.
static inline int swiftnfs3_write_async(struct nfs_context *nfs, const void *fh, size_t fh_length,
                                        uint64_t offset, const void *bytes, uint32_t count, int stable,
                                        rpc_cb cb, void *private_data) {
    WRITE3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.file, fh, fh_length);
    args.offset = offset;
    args.count = count;
    args.stable = (stable_how)stable;
    args.data.data_len = count;
    args.data.data_val = (char *)bytes;
    return SWIFTNFS_RPC3(write, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

// The bytes written and how stably (as `stable` above).
static inline uint32_t swiftnfs3_write_result(const void *res, int *committed) {
    const WRITE3resok *ok = &((const WRITE3res *)res)->WRITE3res_u.resok;
    *committed = (int)ok->committed;
    return ok->count;
}

static inline int swiftnfs3_commit_async(struct nfs_context *nfs, const void *fh, size_t fh_length,
                                         rpc_cb cb, void *private_data) {
    COMMIT3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.file, fh, fh_length);
    return SWIFTNFS_RPC3(commit, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

// A GUARDED create fails with NFS3ERR_EXIST where the name exists; an UNCHECKED one opens what is there.
static inline int swiftnfs3_create_async(struct nfs_context *nfs, const void *dir, size_t dir_length,
                                         const char *name, int guarded, uint32_t mode,
                                         rpc_cb cb, void *private_data) {
    CREATE3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.where.dir, dir, dir_length);
    args.where.name = (char *)name;
    args.how.mode = guarded ? GUARDED : UNCHECKED;
    args.how.createhow3_u.obj_attributes.mode.set_it = 1;
    args.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = mode;
    return SWIFTNFS_RPC3(create, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

// A reply's optional handle (valid during the callback), NULL when the server sent none.
static inline const void *swiftnfs3_post_op_fh(const post_op_fh3 *fh, size_t *length) {
    if (!fh->handle_follows) {
        *length = 0;
        return NULL;
    }
    *length = fh->post_op_fh3_u.handle.data.data_len;
    return fh->post_op_fh3_u.handle.data.data_val;
}

// The new file's handle, or NULL.
static inline const void *swiftnfs3_create_result(const void *res, size_t *length) {
    return swiftnfs3_post_op_fh(&((const CREATE3res *)res)->CREATE3res_u.resok.obj, length);
}

static inline int swiftnfs3_mkdir_async(struct nfs_context *nfs, const void *dir, size_t dir_length,
                                        const char *name, uint32_t mode, rpc_cb cb, void *private_data) {
    MKDIR3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.where.dir, dir, dir_length);
    args.where.name = (char *)name;
    args.attributes.mode.set_it = 1;
    args.attributes.mode.set_mode3_u.mode = mode;
    return SWIFTNFS_RPC3(mkdir, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

// The new directory's handle, or NULL.
static inline const void *swiftnfs3_mkdir_result(const void *res, size_t *length) {
    return swiftnfs3_post_op_fh(&((const MKDIR3res *)res)->MKDIR3res_u.resok.obj, length);
}

static inline int swiftnfs3_getattr_async(struct nfs_context *nfs, const void *fh, size_t fh_length,
                                          rpc_cb cb, void *private_data) {
    GETATTR3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.object, fh, fh_length);
    return SWIFTNFS_RPC3(getattr, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

static inline const fattr3 *swiftnfs3_getattr_result(const void *res) {
    return &((const GETATTR3res *)res)->GETATTR3res_u.resok.obj_attributes;
}

// FSINFO of the export's root, for the transfer sizes (an early mount, NFSContext.swift).
static inline int swiftnfs3_fsinfo_async(struct nfs_context *nfs, const void *fh, size_t fh_length,
                                         rpc_cb cb, void *private_data) {
    FSINFO3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.fsroot, fh, fh_length);
    return SWIFTNFS_RPC3(fsinfo, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

// The largest READ and WRITE the server takes.
static inline void swiftnfs3_fsinfo_result(const void *res, uint32_t *rtmax, uint32_t *wtmax) {
    const FSINFO3resok *ok = &((const FSINFO3res *)res)->FSINFO3res_u.resok;
    *rtmax = ok->rtmax;
    *wtmax = ok->wtmax;
}

// Sets what is given: a mode, size, uid or gid below 0, or `set_times` 0, leaves that attribute as it is.
// Times are the client's (SET_TO_CLIENT_TIME), to the nanosecond.
static inline int swiftnfs3_setattr_async(struct nfs_context *nfs, const void *fh, size_t fh_length,
                                          int64_t mode, int64_t size, int64_t uid, int64_t gid,
                                          int set_times, uint32_t atime_seconds, uint32_t atime_nanoseconds,
                                          uint32_t mtime_seconds, uint32_t mtime_nanoseconds,
                                          rpc_cb cb, void *private_data) {
    SETATTR3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.object, fh, fh_length);
    if (mode >= 0) {
        args.new_attributes.mode.set_it = 1;
        args.new_attributes.mode.set_mode3_u.mode = (mode3)mode;
    }
    if (size >= 0) {
        args.new_attributes.size.set_it = 1;
        args.new_attributes.size.set_size3_u.size = (size3)size;
    }
    if (uid >= 0) {
        args.new_attributes.uid.set_it = 1;
        args.new_attributes.uid.set_uid3_u.uid = (uid3)uid;
    }
    if (gid >= 0) {
        args.new_attributes.gid.set_it = 1;
        args.new_attributes.gid.set_gid3_u.gid = (gid3)gid;
    }
    if (set_times) {
        args.new_attributes.atime.set_it = SET_TO_CLIENT_TIME;
        args.new_attributes.atime.set_atime_u.atime.seconds = atime_seconds;
        args.new_attributes.atime.set_atime_u.atime.nseconds = atime_nanoseconds;
        args.new_attributes.mtime.set_it = SET_TO_CLIENT_TIME;
        args.new_attributes.mtime.set_mtime_u.mtime.seconds = mtime_seconds;
        args.new_attributes.mtime.set_mtime_u.mtime.nseconds = mtime_nanoseconds;
    }
    return SWIFTNFS_RPC3(setattr, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

static inline int swiftnfs3_rename_async(struct nfs_context *nfs,
                                         const void *from_dir, size_t from_dir_length, const char *from_name,
                                         const void *to_dir, size_t to_dir_length, const char *to_name,
                                         rpc_cb cb, void *private_data) {
    RENAME3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.from.dir, from_dir, from_dir_length);
    args.from.name = (char *)from_name;
    swiftnfs_set_fh3(&args.to.dir, to_dir, to_dir_length);
    args.to.name = (char *)to_name;
    return SWIFTNFS_RPC3(rename, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

// One READDIRPLUS from `cookie` on (`verifier`: the 8 bytes the last reply gave, zeros at first).
static inline int swiftnfs3_readdirplus_async(struct nfs_context *nfs, const void *dir, size_t dir_length,
                                              uint64_t cookie, const void *verifier, uint32_t count,
                                              rpc_cb cb, void *private_data) {
    READDIRPLUS3args args;
    memset(&args, 0, sizeof(args));
    swiftnfs_set_fh3(&args.dir, dir, dir_length);
    args.cookie = cookie;
    memcpy(args.cookieverf, verifier, sizeof(cookieverf3));
    args.dircount = count;
    args.maxcount = count;
    return SWIFTNFS_RPC3(readdirplus, nfs_get_rpc_context(nfs), cb, &args, private_data);
}

// The reply's first entry (valid during the callback), whether the listing ends with it, and the verifier to send on.
static inline const entryplus3 *swiftnfs3_readdirplus_result(const void *res, int *eof, void *verifier) {
    const READDIRPLUS3resok *ok = &((const READDIRPLUS3res *)res)->READDIRPLUS3res_u.resok;
    *eof = ok->reply.eof ? 1 : 0;
    memcpy(verifier, ok->cookieverf, sizeof(cookieverf3));
    return ok->reply.entries;
}

static inline const entryplus3 *swiftnfs3_entry_next(const entryplus3 *entry) { return entry->nextentry; }
static inline const char *swiftnfs3_entry_name(const entryplus3 *entry) { return entry->name; }
static inline uint64_t swiftnfs3_entry_cookie(const entryplus3 *entry) { return entry->cookie; }

static inline const fattr3 *swiftnfs3_entry_attributes(const entryplus3 *entry) {
    return entry->name_attributes.attributes_follow ? &entry->name_attributes.post_op_attr_u.attributes : NULL;
}

static inline const void *swiftnfs3_entry_handle(const entryplus3 *entry, size_t *length) {
    return swiftnfs3_post_op_fh(&entry->name_handle, length);
}

#endif
