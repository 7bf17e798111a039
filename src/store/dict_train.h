/*
 * dict_train.h - training a compression dictionary from the store's own
 * values (dict_train.c), which compaction does before it seals the log.
 */
#ifndef KV_STORE_DICT_TRAIN_H
#define KV_STORE_DICT_TRAIN_H

#include "kvstore.h"

/* With compression on, trains a dictionary on a sample of the store's
 * values and, when it compresses values that were kept out of its training
 * clearly better than the current one (or there is none), installs it as
 * the current dictionary (kv__dict_install). Too few values to train on is
 * no error. Caller holds compact_mu and no other lock. Codes: KV_ENOMEM,
 * KV_EIO, KV_ENOSPC (writing the file). */
int kv__dict_train(kv_store *s);

#endif /* KV_STORE_DICT_TRAIN_H */
