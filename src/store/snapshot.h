/*
 * snapshot.h - the format of index.snapshot, the index as of a log position,
 * so that an open replays only what was written after it. snapshot_save.c
 * writes it; snapshot.c reads, loads and checks it.
 *
 * Layout (little-endian), followed by a CRC-32 of everything before it:
 *
 *   "MKVSNAP\0" | version u32 = 5 | flags u32 | segments u32 | keys u64
 *   | position: segment u32, offset u64
 *   | per segment: id u32, size u64          (every segment the index may name)
 *   | bloom filter: k u32, capacity u64, inserted u64, blocks u64,
 *     then blocks * 8 words u64               (version 2 on)
 *   | metas u32, then per META name: name_len u16, segment u32, offset u32,
 *     value_len u32, name, value              (version 3 on)
 *   | dictionaries u32, then per dictionary: id u32   (version 3 on)
 *   | per key: key_len u16, segment u32, offset u32, value_len u32, key,
 *     then expire_at u64 (ms since the Unix epoch) when the top bit of
 *     offset (SNAP_OFF_EXPIRES) is set: a key with an expiry (version 5 on;
 *     a record starts below 2^31, so the bit is never part of an offset)
 *   | key order (version 4, flag SNAP_FLAG_KEY_ORDER): per key, in
 *     ascending key order, the name of its entry u32
 *
 * The name of an entry is a function of the entries before it in the file:
 * the place it takes when the entries are laid end to end in that order, in
 * 8-byte units, in chunks of 2^17 units (arena_plan_next in arena.h: each
 * entry takes ceil((14 + key_len) / 8) units, the first starts at unit 1,
 * and one that does not fit the rest of a chunk starts the next; the name is
 * chunk << 17 | unit). A load lays its entries out that way, so that the
 * names are the references of its ordered index, read straight into its
 * leaves with no sort and no lookup; it checks that each names one of its
 * entries, once. A loader that does not know a flag ignores the snapshot
 * (flags are 0 before version 4); a file without the key order (a writer
 * short of memory leaves it out, and versions 1 to 3 never had it) loads too,
 * and the ordered index is then built by sorting the keys.
 *
 * The bloom filter is the store's own, as it stood with the index: a load
 * takes its bits as they are when they have the shape the store's options
 * give for that capacity, instead of adding every key again; otherwise it is
 * skipped and rebuilt. Version 1 files (no filter), version 2 files (no
 * META names, no dictionaries), version 3 files (no key order) and version
 * 4 files (no expiries: the versions that wrote them refused to write a key
 * with one, so their keys load without) load too.
 *
 * The META names are the newest META record of each (meta.h), with where it
 * lies. The dictionaries are those the store had loaded: a record before the
 * snapshot's position may name any of them, and the log before it is not
 * replayed, so a snapshot that lists a dictionary file which is missing is
 * refused (the whole log is then replayed, and a record that names it stops
 * the open).
 *
 * Entries are written in about ascending order of key hash (see
 * index_for_each_by_hash), so that a load inserts nearly every key without a
 * probe and fills the slot array front to back. The order is a property of
 * the writer, not of the format: a loader accepts any order (only slower),
 * and files written before it (in slot order) load as before.
 */
#ifndef KV_STORE_SNAPSHOT_H
#define KV_STORE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "kvstore.h"

#define SNAPSHOT_NAME       "index.snapshot"
#define SNAP_MAGIC          "MKVSNAP"
#define SNAP_MAGIC_LEN      8
#define SNAP_GO_MAGIC       "KVINDEX1"
#define SNAP_VERSION        5u
#define SNAP_FLAG_KEY_ORDER 0x1u /* version 4 on */
#define SNAP_META_HEAD      14u
#define SNAP_BLOOM_HEAD     28u
#define SNAP_HEADER_LEN     40u
#define SNAP_SEG_LEN        12u
#define SNAP_ENTRY_HEAD     14u
#define SNAP_OFF_EXPIRES    0x80000000u /* version 5 on: an expiry follows the key */
#define SNAP_EXPIRY_LEN     8u
#define SNAP_MAX_FILE       (64ull << 30)

/* Writes the snapshot (snapshot_save.c), after making the log position it
 * records durable. Caller holds append_mu. */
int kv__snapshot_save_locked(kv_store *s);

/* Loads the snapshot into s->index if valid (snapshot_load.c); ids are the
 * segments on disk, already in the table. pos_seg and pos_off receive the
 * log position it covers. Returns 0 when loaded, 1 when absent or unusable
 * (the reason logged, the index to be reset by the caller), or a negative
 * code on a hard failure. Caller holds the rwlock for writing. */
int kv__snapshot_load(kv_store *s, const uint32_t *ids, size_t nids, uint32_t *pos_seg,
                      uint64_t *pos_off);

/* Checks dir's snapshot as a load would, against the n segments ids of
 * sizes bytes, without loading it (snapshot_load.c): kv_check_snapshot's
 * verdict, reason and key count. */
int kv__snapshot_check(const struct kv_io *io, const char *dir, const uint32_t *ids,
                       const uint64_t *sizes, size_t n, kv_snapshot_status *status, uint64_t *keys,
                       char *reason, size_t reason_len);

#endif /* KV_STORE_SNAPSHOT_H */
