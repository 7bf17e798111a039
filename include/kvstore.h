/*
 * kvstore.h - the public API of libkvstore, a durable, append-only, segmented
 * key-value storage engine (the Bitcask design: an in-memory hash index over
 * immutable, CRC-checked log segments).
 *
 * Conventions that hold for every function below:
 *
 *  - Return codes. 0 is success; failure is a negative KV_E... code that
 *    kv_strerror() names. Each function lists every code it can return. A
 *    function that fails leaves its output parameters untouched and frees
 *    whatever it allocated.
 *  - Threads. A kv_store handle may be used from any number of threads at once.
 *    Readers never wait for a writer's fsync. kv_close() is the exception: no
 *    other call on the handle may be running or start once it is called.
 *  - Keys are binary-safe byte strings of 1 to KV_MAX_KEY_LEN bytes. Values are
 *    binary-safe byte strings of 0 to KV_MAX_VALUE_LEN bytes.
 *  - Memory. Pointers passed in are borrowed for the duration of the call only.
 *    Memory handed out (kv_get's value) belongs to the caller, who releases it
 *    with kv_free().
 *  - The library never prints, exits or aborts on input it was given; it
 *    reports through the log callback in kv_options (see kv_log_fn for what
 *    the callback may do).
 */
#ifndef KVSTORE_H
#define KVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KV_BUILDING_LIBRARY) && defined(__GNUC__)
#define KV_API __attribute__((visibility("default")))
#else
#define KV_API
#endif

/* The version of this header. KV_VERSION_NUMBER grows with every release
 * (MAJOR * 10000 + MINOR * 100 + PATCH), for #if tests; kv_version() gives
 * the version of the library a program runs with. While MAJOR is 0, a new
 * MINOR may change the binary interface (0.2 grew kv_options, kv_stats and
 * kv_io), so the shared library's soname carries both: libkvstore.so.0.2. */
#define KV_VERSION_MAJOR  0
#define KV_VERSION_MINOR  2
#define KV_VERSION_PATCH  0
#define KV_VERSION_NUMBER (KV_VERSION_MAJOR * 10000 + KV_VERSION_MINOR * 100 + KV_VERSION_PATCH)
#define KV__STR(x)        #x
#define KV__XSTR(x)       KV__STR(x)
#define KV_VERSION_STRING                                                                          \
    KV__XSTR(KV_VERSION_MAJOR) "." KV__XSTR(KV_VERSION_MINOR) "." KV__XSTR(KV_VERSION_PATCH)

/* Largest key and value the on-disk format and the index accept. */
#define KV_MAX_KEY_LEN   65535u
#define KV_MAX_VALUE_LEN 0xFFFFFFF0u

/* Return codes. Every one is negative; kv_strerror() gives its text. */
enum {
    KV_OK = 0,
    KV_EINVAL = -1,     /* an argument is out of range (NULL handle, key length...) */
    KV_ENOTFOUND = -2,  /* the key is not in the store */
    KV_ENOMEM = -3,     /* an allocation failed */
    KV_EIO = -4,        /* an operating-system I/O call failed (see the log) */
    KV_ENOSPC = -5,     /* the disk is full: the write was not made */
    KV_ECORRUPT = -6,   /* a record failed its checksum: its bytes are not served */
    KV_ELOCKED = -7,    /* the data directory is open in another handle or process */
    KV_EFORMAT = -8,    /* the directory holds data this version cannot read */
    KV_EREADONLY = -9,  /* writes are refused after a failed fsync; reopen the store */
    KV_ETOOBIG = -10,   /* the record does not fit the format's limits */
    KV_EBUSY = -11,     /* the operation cannot run now (the store is closing) */
    KV_ECONDITION = -12 /* a write's condition failed: nothing of its batch was written */
};

typedef struct kv_store kv_store; /* opaque handle */

/* When a write is acknowledged relative to reaching stable storage. */
typedef enum {
    /* After fdatasync of its record. Concurrent writers share one fdatasync
     * (group commit). The default. */
    KV_SYNC_ALWAYS = 0,
    /* Immediately; a background thread calls fdatasync every sync_interval_ms.
     * A crash loses at most that window of acknowledged writes. */
    KV_SYNC_INTERVAL = 1,
    /* Immediately; the operating system writes back when it likes. Segments are
     * still synced when they are sealed and at kv_sync()/kv_close(). */
    KV_SYNC_NONE = 2
} kv_sync_mode;

/* How values are stored (kv_options.compression; docs/FORMAT.md). */
typedef enum {
    /* Every value as it is: records of the original format (op SET). The
     * default. */
    KV_COMPRESS_NONE = 0,
    /* Values of compression_min_size bytes or more are compressed with zstd
     * (one frame per value, with a dictionary the store trains from its own
     * values at compaction) when that saves at least 1/32 of them; reads
     * return the original bytes. The value's CRC-32 is kept beside the
     * frame, so kv_get_crc and etags never need a second pass. A directory
     * holding compressed values is not readable by the original Go and Rust
     * implementations. */
    KV_COMPRESS_ZSTD = 1
} kv_compression;

typedef enum { KV_LOG_ERROR = 0, KV_LOG_WARN = 1, KV_LOG_INFO = 2, KV_LOG_DEBUG = 3 } kv_log_level;

/*
 * Receives one complete line (no trailing newline) from the library. msg is
 * valid only during the call. The rules for the callback:
 *  - It is called from whichever thread did the work, the library's own
 *    background threads included, possibly several at once: it must be
 *    thread-safe.
 *  - It may be called while the library holds the store's internal locks
 *    (the write path's, the index's). It must not call any kv_ function on
 *    the same store: that call would wait for a lock its own thread holds,
 *    for ever. It should return quickly, since other threads may be waiting
 *    on those locks meanwhile; to act on a line, hand it to another thread.
 *  - It may change errno: the library keeps its own.
 */
typedef void (*kv_log_fn)(kv_log_level level, const char *msg, void *ctx);

/*
 * The file-system calls of the engine, as a table of functions (in the
 * manner of SQLite's VFS): every call the engine makes on files and
 * directories goes through the table in kv_options.io, so that a program can
 * trace them, count them, or make one fail (a full disk, an I/O error, a
 * short write, a lost fsync) to see what the engine does. kv_io_default()
 * is the operating system's table; a table of your own typically handles the
 * calls it cares about and passes the others to it.
 *
 * Contract of every member:
 *  - It follows its POSIX namesake (the same arguments after ctx, the same
 *    return value, errno set on failure), except where its comment says
 *    otherwise. The engine retries EINTR and short transfers itself, so a
 *    short count is not an error.
 *  - ctx is the table's ctx, passed as the first argument of every call.
 *  - Any member may be NULL: the operating system's function is used for it.
 *    Members that share a handle go together: opendir, readdir and closedir
 *    are all set or all NULL, and so are map and unmap (kv_open gives
 *    KV_EINVAL otherwise).
 *  - Calls come from any thread, several at once, and from the engine's own
 *    threads (group commit, interval sync, compaction). The table and what
 *    ctx points at must stay valid until kv_close() returns.
 *  - The engine opens every file with O_CLOEXEC in flags. Descriptors and
 *    directory handles a member returns are passed back only to the members
 *    of the same table.
 */
struct iovec;
struct stat;
struct statvfs;

struct kv_io {
    void *ctx; /* passed as the first argument of every call */
    /* Segments, the snapshot, the LOCK file, and directories (O_DIRECTORY,
     * to fsync them). */
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    int (*close)(void *ctx, int fd);
    ssize_t (*preadv)(void *ctx, int fd, const struct iovec *iov, int iovcnt, off_t off);
    ssize_t (*pwritev)(void *ctx, int fd, const struct iovec *iov, int iovcnt, off_t off);
    /* What makes a write durable: fdatasync for segments, fsync for files
     * that are renamed and for directories. A failure of either is taken to
     * mean that the data it covered may be lost. */
    int (*fdatasync)(void *ctx, int fd);
    int (*fsync)(void *ctx, int fd);
    /* Cuts a segment back after a failed write or a torn tail. */
    int (*ftruncate)(void *ctx, int fd, off_t len);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    /* A read-only shared mapping of the first len bytes of fd (mmap with
     * PROT_READ, MAP_SHARED, offset 0), or NULL with errno set. Reads of
     * segments are served from it; return NULL with errno ENODEV to have
     * them read with preadv instead (ENOMEM, EAGAIN, EMFILE and ENFILE are
     * taken as passing: a later read tries again). */
    void *(*map)(void *ctx, int fd, size_t len);
    int (*unmap)(void *ctx, void *addr, size_t len);
    /* The data directory, when kv_open creates it (EEXIST is no error). */
    int (*mkdir)(void *ctx, const char *path, mode_t mode);
    /* The LOCK file: operation is LOCK_EX | LOCK_NB, and EWOULDBLOCK means
     * that another handle or process has the directory open (KV_ELOCKED). */
    int (*flock)(void *ctx, int fd, int operation);
    /* The size of a segment or the snapshot (st_size), and whether a file a
     * backup meets in the data directory is a regular one (st_mode); no
     * other field is read. */
    int (*fstat)(void *ctx, int fd, struct stat *st);
    /* Free space before a compaction (f_bavail * f_frsize): a compaction
     * that would not fit is refused with KV_ENOSPC before it changes
     * anything; and the disk figures of kv_get_stats (f_blocks too). Only
     * those three fields are read. */
    int (*statvfs)(void *ctx, const char *path, struct statvfs *st);
    /* Listing the data directory (segments, stale temporary files): opendir
     * returns a handle, or NULL with errno set; readdir the next name in it
     * (".", ".." and any other name may come too) or NULL at the end, with
     * errno left unchanged, and NULL with errno set on a failure; closedir
     * releases the handle. */
    void *(*opendir)(void *ctx, const char *path);
    const char *(*readdir)(void *ctx, void *dir);
    int (*closedir)(void *ctx, void *dir);
    /* Backups (kv_backup, kv_backup_dir): a second name in the backup for a
     * file that never changes (a sealed segment, a dictionary). When it
     * fails with EXDEV, EPERM, EMLINK, ENOTSUP or ENOSYS (another file
     * system, or one without hard links) the file is copied instead. */
    int (*link)(void *ctx, const char *from, const char *to);
    /* The wall clock that expiry is judged by: ms since the Unix epoch
     * (CLOCK_REALTIME). A key whose expiry is at or before it is absent.
     * Read by any thread, often; it should be cheap. A test sets its own to
     * move time at will. */
    uint64_t (*clock_ms)(void *ctx);
    /* Advice that [off, off + len) of a segment, written and made durable
     * already, will not be read again soon: its pages may leave the page
     * cache (posix_fadvise with POSIX_FADV_DONTNEED; 0, or -1 with errno
     * set). Only bytes a sync covered are named. A failure changes nothing:
     * the engine ignores it. Called for kv_log_append_flags with
     * KV_LOG_DROP_CACHE. */
    int (*drop_cache)(void *ctx, int fd, off_t off, off_t len);
};

/* The operating system's table: every member set. Static; never NULL. */
KV_API const struct kv_io *kv_io_default(void);

typedef struct kv_options {
    kv_sync_mode sync_mode;    /* default KV_SYNC_ALWAYS */
    uint32_t sync_interval_ms; /* KV_SYNC_INTERVAL period; default 100 */
    uint64_t segment_size;     /* rotate the active segment past this many bytes;
                                  default 64 MiB, at least 4 KiB, at most 2 GiB */
    /* Zeros kept written (and synced) ahead of the active segment's end, in
     * sync modes always and interval: a durable write then overwrites
     * allocated space, and its fdatasync flushes data without the file
     * system's metadata. Default 4 MiB, at most 2 GiB; 0 turns it off. The
     * zeros are cut off when a segment is sealed, at kv_close, and at the
     * next open after a crash. */
    uint64_t segment_preallocate;
    uint32_t max_open_files;     /* segment descriptors kept open; default 256, at least 4 */
    uint32_t bloom_bits_per_key; /* bloom filter density; default 12; 0 disables it */
    /* Background compaction: every compaction_interval_secs (default 60; 0
     * turns it off) it runs when there are dead bytes and either the store has
     * compaction_threshold segments or more (default 5; 0: no count trigger)
     * with at least a segment's worth of dead bytes, or dead bytes make up
     * compaction_dead_ratio of the disk usage or more (default 0.5; 0: no
     * ratio trigger); and, with compression on, once the store holds 8 MiB
     * of live data and no dictionary yet (to train one). */
    uint32_t compaction_interval_secs;
    uint32_t compaction_threshold;
    double compaction_dead_ratio;
    /* Compression (kv_compression): off by default. Values shorter than
     * compression_min_size bytes (default 64, at least 1) are stored as they
     * are; compression_level is zstd's (default 3, 1 to 19). Compaction
     * trains a dictionary from the store's values (files dict-<id>.zdict)
     * and recompresses with it, at compaction_compression_level (default
     * 12, 0 to 19): compaction runs in the background, so it spends more
     * time on each value than a writer, once (the frames it writes are
     * marked KV_ATTR_DENSE and copied as they are while the dictionary
     * stays); about 9 % fewer bytes on JSON documents of 1 KiB, and no
     * slower to read. A level at or below compression_level (or 0) keeps
     * the writers' frames. */
    kv_compression compression;
    uint32_t compression_min_size;
    int compression_level;
    int compaction_compression_level;
    /* Keys whose expiry has passed are absent at once; a background sweep
     * every expiry_sweep_interval_ms (default 1000; 0 turns it off, and
     * kv_sweep_expired is then the only sweep) takes them out of the index,
     * so that their memory is returned and compaction reclaims their
     * records. */
    uint32_t expiry_sweep_interval_ms;
    kv_log_fn log_fn;       /* NULL: the library stays silent */
    void *log_ctx;          /* passed to log_fn */
    kv_log_level log_level; /* most verbose level passed to log_fn; default KV_LOG_INFO */
    const struct kv_io *io; /* the file-system calls (struct kv_io); NULL: the OS's */
} kv_options;

/* Fills *opts with the defaults above. Call it before changing any field, so
 * that fields added in later versions get their defaults. */
KV_API void kv_options_init(kv_options *opts);

/*
 * Opens the store in directory dir, creating the directory (one level) if it
 * is missing. opts NULL means the defaults. On success *out holds the handle.
 *
 * Opening takes an exclusive lock on dir/LOCK, removes stale *.tmp files,
 * loads index.snapshot when it is valid and replays the log that follows it
 * (all of it otherwise), truncates a torn final record of the newest segment,
 * and skips (and reports through the log and kv_stats) damaged records of the
 * others. A directory written by the original Go implementation opens too.
 *
 * Zeros at the end of the newest segment (space written ahead of the log,
 * kv_options.segment_preallocate) end the log and are cut off too.
 *
 * Codes: KV_EINVAL (NULL argument, an option out of range, or an io table
 * with half of a pair of members), KV_ELOCKED (the directory is open
 * elsewhere), KV_EFORMAT (a record this version cannot read: an unknown op
 * code or SETX attribute flag, an empty key, a META longer than
 * KV_MAX_META_LEN, a segment number or size this version cannot read),
 * KV_EIO, KV_ENOSPC, KV_ENOMEM, KV_ECORRUPT (a segment grew shorter while it
 * was read: another program changed the directory; or a compression
 * dictionary file, dict-<id>.zdict, is damaged, or missing while a record
 * names it: the log names the file).
 */
KV_API int kv_open(const char *dir, const kv_options *opts, kv_store **out);

/*
 * Completes every batch that kv_write_async accepted (their callbacks run;
 * a callback's own kv_write_async then gets KV_EBUSY), stops the background
 * threads, syncs the active segment, saves
 * index.snapshot, releases the lock and frees the handle, whatever the
 * outcome of the sync and snapshot: the handle is invalid afterwards. NULL is
 * accepted and returns 0. A store that turned read-only (KV_EREADONLY) is
 * closed without either. Returns the first error met (the store is still
 * consistent on disk; the next open replays the log): KV_EIO, KV_ENOSPC,
 * KV_ENOMEM.
 */
KV_API int kv_close(kv_store *s);

/*
 * Stores val under key: a kv_write of one KV_WRITE_PUT op. In KV_SYNC_ALWAYS
 * mode the record is on stable storage when this returns 0. A failed put
 * leaves the store as it was for readers.
 * Codes: KV_EINVAL (NULL handle or key, bad key length, val NULL with
 * val_len > 0), KV_ETOOBIG (val_len > KV_MAX_VALUE_LEN), KV_ENOSPC, KV_EIO,
 * KV_EREADONLY (a failed fsync turned the store read-only), KV_ENOMEM,
 * KV_EBUSY (kv_close has begun).
 */
KV_API int kv_put(kv_store *s, const void *key, size_t key_len, const void *val, size_t val_len);

/*
 * kv_put that also returns the CRC-32 (zlib's crc32) of val alone in
 * *value_crc, taken in the same pass that checksums the record (and combined
 * into the record's checksum): no second pass over the value. It is what an
 * HTTP server wants for an etag, and what kv_get_crc gives back later.
 * value_crc may be NULL; it is written only on success. Codes as kv_put.
 */
KV_API int kv_put_crc(kv_store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                      uint32_t *value_crc);

/*
 * Reads the value of key. On success *val is a new allocation of *val_len
 * bytes (plus one zero byte after them, so that text values can be printed),
 * owned by the caller and released with kv_free(). The record's checksum is
 * verified on every read; a compressed value is decompressed and checked
 * against the CRC-32 of the original value kept beside it. A key whose
 * expiry has passed is absent. Codes: KV_ENOTFOUND, KV_ECORRUPT (the record
 * failed its checksum, its file is shorter than the index says, or its
 * compressed value does not decompress to the bytes it records), KV_EINVAL
 * (NULL argument, bad key length), KV_EIO, KV_ENOMEM.
 */
KV_API int kv_get(kv_store *s, const void *key, size_t key_len, void **val, size_t *val_len);

/*
 * kv_get that also returns the CRC-32 (zlib's crc32) of the value alone in
 * *value_crc, derived from the record checksum that the read verifies anyway
 * (for a compressed value: the CRC kept beside it): no second pass over the
 * value. value_crc may be NULL. Codes as kv_get.
 */
KV_API int kv_get_crc(kv_store *s, const void *key, size_t key_len, void **val, size_t *val_len,
                      uint32_t *value_crc);

/* What kv_stat() tells of a key. */
typedef struct kv_stat_info {
    uint64_t size;         /* bytes of the value, as kv_get returns it */
    uint32_t value_crc;    /* CRC-32 (zlib's crc32) of the value: what kv_get_crc gives */
    uint64_t expire_at_ms; /* when the key expires, ms since the Unix epoch; 0: never */
    uint64_t position;     /* where its record lies (never 0): kv_key_at gives the key back */
} kv_stat_info;

/*
 * The size, CRC-32 and expiry of key's value, without reading the value:
 * from its record's header, its attributes and its checksum (the value's
 * CRC-32 is derived from the record's, which covers the value: see
 * docs/FORMAT.md), a few bytes at each end of the record however large the
 * value. The value's bytes are not checked here (kv_get checks them); the
 * record's header and key are. A key whose expiry has passed is absent, as
 * for kv_get. Codes: KV_ENOTFOUND, KV_EINVAL (NULL
 * argument, bad key length), KV_ECORRUPT (the record does not match the
 * index), KV_EFORMAT (attributes this version does not know), KV_EIO,
 * KV_ENOMEM.
 */
KV_API int kv_stat(kv_store *s, const void *key, size_t key_len, kv_stat_info *out);

/* Releases memory returned by kv_get(). NULL is accepted. */
KV_API void kv_free(void *p);

/* Returns 0 if key is in the store, KV_ENOTFOUND if not (or its expiry has
 * passed), KV_EINVAL on a bad argument (NULL handle or key, bad key
 * length). Reads only memory. */
KV_API int kv_exists(kv_store *s, const void *key, size_t key_len);

/*
 * Deletes key by appending a tombstone (durable as kv_put is): a kv_write of
 * one KV_WRITE_DEL op, whose rc it returns when the write succeeds. A key that is
 * not in the store gives KV_ENOTFOUND and writes nothing. Whether it is there
 * is decided atomically with the write, in the order of concurrent writes: a
 * delete that follows a put of the key sees it, and of two deletes of one
 * key only the first finds it. Other codes as kv_put's, but for
 * KV_ETOOBIG.
 */
KV_API int kv_delete(kv_store *s, const void *key, size_t key_len);

/* kv_set_expiry flags: when the expiry is changed (Redis's EXPIRE options).
 * GT and LT take a key without an expiry as expiring later than any time. */
#define KV_EXPIRY_NX 0x1u /* only when the key has no expiry */
#define KV_EXPIRY_XX 0x2u /* only when the key has one */
#define KV_EXPIRY_GT 0x4u /* only when the new one is later than the key's */
#define KV_EXPIRY_LT 0x8u /* only when the new one is earlier than the key's */

/*
 * Sets the expiry of key to expire_at_ms (ms since the Unix epoch; 0
 * removes it) and keeps its value: EXPIRE and PERSIST. The key's record is
 * written again (a SETX with the new expiry, or a SET without one), in a
 * batch whose conditions (the value's CRC-32 and the expiry read) make it
 * atomic with the read it is based on: a write of the key that comes in
 * between makes it read and decide again, so no change is lost. An expiry
 * that has passed already deletes the key (a tombstone). Costs a read and
 * a write of the value, as a PUT of it does. Durable as kv_put. key stays
 * the caller's; nothing is kept after the call. Any thread, several at
 * once; not from a kv_done_fn (it waits for the commit thread).
 * Codes: 0 (the expiry was changed), KV_ENOTFOUND (no such key),
 * KV_ECONDITION (a flag's condition does not hold, or expire_at_ms is 0
 * and the key has no expiry: nothing was written), KV_EINVAL (NULL handle
 * or key, bad key length, an unknown flag, NX with another flag, GT with
 * LT), and kv_get's and kv_write's other codes.
 */
KV_API int kv_set_expiry(kv_store *s, const void *key, size_t key_len, uint64_t expire_at_ms,
                         unsigned flags);

/*
 * Takes the keys whose expiry has passed out of the index now, as the
 * background sweep does (kv_options.expiry_sweep_interval_ms): their memory
 * is returned and their records become dead bytes for compaction. Reads
 * never needed it (such keys are absent already). It waits for a
 * compaction in progress, and does nothing while segments that an earlier
 * compaction could not remove remain (compaction drops expired keys then).
 * *removed (if not NULL) receives how many keys it took out. Holds the
 * write lock for pieces of 256 keys. Any thread; not from a kv_done_fn or
 * the log callback. Codes: 0, KV_EINVAL (NULL handle).
 */
KV_API int kv_sweep_expired(kv_store *s, uint64_t *removed);

/* ---- Writes: atomic batches, conditions, asynchronous submission ---- */

/* What one op of a batch does. */
typedef enum {
    KV_WRITE_PUT = 1,  /* store val under key */
    KV_WRITE_DEL = 2,  /* delete key */
    KV_WRITE_CHECK = 3 /* write nothing: only carry a condition (a WATCH) */
} kv_write_type;

/* A condition on an op, decided at the moment its batch is sequenced: after
 * every write sequenced before it (the batch's own earlier ops included),
 * before any after it. */
typedef enum {
    KV_IF_ANY = 0,     /* no condition */
    KV_IF_ABSENT = 1,  /* the key is not in the store */
    KV_IF_PRESENT = 2, /* the key is in the store */
    KV_IF_CRC = 3,     /* the key is in the store and the CRC-32 of its value is cond_crc */
    KV_IF_EXPIRY = 4   /* CHECK only: the key is in the store and its expiry is the op's
                        * expire_at_ms (0: it has none) */
} kv_cond;

/* kv_op.flags: a PUT keeps the expiry the key has when the batch is
 * sequenced (none when it has none or is absent), instead of clearing it.
 * expire_at_ms must then be 0. */
#define KV_KEEP_EXPIRY 0x1u

/* One op of a batch. The caller fills the inputs; the engine writes the
 * outputs (rc, value_crc) before kv_write returns or kv_write_async's done
 * runs. */
typedef struct kv_op {
    kv_write_type type;
    const void *key; /* 1 to KV_MAX_KEY_LEN bytes */
    size_t key_len;
    const void *val; /* PUT: 0 to KV_MAX_VALUE_LEN bytes; NULL only when val_len is 0 */
    size_t val_len;
    /* PUT: absolute expiry, ms since the Unix epoch; 0 = none. Once the
     * wall clock (kv_io.clock_ms) reaches it the key is absent for every
     * read, count and condition. A PUT without it (and without
     * KV_KEEP_EXPIRY) leaves the key with no expiry. The record is a SETX
     * (docs/FORMAT.md), which the original implementations cannot read.
     * CHECK with KV_IF_EXPIRY: the expiry the key must have. */
    uint64_t expire_at_ms;
    unsigned flags; /* PUT: KV_KEEP_EXPIRY or 0 */
    kv_cond cond;
    uint32_t cond_crc;  /* the CRC for KV_IF_CRC */
    int rc;             /* out: this op's outcome (see kv_write) */
    uint32_t value_crc; /* out: PUT, the CRC-32 (zlib's crc32) of val */
} kv_op;

/*
 * Applies the n ops of ops (n >= 1) as one atomic batch: all or none, for
 * readers and across crashes at any byte. The batch is one unit of group
 * commit: in KV_SYNC_ALWAYS mode it is on stable storage when this returns
 * 0, and concurrent batches share an fdatasync. Ops apply in order; a key
 * may appear in several ops, the last one wins.
 *
 * Each op's condition is checked when the batch is sequenced, against the
 * store as every earlier write left it and against the batch's own earlier
 * ops. If one fails, nothing of the batch is written and this returns
 * KV_ECONDITION; ops[i].rc is then KV_ECONDITION for each op whose condition
 * failed (each evaluated as if the ops before it applied) and 0 for the
 * others. A DEL of an absent key (with cond KV_IF_ANY) writes nothing for
 * that op and sets its rc to KV_ENOTFOUND; the batch still succeeds. A CHECK
 * writes nothing. On success every other op's rc is 0; on any other failure
 * every op's rc is the code returned. value_crc is set for every PUT op
 * unless the ops were refused before encoding (KV_EINVAL, KV_ETOOBIG).
 *
 * A PUT's value is stored as kv_put stores it: as it is (a SET record), or
 * compressed into a SETX record (kv_options.compression), with its expiry
 * when it has one; value_crc and KV_IF_CRC are always the CRC of the
 * original value. Every condition, and whether a DEL finds its key, takes
 * a key whose expiry has passed (at the moment the batch is sequenced) as
 * absent.
 *
 * On disk a batch that writes one record is that plain record (op SET,
 * DELETE or SETX; SET and DELETE are readable by the original
 * implementations); one that writes more is a BATCH record holding them
 * (docs/FORMAT.md).
 *
 * Codes: KV_EINVAL (NULL handle or ops, n 0, a bad key length or type or
 * cond, KV_IF_EXPIRY on an op that is not a CHECK, val NULL with
 * val_len > 0, expire_at_ms on an op that is neither a PUT nor such a
 * CHECK, flags on an op that is not a PUT, an unknown flag, expire_at_ms
 * with KV_KEEP_EXPIRY),
 * KV_ETOOBIG (a value over KV_MAX_VALUE_LEN, or a batch whose records exceed
 * it together), KV_ECONDITION, KV_ECORRUPT (the record a KV_IF_CRC condition
 * compares with does not match the index), KV_ENOSPC, KV_EIO (also zstd
 * refusing a value), KV_EREADONLY,
 * KV_ENOMEM, KV_EBUSY (kv_close has begun). Must not be called from a
 * kv_done_fn.
 */
KV_API int kv_write(kv_store *s, kv_op *ops, size_t n);

/* Where the log stands after a batch: segment id and the byte offset just
 * past the batch's records in it (for replication acknowledgements). A batch
 * that wrote nothing gets the position after the writes sequenced before
 * it. */
typedef struct kv_commit_info {
    uint64_t seg;
    uint64_t end;
} kv_commit_info;

/*
 * Runs once for each batch that kv_write_async accepted, when the batch is
 * durable (KV_SYNC_ALWAYS; in the other modes, when it is written) and
 * visible to readers, or has failed. rc is what kv_write would have
 * returned, and ops[i].rc and value_crc are set as kv_write sets them; info
 * is never NULL (on failure it is where the log ended).
 *
 * The contract of the callback:
 *  - It runs on the store's commit thread (one thread per store, never the
 *    caller's), holding no engine lock. Batches complete in the order they
 *    were sequenced; callbacks of one store never run at once.
 *  - It must not block: while it runs, no batch of this store is written.
 *    It may call kv_write_async (a batch it submits is sequenced after every
 *    batch already queued) and the reads (kv_get, kv_exists, kv_list,
 *    kv_get_stats). It must not call kv_write, kv_put, kv_put_crc,
 *    kv_delete, kv_sync, kv_compact, kv_save_snapshot or kv_close on the same
 *    store: they wait for the commit thread, which is this thread.
 *  - Once it returns, the engine no longer touches ops or what they point
 *    at: the caller may free them inside it.
 */
typedef void (*kv_done_fn)(kv_op *ops, size_t n, int rc, const kv_commit_info *info, void *ctx);

/*
 * kv_write without waiting: queues the batch and returns. On 0, done(ops, n,
 * rc, info, ctx) runs exactly once, later, on the commit thread (see
 * kv_done_fn); until it runs, ops and the keys and values they point at
 * belong to the engine and must stay valid and unchanged. On any other code
 * the batch was not accepted and done never runs for it. Whatever the
 * number of batches in flight, nothing is bounded but memory. kv_close waits
 * for every accepted batch to complete (its done to return).
 *
 * Codes: KV_EINVAL, KV_ETOOBIG (as kv_write, plus a NULL done), KV_ENOMEM,
 * KV_EREADONLY, KV_EBUSY (kv_close has begun: also when called from a done
 * during kv_close).
 */
KV_API int kv_write_async(kv_store *s, kv_op *ops, size_t n, kv_done_fn done, void *ctx);

/*
 * Makes every acknowledged write durable (fdatasync of the active segment),
 * whatever the sync mode. A failed fdatasync turns the store read-only: the
 * kernel may have dropped the data, and a retried sync could falsely
 * succeed. Codes: KV_EINVAL (NULL), KV_EIO, KV_ENOSPC (the sync failed),
 * KV_EREADONLY (the store refuses writes).
 */
KV_API int kv_sync(kv_store *s);

/*
 * Rewrites the live records of every segment into new segments and removes
 * the old ones, so that the disk holds about the live data. The active
 * segment is sealed first (unless it is the only segment, holds nothing
 * dead and compression is off: then there is nothing to do and it returns 0
 * at once). With compression on, it first trains a dictionary from the
 * store's values when that pays, and recompresses values with the newest
 * one. Reads and
 * writes go on while it runs (writers go to a new active segment; a key
 * written meanwhile keeps its newer value). At most one compaction runs at a
 * time: a second caller waits for the first. A crash at any point loses no
 * acknowledged write and brings back no deleted key. The bloom filter is
 * rebuilt and the snapshot saved afterwards. Codes: KV_EINVAL (NULL),
 * KV_ENOSPC (not enough free space for the live data, or a write ran out of
 * it; nothing changed), KV_EIO, KV_ENOMEM, KV_EREADONLY, KV_EBUSY (the store
 * is closing).
 */
KV_API int kv_compact(kv_store *s);

/*
 * Writes index.snapshot (to a .tmp file, fsynced, renamed, directory fsynced)
 * so that the next open replays only the log written after it. The position
 * it records is made durable first (an fdatasync of the active segment,
 * which turns the store read-only if it fails, as in kv_sync). Writers wait
 * while the index is copied. Codes: KV_EINVAL (NULL), KV_EIO, KV_ENOSPC,
 * KV_ENOMEM, KV_EREADONLY (the store refuses writes).
 */
KV_API int kv_save_snapshot(kv_store *s);

/* ---- Ordered reads ---- */

/* Flags of kv_range_opts. */
#define KV_RANGE_AFTER  0x1u /* start is exclusive: keys strictly after it */
#define KV_RANGE_VALUES 0x2u /* hand each key's value to fn too */

/* Keys one consistent page of kv_range holds at most (fewer when they are
 * long: a page holds about 1 MiB of keys and values at most, and at least
 * one key). */
#define KV_RANGE_PAGE 1024u

/* What kv_range reads. Zero-initialise it and set what you need: all zero
 * reads every key. */
typedef struct kv_range_opts {
    const void *start;  /* from this key on (KV_RANGE_AFTER: from the first key after it) */
    size_t start_len;   /* 0: from the first key of the store */
    const void *end;    /* up to this key, which is not read itself */
    size_t end_len;     /* 0: to the last key of the store */
    const void *prefix; /* only the keys that start with these bytes */
    size_t prefix_len;  /* 0: every key */
    size_t limit;       /* at most this many keys; 0: no limit */
    unsigned flags;     /* KV_RANGE_AFTER, KV_RANGE_VALUES */
} kv_range_opts;

/* Called once per key by kv_range(), in ascending byte order (memcmp, the
 * shorter first when one key begins the other). key and val are valid only
 * during the call; val is NULL and val_len 0 unless KV_RANGE_VALUES. Return
 * 0 to go on, any other value to stop; kv_range() then returns that value. */
typedef int (*kv_entry_fn)(const void *key, size_t key_len, const void *val, size_t val_len,
                           void *ctx);

/*
 * Calls fn for the keys in [start, end) (or (start, end) with KV_RANGE_AFTER)
 * that start with prefix, at most limit of them, in ascending order. Any
 * bound may be absent (length 0) and need not be a key of the store. The
 * cost is O(log n) to find the first key and O(1) per key read after it,
 * whatever the size of the store.
 *
 * The keys are read a page at a time (up to KV_RANGE_PAGE keys), each page
 * a consistent view of the store taken under one hold of the index's read
 * lock; fn runs without any lock held, so it may call back into the store.
 * So a call whose limit is at most KV_RANGE_PAGE sees one consistent view.
 * Between the pages of a longer one the store may change: a key present
 * throughout is read exactly once, and a key written or removed meanwhile
 * may or may not be. With KV_RANGE_VALUES each value is the one its key had
 * when its page was taken, checked against its record's checksum and
 * decompressed, and a key whose expiry has passed when its value is read is
 * left out (so a page may hold fewer keys than limit asks).
 *
 * Codes: KV_EINVAL (NULL s, r or fn; a NULL bound with a non-zero length;
 * an unknown flag), KV_ENOMEM, KV_ECORRUPT or KV_EIO (a value could not be
 * read; the keys before it were handed to fn), or fn's non-zero return.
 */
KV_API int kv_range(kv_store *s, const kv_range_opts *r, kv_entry_fn fn, void *ctx);

/*
 * The key whose position kv_stat gave (kv_stat_info.position): a number
 * below 2^63 that names the record the key's value was in, so that a
 * listing can go on after a key with nothing but a number in hand (what
 * Redis's SCAN cursor must be). The log keeps a record after its key is
 * overwritten or deleted, so the key comes back until a compaction removes
 * the segment that held it; a position outlives a restart. On success *key
 * is a new allocation of *key_len bytes (and a zero byte), released with
 * kv_free(). Codes: KV_ENOTFOUND (a compaction has removed its segment
 * since), KV_EINVAL (NULL argument, or a number that is no position of this
 * store: no such segment ever, or no record there), KV_EIO, KV_ENOMEM.
 */
KV_API int kv_key_at(kv_store *s, uint64_t position, void **key, size_t *key_len);

/* ---- Backups ---- */

/* Flags of kv_backup and kv_backup_dir. */
#define KV_BACKUP_COPY 1u /* copy every file, even where a hard link would do */

/* What a backup did. */
typedef struct kv_backup_info {
    uint64_t files_linked; /* files the backup shares with the source by a hard link */
    uint64_t files_copied; /* files written into the backup */
    uint64_t bytes_copied; /* bytes written into them */
    uint64_t keys;         /* kv_backup_dir: keys in the backup (it opens the copy); kv_backup: 0 */
    uint32_t attempts;     /* kv_backup_dir: passes made, more than 1 when the source changed
                              under one (a compaction ran); kv_backup: 1 */
} kv_backup_info;

/*
 * Makes a backup of the open store s in directory dest while reads and
 * writes go on: dest becomes a data directory that kv_open opens to the
 * store as it was at one instant during the call. It holds every write
 * acknowledged before the call began, with its exact value (and none of a
 * key deleted before then), and nothing written after that instant. In
 * sync modes KV_SYNC_INTERVAL and KV_SYNC_NONE the acknowledged writes are
 * first made durable (one fdatasync, as kv_sync), so that the backup never
 * holds a write the store could still lose.
 *
 * dest must not exist (it is created, one level, as kv_open creates a data
 * directory) or be an empty directory. It receives every file of the data
 * directory but LOCK and *.tmp: the sealed segments and the other files
 * that never change (index.snapshot, compression dictionaries) as hard links
 * where the file system allows (not with KV_BACKUP_COPY), copies otherwise;
 * the active segment copied up to its synced length. The snapshot is the one
 * that stood at that instant, so the backup's first open replays only the
 * log after it. Every file written is fsynced, and dest too, before the call
 * returns 0. A hard link shares the source's disk blocks: such a backup
 * survives the store's own mistakes and compactions, not the loss of the
 * disk (make it on another file system, or copy it there).
 *
 * Threads: safe beside every call but kv_close. Writers wait only while the
 * active segment's length is read (in sync modes interval and none, for one
 * fdatasync); a compaction in progress is waited for before the backup
 * starts, and none starts while its files are linked and opened; the bytes
 * are copied without any lock held.
 *
 * The backup is not opened: kv_open (or kvstore verify) checks it. To
 * restore, stop the store's user and copy the backup into an empty data
 * directory with kv_backup_dir(backup, dir, NULL, KV_BACKUP_COPY, NULL),
 * or open the backup itself. On failure every file made in dest is removed
 * (dest stays, empty). info (may be NULL) receives what was done. Codes:
 * KV_EINVAL (NULL s or dest, an empty dest, an unknown flag, dest not empty
 * or not a directory, a path too long), KV_EIO, KV_ENOSPC (dest's file
 * system is full, or the fdatasync failed), KV_ENOMEM, KV_ECORRUPT (a file
 * of the store grew shorter while it was copied: another program changed
 * the directory).
 */
KV_API int kv_backup(kv_store *s, const char *dest, unsigned flags, kv_backup_info *info);

/*
 * Makes a backup of the data directory src in dest, as kv_backup does but
 * without a handle: it only reads src, takes no lock, and so works beside a
 * process that has src open (a running volume-server) as well as on a
 * directory no one has open. src is never changed.
 *
 * It cannot stop that process, so it checks instead. index.snapshot is taken
 * first; then src is listed, and every file of the listing but the newest
 * segment hard-linked (those never change) or copied, the oldest segments
 * first, and the newest segment copied last, as far as it is written. A
 * file that a compaction removed before it could be taken, or one that
 * appeared meanwhile other than a newer segment (src is listed again at the
 * end), empties dest and starts the copy over, after a pause that doubles
 * each time (5 ms, 10 ms, ...), up to 8 passes (then KV_EBUSY). Finally the
 * copy is opened once with opts (without background compaction), which cuts
 * the newest segment after its last record that checks out (a write in
 * progress when it was read), checks every record it replays, and saves a
 * snapshot that matches the copy; the open needs the memory of the copy's
 * index.
 *
 * The copy holds every write that src's owner acknowledged before the call
 * began, with its exact value (in sync mode always; in modes interval and
 * none, those the owner had written to the file), as a prefix of src's log.
 *
 * dest as for kv_backup. KV_BACKUP_COPY copies every file instead of linking
 * any: what a restore wants, so that the restored store and the backup
 * share nothing. opts (NULL: the defaults) gives the file-system table used
 * for both directories and the log callback. info may be NULL. On failure
 * every file made in dest is removed. Codes: KV_EINVAL (NULL or empty src
 * or dest, an unknown flag, dest not empty, src holds no segment file, an
 * io table with half of a pair), KV_EBUSY (src changed during every pass),
 * KV_EIO (src or dest cannot be read or written), KV_ENOSPC, KV_ENOMEM, and
 * the codes of kv_open for a copy that does not open (KV_EFORMAT...).
 */
KV_API int kv_backup_dir(const char *src, const char *dest, const kv_options *opts, unsigned flags,
                         kv_backup_info *info);

/* Called once per key by kv_list(), in ascending byte order (memcmp, shorter
 * first on a tie). key is valid only during the call. Return 0 to go on, any
 * other value to stop; kv_list() then returns that value. */
typedef int (*kv_key_fn)(const void *key, size_t key_len, void *ctx);

/*
 * Calls fn for the keys that start with prefix (prefix_len 0: every key) and
 * sort strictly after `after` (after_len 0: from the first), at most limit of
 * them (0: no limit), in ascending order: kv_range with a prefix, a start
 * with KV_RANGE_AFTER and a limit, for keys only, and as consistent. Costs
 * O(log n + keys read). Codes: KV_EINVAL (NULL handle or fn, NULL prefix or
 * after with a non-zero length), KV_ENOMEM, or fn's non-zero return.
 */
KV_API int kv_list(kv_store *s, const void *prefix, size_t prefix_len, const void *after,
                   size_t after_len, size_t limit, kv_key_fn fn, void *ctx);

typedef struct kv_stats {
    uint64_t keys;                       /* live keys: those whose expiry has passed are not
                                            counted, swept or not (counted at the call, a
                                            pass over the keys that have an expiry) */
    uint64_t expiring_keys;              /* of which have an expiry (still ahead) */
    uint64_t expired_swept;              /* keys the sweep took out of the index */
    uint64_t segments;                   /* segment files */
    uint64_t disk_bytes;                 /* bytes in segment files */
    uint64_t live_bytes;                 /* bytes of the records the index points at */
    uint64_t dead_bytes;                 /* disk_bytes - live_bytes: what compaction can reclaim */
    uint64_t active_segment_id;          /* the segment that takes new writes */
    uint64_t oldest_segment_id;          /* the lowest segment id on disk */
    uint64_t index_bytes;                /* memory held by the index and the bloom filter */
    uint64_t bloom_bytes;                /* of which the bloom filter */
    uint64_t bloom_capacity;             /* keys the filter is sized for before it is rebuilt */
    uint64_t bloom_negatives;            /* lookups of absent keys the filter answered alone */
    uint64_t bloom_false_positives;      /* lookups the filter passed that the index refused */
    uint64_t checksum_errors;            /* damaged records met by recovery and by reads */
    uint64_t torn_bytes_truncated;       /* bytes cut off the newest segment at open */
    uint64_t fsyncs;                     /* fdatasync/fsync calls made (but the next) */
    uint64_t prealloc_syncs;             /* fdatasyncs of zeros written ahead of the log */
    uint64_t prealloc_bytes;             /* zeros written ahead of the log */
    uint64_t puts;                       /* acknowledged PUTs (kv_put calls, batches' PUT ops) */
    uint64_t deletes;                    /* acknowledged deletes that wrote a tombstone */
    uint64_t gets;                       /* kv_get calls */
    uint64_t records_replayed;           /* log records read at open */
    uint64_t compactions;                /* compactions completed */
    uint64_t compaction_bytes_read;      /* segment bytes compactions read: the live records
                                            and the short dead gaps read through between them
                                            (dead records are not read) */
    uint64_t compaction_bytes_written;   /* bytes they wrote */
    uint64_t compaction_bytes_reclaimed; /* disk bytes they freed: input size minus written */
    uint64_t last_compaction_ms;         /* duration of the last one */
    bool snapshot_loaded;                /* open used index.snapshot */
    bool read_only;                      /* writes are refused after a failed fsync */
    bool compacting;                     /* a compaction is running now */
    int last_compaction_error;           /* 0, or the code the last compaction that ran
                                            failed with (KV_ENOSPC: it would not fit) */
    uint64_t last_compaction_reclaimed;  /* disk bytes the last successful one freed */
    uint64_t disk_free_bytes;            /* free space of the directory's file system for
                                            the store (statvfs f_bavail * f_frsize, through
                                            kv_options.io); 0 when it cannot be learnt */
    uint64_t disk_size_bytes;            /* that file system's size (f_blocks * f_frsize);
                                            0 when it cannot be learnt */
} kv_stats;

/* Fills *out with a consistent set of figures (the disk's are read at the
 * time of the call). Codes: KV_EINVAL (NULL). */
KV_API int kv_get_stats(kv_store *s, kv_stats *out);

/* A histogram with fixed bucket edges: count[i] events had a value greater
 * than le[i - 1] and at most le[i]; the last bucket used has le UINT64_MAX
 * and takes the rest. */
#define KV_HIST_BUCKETS 24
typedef struct kv_histogram {
    size_t n;                        /* buckets used */
    uint64_t le[KV_HIST_BUCKETS];    /* upper edges, ascending */
    uint64_t count[KV_HIST_BUCKETS]; /* events per bucket (not cumulative) */
    uint64_t total;                  /* events */
    uint64_t sum;                    /* the sum of their values */
} kv_histogram;

/* How writes share their rounds of group commit. A round is one write of
 * the log (one pwritev) and, in KV_SYNC_ALWAYS mode, one fdatasync. */
typedef struct kv_write_stats {
    uint64_t rounds;  /* rounds that wrote to the log */
    uint64_t batches; /* batches (kv_write and kv_write_async calls) completed */
    /* Batches made durable by each fdatasync of a round (KV_SYNC_ALWAYS). */
    kv_histogram writes_per_sync;
    /* Microseconds from a batch's submission to the start of its round. */
    kv_histogram batch_wait_us;
} kv_write_stats;

/* Fills *out with the figures so far. Codes: KV_EINVAL (NULL). */
KV_API int kv_get_write_stats(kv_store *s, kv_write_stats *out);

/* One segment file, as kv_get_segment_stats reports it. */
typedef struct kv_segment_stats {
    uint64_t id;         /* the file is segment-<id>.dat */
    uint64_t disk_bytes; /* bytes in the file */
    uint64_t live_bytes; /* bytes of the records the index points at; the rest
                            (disk_bytes - live_bytes) is what compaction reclaims */
    bool active;         /* the segment that takes new writes */
} kv_segment_stats;

/*
 * Fills out[0 .. min(max, n)) with the store's n segments in id order (the
 * active one last) and sets *count to n, which may be more than max: a
 * caller that wants them all asks again with a larger array. out may be NULL
 * when max is 0, to learn the count. One consistent picture, taken under the
 * lock that readers share. Codes: KV_EINVAL (NULL s or count; NULL out with
 * max > 0).
 */
KV_API int kv_get_segment_stats(kv_store *s, kv_segment_stats *out, size_t max, size_t *count);

/* ---- Engine metadata kept in the log (replication's position, history id) */

/* The longest value kv_meta_put stores. */
#define KV_MAX_META_LEN 65536u

/*
 * Stores val as the metadata named name: a META record appended through
 * group commit like a put, so it is exactly as durable as the writes around
 * it (in sync mode always, on stable storage when this returns 0), and in
 * log order with them. The newest value of each name wins; it survives
 * reopen, the snapshot and compaction. Names are not keys: they never appear
 * in kv_get, kv_list or kv_stats.keys, and a key and a name may be equal.
 * Writing one makes the directory unreadable by the original Go and Rust
 * implementations (an op code they do not know). Codes: KV_EINVAL (NULL
 * handle or name, name_len outside 1..KV_MAX_KEY_LEN, val NULL with
 * val_len > 0), KV_ETOOBIG (val_len > KV_MAX_META_LEN), and kv_put's others.
 */
KV_API int kv_meta_put(kv_store *s, const void *name, size_t name_len, const void *val,
                       size_t val_len);

/*
 * Reads the newest value stored under name by kv_meta_put, from memory. On
 * success *val is a new allocation of *val_len bytes (plus a zero byte after
 * them), released with kv_free(). Codes: KV_ENOTFOUND (no value under that
 * name), KV_EINVAL (NULL argument, bad name length), KV_ENOMEM.
 */
KV_API int kv_meta_get(kv_store *s, const void *name, size_t name_len, void **val, size_t *val_len);

/* ---- The durable log, for replication ----
 *
 * A primary ships its log to replicas as raw records: kv_log_read gives the
 * records a replica lacks, byte for byte as they lie in the segments, and
 * kv_log_append stores them on the replica verbatim. A position in the log
 * is a segment id and a byte offset in it; positions compare as (seg, off)
 * pairs. Only records already on stable storage are read (those a sync
 * covered: in sync mode always every acknowledged write; in mode interval
 * those of the last background sync; in mode none those of sealed
 * segments and of kv_sync). A compaction's outputs (segments numbered
 * between the segments it read and the one writers moved to) are read like
 * any other segment: they hold copies of the records before them, so a
 * reader that has every record before them reads values it already has. */

typedef struct kv_log_pos {
    uint64_t seg; /* segment id; 0 with off 0: the start of the oldest segment */
    uint64_t off; /* byte offset of a record boundary in it */
} kv_log_pos;

/* The end of the durable log: the position just past the last synced
 * record. Codes: KV_EINVAL (NULL). */
KV_API int kv_log_end(kv_store *s, kv_log_pos *end);

/*
 * Reads whole records of the durable log from *pos into buf (cap bytes):
 * as many as fit, all from one segment. On 0, *pos is where they begin
 * (moved to the start of the next segment when it pointed at the end of a
 * sealed one, or at the start of the oldest for {0, 0}), *len their bytes
 * (0: nothing after *pos is durable yet) and *next the position after
 * them. Every record is checked (framing and CRC-32) before it is handed
 * out. Codes: KV_EINVAL (NULL argument, cap 0); KV_ENOTFOUND (the log no
 * longer or never held *pos: its segment was removed by a compaction, or
 * the position lies past the durable end, as when the reader's history
 * diverged from this log's); KV_ETOOBIG (the first record is longer than
 * cap: *len receives its length, *pos and *next are unchanged, buf's
 * bytes are not to be used); KV_ECORRUPT (a
 * record at *pos fails its checksum or framing: the log names it); KV_EIO,
 * KV_ENOMEM.
 */
KV_API int kv_log_read(kv_store *s, kv_log_pos *pos, void *buf, size_t cap, size_t *len,
                       kv_log_pos *next);

/*
 * Waits until the durable log extends past pos (kv_log_end(s) > *pos), at
 * most timeout_ms milliseconds. Returns 0 either way: read the log to learn
 * what came. Safe from any thread; not from a kv_done_fn. Codes: KV_EINVAL.
 */
KV_API int kv_log_wait(kv_store *s, const kv_log_pos *pos, uint32_t timeout_ms);

/*
 * A replica's write: stores records (len bytes of whole records as
 * kv_log_read handed them out, of any kind) at the end of this store's log,
 * verbatim, followed by a META record of meta_name holding meta (the
 * replica's position and history), as one unit: written with one pwritev
 * and made durable with one fdatasync whatever the sync mode, then applied
 * to the index in log order. META records among them are the sender's own
 * metadata and are left out. Every record is checked before anything is
 * written; a record that fails its CRC or framing makes the call fail with
 * nothing written. After a crash, either the unit's META record is in the
 * log or the position it names was not reached (records of a torn unit
 * that survive are the same records that a retry stores again). Codes:
 * KV_EINVAL (NULL argument, meta_name_len outside 1..KV_MAX_KEY_LEN),
 * KV_ECORRUPT (a record fails its check), KV_ETOOBIG (meta_len >
 * KV_MAX_META_LEN), KV_EFORMAT (a record kind this version cannot store),
 * KV_EREADONLY, KV_ENOSPC, KV_EIO, KV_ENOMEM, KV_EBUSY (kv_close has begun).
 */
KV_API int kv_log_append(kv_store *s, const void *records, size_t len, const void *meta_name,
                         size_t meta_name_len, const void *meta, size_t meta_len);

/* Flags of kv_log_append_flags. */
/* Once the unit is durable and indexed, its pages leave the page cache
 * (kv_io.drop_cache): a replica catching up stores far more than it will
 * read soon, and its next units then reuse that memory instead of growing
 * the cache. Reads of those records come from the disk until they are
 * cached again. */
#define KV_LOG_DROP_CACHE 0x1u

/*
 * kv_log_append with flags (0, or KV_LOG_DROP_CACHE): the same unit, the same
 * durability before it returns, the same codes, and KV_EINVAL for a flag it
 * does not know.
 */
KV_API int kv_log_append_flags(kv_store *s, const void *records, size_t len, const void *meta_name,
                               size_t meta_name_len, const void *meta, size_t meta_len,
                               unsigned flags);

/* ---- Reading a data directory record by record (for verify and dump) ---- */

typedef enum {
    KV_REC_OK = 0,       /* the record checks out */
    KV_REC_BAD_CHECKSUM, /* a complete record whose CRC does not match */
    KV_REC_DAMAGED,      /* bytes that do not parse as a record (skipped up to the next
                            record that checks out) */
    KV_REC_TORN,         /* an incomplete record at the end of a segment */
    KV_REC_UNKNOWN_OP,   /* a record that checks out but that this version cannot read:
                            an op code it does not know, a SETX attribute flag it does
                            not know, a META longer than it allows */
    KV_REC_ZERO_TAIL     /* zeros from a record boundary to the end of the segment:
                            space preallocated ahead of the log, not damage (the next
                            open cuts it off the newest segment) */
} kv_record_status;

/* The name of a record status, as the CLI's dump prints it: "ok",
 * "bad-checksum", "damaged", "incomplete", "unknown-op", "zero-tail"; "?" for
 * a value outside the enum. A static string, never NULL. */
KV_API const char *kv_record_status_name(kv_record_status status);

/* Record kinds (op codes), as docs/FORMAT.md describes them byte by byte.
 * SET and DELETE are the original implementations'; a write that uses no
 * newer feature is always one of them. */
#define KV_OP_SET    1 /* a value */
#define KV_OP_DELETE 2 /* a tombstone */
#define KV_OP_SETX   3 /* a value with attributes: expiry, compression */
#define KV_OP_BATCH  4 /* an atomic group of SET, DELETE and SETX records */
#define KV_OP_META   5 /* engine metadata kept in the log (replication) */

/* Attribute flags of a SETX record (docs/FORMAT.md). */
#define KV_ATTR_EXPIRES 0x01u /* expire_at_ms is set */
#define KV_ATTR_ZSTD    0x02u /* the value is stored as a zstd frame */
#define KV_ATTR_MAGICLESS                                                                          \
    0x04u /* with KV_ATTR_ZSTD: the frame is in zstd's magicless format (no magic number) */
#define KV_ATTR_DENSE                                                                              \
    0x08u /* with KV_ATTR_ZSTD: compressed by a compaction, at the compaction's level */

typedef struct kv_record_info {
    uint64_t segment_id;
    uint64_t offset; /* of the record's magic within the segment */
    uint64_t length; /* bytes the record (or damaged region) spans */
    kv_record_status status;
    uint8_t op;      /* KV_OP_SET, KV_OP_DELETE, ... or what was found */
    const void *key; /* NULL when status is DAMAGED, TORN or ZERO_TAIL; a META's name */
    size_t key_len;
    uint64_t value_len; /* the payload's length (SETX: attributes and stored value) */
    uint32_t checksum;  /* the stored checksum */
    /* A record inside the BATCH record reported just before it: its offset
     * is its own, within the segment. Inner records are reported only when
     * their whole batch checks out. */
    bool in_batch;
    /* A SETX that checks out: its attributes; attr_flags is 0 for any other
     * record. raw_len, raw_crc and dict_id are set with KV_ATTR_ZSTD: the
     * original value's length and CRC-32 and the dictionary it was
     * compressed with (0: none; the file dict-<id>.zdict). */
    uint8_t attr_flags;
    uint64_t expire_at_ms; /* with KV_ATTR_EXPIRES: ms since the Unix epoch */
    uint32_t raw_len, raw_crc, dict_id;
} kv_record_info;

/* Called once per record or damaged region; info and its key are valid only
 * during the call. Return 0 to go on, non-zero to stop. */
typedef int (*kv_record_fn)(const kv_record_info *info, void *ctx);

/*
 * Reads every segment of directory dir in replay order and calls fn for each
 * record found, good or bad. It opens files read-only and takes no lock, so it
 * may run beside a process that has the store open (records being written at
 * that moment may show as torn). Codes: KV_EINVAL (NULL dir or fn), KV_EIO
 * (dir or a segment cannot be read), KV_EFORMAT (a segment number this
 * version cannot read), KV_ECORRUPT (a segment grew shorter while it was
 * read, as the running process cut a failed write off), KV_ENOMEM, or fn's
 * non-zero return.
 *
 * A BATCH record (op KV_OP_BATCH) that checks out (its own checksum, and every
 * record inside it complete and checking out) is reported, then each record
 * inside it, with in_batch set. A batch that does not check out is reported
 * as one region, whole: none of its records is reported on its own, as
 * recovery applies none of them.
 */
KV_API int kv_scan(const char *dir, kv_record_fn fn, void *ctx);

typedef enum {
    KV_SNAPSHOT_VALID = 0, /* it would be used by the next open */
    KV_SNAPSHOT_ABSENT,    /* there is no index.snapshot */
    KV_SNAPSHOT_FOREIGN,   /* written by the original Go implementation: always ignored */
    KV_SNAPSHOT_INVALID    /* damaged, of an unknown version, or naming missing data */
} kv_snapshot_status;

/*
 * Checks dir/index.snapshot the way kv_open would. *status says what it found;
 * when reason is not NULL, a short explanation is written to it (at most
 * reason_len bytes, NUL-terminated). *keys is the number of keys it holds when
 * valid (keys may be NULL). Codes: KV_EINVAL (NULL dir or status), KV_EIO
 * (dir, a segment or the snapshot cannot be read), KV_EFORMAT (a segment
 * number this version cannot read), KV_ENOMEM.
 */
KV_API int kv_check_snapshot(const char *dir, kv_snapshot_status *status, uint64_t *keys,
                             char *reason, size_t reason_len);

/* The text of a return code: a static string, never NULL. */
KV_API const char *kv_strerror(int rc);

/* The library's version, "MAJOR.MINOR.PATCH": KV_VERSION_STRING of the
 * library the program runs with, which may be newer than the header it was
 * compiled with. */
KV_API const char *kv_version(void);

#ifdef __cplusplus
}
#endif

#endif /* KVSTORE_H */
