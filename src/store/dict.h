/*
 * dict.h - compression dictionaries (dict.c): the files dict-<id>.zdict of a
 * data directory, loaded at open, and the table of them a store keeps.
 *
 * A SETX compressed with a dictionary names it by id (docs/FORMAT.md). The
 * newest dictionary (the highest id) is the current one: writers compress
 * with it. Compaction trains new ones (dict_train.c) and removes a file only
 * when no record on disk and no snapshot names it. Dictionaries are
 * reference counted: a reader or writer holds the one it uses, so the table
 * may drop one while it is in use.
 *
 * File: "KVZDICT\0" | id u32le | length u32le | crc32 u32le (of the
 * dictionary) | the zstd dictionary (length bytes). Written to a .tmp file,
 * fsynced, renamed, and the directory fsynced.
 */
#ifndef KV_STORE_DICT_H
#define KV_STORE_DICT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvstore.h"

#define DICT_FILE_MAGIC    "KVZDICT"
#define DICT_FILE_HEAD_LEN 20u
#define DICT_MAX_LEN       (1u << 20)

/*
 * The zstd level of the frames compaction writes (RECORD_ATTR_DENSE):
 * kv_options.compaction_compression_level (DICT_DENSE_LEVEL by default),
 * but never below the writers'. Compaction runs in the background, so it
 * can spend more time per value than a writer, and small values compress
 * markedly better there (level 12 searches a binary tree where level 3
 * probes a hash table: about 9 % fewer bytes on JSON documents of 1 KiB
 * with a dictionary, for some 8 times the time); frames of higher levels
 * decompress no slower.
 */
#define DICT_DENSE_LEVEL 12
static inline int kv__dense_level(const kv_options *o)
{
    return o->compaction_compression_level > o->compression_level ? o->compaction_compression_level
                                                                  : o->compression_level;
}

struct kv_dict {
    uint32_t id;
    atomic_uint refs;    /* the table's, and each user's */
    atomic_uint writers; /* writers that compressed with it and whose record is not written */
    void *cdict;         /* ZSTD_CDict at the store's level: the current one only */
    void *cdict_dense;   /* ZSTD_CDict at compaction's level (kv__dense_level): the same */
    void *ddict;         /* ZSTD_DDict */
    uint8_t *bytes;      /* the dictionary itself (len bytes), for decoders that lay it out
                          * in front of their output (compress.c) */
    size_t len;
};

/* Loads every dict-<id>.zdict of the store's directory (the newest becomes
 * current). A file that does not check out (header, length, CRC, zstd's own
 * checks) is KV_ECORRUPT, logged with its name. Codes: KV_ECORRUPT, KV_EIO,
 * KV_ENOMEM. */
int kv__dicts_open(kv_store *s);

/* Releases the table (dictionaries still held are freed by their last
 * user). */
void kv__dicts_close(kv_store *s);

/* The dictionary of that id, held (kv__dict_put releases it), or NULL. */
struct kv_dict *kv__dict_get(kv_store *s, uint32_t id);
void kv__dict_put(struct kv_dict *d);

/* The current dictionary, held and counted as a writer's until
 * kv__dict_writer_done; NULL when there is none. */
struct kv_dict *kv__dict_for_writer(kv_store *s);
void kv__dict_writer_done(struct kv_dict *d);

/* The current dictionary, held, or NULL. */
struct kv_dict *kv__dict_current(kv_store *s);

/* The path of dict-<id>.zdict in dir. */
int kv__dict_path(const char *dir, uint32_t id, bool tmp, char *buf, size_t len);

/* Writes bytes (a zstd dictionary) as the file of the next id, durably, and
 * makes it the current dictionary once loaded; then waits until no writer
 * still holds the previous one (each holds it only while its own write is in
 * flight), so that every record naming an older dictionary lies before the
 * log position the caller seals next. *id receives the new id. */
int kv__dict_install(kv_store *s, const void *bytes, size_t len, uint32_t *id);

/* The ids of the table, ascending, into *ids (free()); *n of them. */
int kv__dict_ids(kv_store *s, uint32_t **ids, size_t *n);

/* Takes every dictionary but the current one and those in keep (nkeep ids)
 * out of the table; their ids go to *gone (free()), *ngone of them, for
 * kv__dict_unlink once nothing on disk names them. */
int kv__dict_drop_except(kv_store *s, const uint32_t *keep, size_t nkeep, uint32_t **gone,
                         size_t *ngone);

/* Removes the files of those ids and fsyncs the directory. */
void kv__dict_unlink(kv_store *s, const uint32_t *ids, size_t n);

#endif /* KV_STORE_DICT_H */
