#!/usr/bin/env python3
"""SCAN's cursor is a key's position in the log, not an entry of a table the
server keeps: it goes on after a restart, a compaction makes the scan start
over without missing a key, and a number that names no record is refused.
STRLEN, EXISTS, TYPE and TTL come from the record's head (kv_stat): a value
whose expiry has passed is absent to them as to GET, and TTL tells the
expiry a record holds."""

import os
import struct
import sys
import time
import unittest
import zlib

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import Server, stop_and_check  # noqa: E402

TIMEOUT = 60


def record(op, key, payload):
    """One record in the on-disk format of docs/FORMAT.md."""
    body = struct.pack("<BII", op, len(key), len(payload)) + key + payload
    return b"\xf0\xf1" + body + struct.pack("<I", zlib.crc32(body))


def setx_expiring(key, value, expire_at_ms):
    """A SETX record whose attribute block holds only an expiry."""
    return record(3, key, struct.pack("<BQ", 1, expire_at_ms) + value)


class ScanCursor(unittest.TestCase):
    def setUp(self):
        self.server = Server(env={"COMPACTION_INTERVAL_SECS": "0"}).start()
        self.addCleanup(stop_and_check, self, self.server)
        self.r = self.client()

    def client(self):
        r = redis.Redis(host="127.0.0.1", port=self.server.resp_port, socket_timeout=TIMEOUT)
        self.addCleanup(r.close)
        return r

    def fill(self, n):
        keys = [("scan:%04d" % i).encode() for i in range(n)]
        with self.r.pipeline(transaction=False) as p:
            for k in keys:
                p.set(k, "v")
            p.execute()
        return keys

    def scan_on(self, cursor, count=40):
        """Pages from cursor to the end: the keys in the order they came."""
        seen = []
        while True:
            cursor, page = self.r.scan(cursor, count=count)
            seen.extend(page)
            if cursor == 0:
                return seen

    def test_a_cursor_goes_on_after_a_restart(self):
        keys = self.fill(300)
        cursor, first = self.r.scan(0, count=100)
        self.assertEqual(first, keys[:100])
        self.assertLess(cursor, 2 ** 63)
        self.assertEqual(self.server.stop(), 0, self.server.log())
        self.server.start()
        self.r = self.client()
        self.assertEqual(self.scan_on(cursor), keys[100:])

    def test_a_cursor_names_its_key_after_the_key_is_overwritten_or_deleted(self):
        keys = self.fill(100)
        cursor, first = self.r.scan(0, count=30)
        self.assertEqual(first, keys[:30])
        self.r.set(keys[29], "changed")  # the page's last key, written again
        self.r.delete(keys[28])
        self.assertEqual(self.scan_on(cursor), keys[30:])
        self.r.delete(keys[29])
        self.assertEqual(self.scan_on(cursor), keys[30:])

    def test_a_compaction_makes_the_scan_start_over_without_missing_a_key(self):
        keys = self.fill(200)
        cursor, first = self.r.scan(0, count=50)
        self.assertEqual(first, keys[:50])
        self.r.set(keys[0], "dead bytes for the compaction to reclaim")
        self.assertTrue(self.r.bgrewriteaof())
        deadline = time.monotonic() + TIMEOUT
        while self.r.info("persistence")["aof_rewrite_in_progress"]:
            self.assertLess(time.monotonic(), deadline, "the compaction did not end")
            time.sleep(0.02)  # compaction is running: look again (bounded)
        self.assertEqual(self.r.info("persistence")["aof_last_bgrewrite_status"], "ok")
        # The cursor's record was in a segment the compaction removed: the
        # next page starts from the first key again.
        self.assertEqual(self.scan_on(cursor), keys)

    def test_a_number_that_names_no_record_is_an_invalid_cursor(self):
        keys = self.fill(20)
        cursor, _ = self.r.scan(0, count=5)
        segment = cursor >> 31
        for bad in (12345,                          # segment 0 never exists
                    (segment + 1000) << 31,         # nor one newer than the active
                    cursor + 3,                     # inside a record, not at one
                    2 ** 63 + 1):                   # above every position
            with self.assertRaisesRegex(redis.ResponseError, "invalid cursor", msg=bad):
                self.r.scan(bad)
        self.assertEqual(self.scan_on(cursor), keys[5:])


class StatOfRecords(unittest.TestCase):
    """A data directory written by hand, with values that expire."""

    def setUp(self):
        self.server = Server(env={"COMPACTION_INTERVAL_SECS": "0"})
        self.addCleanup(stop_and_check, self, self.server)
        os.makedirs(self.server.data_dir)
        now = int(time.time() * 1000)
        with open(os.path.join(self.server.data_dir, "segment-1.dat"), "wb") as f:
            f.write(record(1, b"plain", b"twelve bytes"))
            f.write(setx_expiring(b"later", b"kept for an hour", now + 3600 * 1000))
            f.write(setx_expiring(b"gone", b"expired", now - 1000))
        self.server.start()
        self.r = redis.Redis(host="127.0.0.1", port=self.server.resp_port,
                             socket_timeout=TIMEOUT)
        self.addCleanup(self.r.close)

    def test_strlen_exists_and_type_see_what_get_sees(self):
        r = self.r
        self.assertEqual(r.strlen("plain"), 12)
        self.assertEqual(r.strlen("later"), 16)
        self.assertIsNone(r.get("gone"))
        self.assertEqual(r.strlen("gone"), 0)
        self.assertEqual(r.exists("plain", "later", "gone", "never"), 2)
        self.assertEqual(r.type("later"), b"string")
        self.assertEqual(r.type("gone"), b"none")

    def test_ttl_tells_the_expiry_a_record_holds(self):
        r = self.r
        self.assertEqual(r.ttl("plain"), -1)
        self.assertEqual(r.ttl("gone"), -2)
        self.assertEqual(r.pttl("never"), -2)
        left = r.pttl("later")
        self.assertGreater(left, 0)
        self.assertLessEqual(left, 3600 * 1000)
        self.assertGreater(r.ttl("later"), 0)
        self.assertLessEqual(r.ttl("later"), 3600)
        self.assertTrue(r.persist("later"))
        self.assertEqual(r.ttl("later"), -1)
        self.assertEqual(r.get("later"), b"kept for an hour")
        self.assertFalse(r.persist("plain"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
