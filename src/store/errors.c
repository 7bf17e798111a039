/*
 * errors.c - the text of each return code, and the library's version.
 */
#include "kvstore.h"

#include <errno.h>

#include "io.h"

const char *kv_strerror(int rc)
{
    switch (rc) {
    case KV_OK:
        return "success";
    case KV_EINVAL:
        return "invalid argument";
    case KV_ENOTFOUND:
        return "key not found";
    case KV_ENOMEM:
        return "out of memory";
    case KV_EIO:
        return "input/output error";
    case KV_ENOSPC:
        return "no space left on device";
    case KV_ECORRUPT:
        return "record failed its checksum";
    case KV_ELOCKED:
        return "data directory is in use by another handle or process";
    case KV_EFORMAT:
        return "data directory holds records this version cannot read";
    case KV_EREADONLY:
        return "store refuses writes after a failed fsync; reopen it";
    case KV_ETOOBIG:
        return "record exceeds the format's limits";
    case KV_EBUSY:
        return "store is closing";
    case KV_ECONDITION:
        return "a condition of the write failed";
    default:
        return "unknown error";
    }
}

const char *kv_version(void)
{
    return KV_VERSION_STRING;
}

int kv__errno_to_rc(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return KV_ENOSPC;
    case ENOMEM:
        return KV_ENOMEM;
    default:
        return KV_EIO;
    }
}
