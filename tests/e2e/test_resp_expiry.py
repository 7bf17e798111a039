#!/usr/bin/env python3
"""Expiry over volume-server's Redis protocol, driven by redis-py and
redis-cli unchanged: SET's EX, PX, EXAT, PXAT and KEEPTTL, SETEX, PSETEX,
GETEX, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with NX, XX, GT and LT, TTL,
PTTL, PERSIST, INFO keyspace's expires, and Redis's errors; each of them
inside MULTI/EXEC as well as alone, and RENAME carrying the expiry. A key
that expires is waited for as a condition with a bound, never slept on."""

import os
import subprocess
import sys
import threading
import time
import unittest

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import ServerTestCase  # noqa: E402

TIMEOUT = 60
WAIT_SECS = 30


class Expiry(ServerTestCase):
    def setUp(self):
        self.r = redis.Redis(host="127.0.0.1", port=self.server.resp_port,
                             socket_timeout=TIMEOUT)
        self.addCleanup(self.r.close)

    def wait_gone(self, key):
        deadline = time.monotonic() + WAIT_SECS
        while time.monotonic() < deadline:
            if not self.r.exists(key):
                return
            time.sleep(0.02)  # polling the condition, not waiting for it
        self.fail("%s still there after %d s" % (key, WAIT_SECS))

    def test_set_with_an_expiry_and_the_key_expires(self):
        r = self.r
        self.assertTrue(r.set("x:px", "v", px=300))
        self.assertTrue(0 < r.pttl("x:px") <= 300)
        self.assertTrue(r.set("x:kept", "v"))
        self.wait_gone("x:px")
        self.assertIsNone(r.get("x:px"))
        self.assertEqual(r.ttl("x:px"), -2)
        self.assertEqual(r.exists("x:px", "x:kept"), 1)
        self.assertNotIn(b"x:px", r.keys("x:*"))
        self.assertEqual([k for k in r.scan_iter("x:*")], [b"x:kept"])

    def test_set_options(self):
        r = self.r
        now = time.time()
        self.assertTrue(r.set("o:ex", "v", ex=100))
        self.assertTrue(98 <= r.ttl("o:ex") <= 100)
        self.assertTrue(r.set("o:exat", "v", exat=int(now) + 1000))
        self.assertTrue(990 <= r.ttl("o:exat") <= 1000)
        self.assertTrue(r.set("o:pxat", "v", pxat=int(now * 1000) + 50000))
        self.assertTrue(40000 < r.pttl("o:pxat") <= 50000)
        self.assertTrue(r.set("o:ex", "w", keepttl=True))
        self.assertTrue(98 <= r.ttl("o:ex") <= 100)
        self.assertEqual(r.get("o:ex"), b"w")
        self.assertTrue(r.set("o:ex", "x"))
        self.assertEqual(r.ttl("o:ex"), -1)
        self.assertTrue(r.set("o:past", "v", pxat=1000))
        self.assertEqual(r.exists("o:past"), 0)
        for args, error in ((("EX", "0"), "invalid expire time in 'set' command"),
                            (("PX", "-5"), "invalid expire time in 'set' command"),
                            (("EX", "ten"), "not an integer or out of range"),
                            (("EX", "10", "PX", "10"), "syntax error"),
                            (("EX", "10", "KEEPTTL"), "syntax error"),
                            (("EX",), "syntax error")):
            with self.assertRaisesRegex(redis.ResponseError, error, msg=args):
                r.execute_command("SET", "o:bad", "v", *args)
        self.assertEqual(r.exists("o:bad"), 0)

    def test_setex_and_psetex(self):
        r = self.r
        self.assertTrue(r.setex("se:a", 100, "v"))
        self.assertTrue(98 <= r.ttl("se:a") <= 100)
        self.assertTrue(r.psetex("se:b", 100000, "v"))
        self.assertTrue(90000 < r.pttl("se:b") <= 100000)
        with self.assertRaisesRegex(redis.ResponseError, "invalid expire time in 'setex'"):
            r.setex("se:c", 0, "v")
        with self.assertRaisesRegex(redis.ResponseError, "not an integer"):
            r.execute_command("PSETEX", "se:c", "soon", "v")

    def test_a_counter_and_its_expiry_in_one_transaction(self):
        """The rate limiter of every Redis tutorial: INCR and EXPIRE in a
        redis-py transaction pipeline (MULTI/EXEC)."""
        r = self.r
        for expected in (1, 2, 3):
            pipe = r.pipeline(transaction=True)
            pipe.incr("t:hits")
            pipe.expire("t:hits", 100)
            pipe.ttl("t:hits")
            self.assertEqual(pipe.execute(), [expected, True, 100])
        with r.pipeline(transaction=True) as pipe:
            pipe.setex("t:s", 1000, "v").pexpire("t:s", 500000, lt=True).pttl("t:s")
            pipe.persist("t:s").ttl("t:s").getex("t:s", ex=300).ttl("t:s")
            pipe.getrange("t:s", 0, 0).expire("t:s", -1).exists("t:s").ttl("t:s")
            pipe.psetex("t:p", 1000, "p").expire("t:none", 10, nx=True)
            got = pipe.execute()
        self.assertEqual(got[0], True)
        self.assertEqual(got[1], True)
        self.assertTrue(499000 < got[2] <= 500000, got[2])
        self.assertEqual(got[3:], [True, -1, b"v", 300, b"v", True, 0, -2, True, False])
        self.assertIn(r.ttl("t:hits"), (99, 100))
        self.assertLessEqual(r.pttl("t:p"), 1000)  # -2 once gone
        self.wait_gone("t:p")
        # An expiry the transaction set is the one a later INCR keeps.
        r.set("t:n", "1")
        with r.pipeline(transaction=True) as pipe:
            self.assertEqual(pipe.expire("t:n", 100).incr("t:n").ttl("t:n").execute(),
                             [True, 2, 100])
        self.assertIn(r.ttl("t:n"), (99, 100))

    def test_rename_carries_the_expiry(self):
        r = self.r
        r.set("rn:a", "1", ex=1000)
        self.assertTrue(r.rename("rn:a", "rn:b"))
        self.assertEqual(r.ttl("rn:b"), 1000)
        self.assertEqual(r.ttl("rn:a"), -2)
        r.set("rn:c", "2")
        self.assertTrue(r.rename("rn:c", "rn:b"))  # no expiry replaces one
        self.assertEqual(r.ttl("rn:b"), -1)
        self.assertEqual(r.get("rn:b"), b"2")
        r.set("rn:short", "3", px=2000)
        self.assertTrue(r.rename("rn:short", "rn:moved"))
        self.wait_gone("rn:moved")

    def test_an_expiry_changed_during_a_transaction_is_never_lost(self):
        """EXPIRE from one connection and RENAME back and forth from another:
        whatever the order the server gives them, the key ends with the
        last expiry set, under whichever name it has."""
        r = self.r
        r.set("race:a", "v")
        other = redis.Redis(host="127.0.0.1", port=self.server.resp_port, socket_timeout=TIMEOUT)
        self.addCleanup(other.close)
        stop = threading.Event()
        errors = []

        def renamer():
            names = ("race:a", "race:b")
            i = 0
            while not stop.is_set():
                try:
                    other.rename(names[i % 2], names[(i + 1) % 2])
                    i += 1
                except redis.ResponseError as e:
                    errors.append(e)
                    return

        t = threading.Thread(target=renamer)
        t.start()
        try:
            last = None
            for n in range(200):
                ttl = 10000 + n
                changed = r.expire("race:a", ttl) or r.expire("race:b", ttl)
                if changed:
                    last = ttl
        finally:
            stop.set()
            t.join(TIMEOUT)
        self.assertEqual(errors, [])
        self.assertIsNotNone(last)
        ttls = sorted([r.ttl("race:a"), r.ttl("race:b")])
        self.assertEqual(ttls[0], -2)  # one name only
        self.assertIn(ttls[1], (last - 1, last))

    def test_expire_family_with_flags(self):
        r = self.r
        self.assertFalse(r.expire("e:none", 10))
        r.set("e:k", "value")
        self.assertFalse(r.expire("e:k", 100, xx=True))
        self.assertFalse(r.expire("e:k", 100, gt=True))  # no expiry counts as infinite
        self.assertTrue(r.expire("e:k", 100, nx=True))
        self.assertFalse(r.expire("e:k", 200, nx=True))
        self.assertFalse(r.expire("e:k", 50, gt=True))
        self.assertTrue(r.expire("e:k", 200, gt=True))
        self.assertTrue(r.expire("e:k", 150, lt=True))
        self.assertTrue(148 <= r.ttl("e:k") <= 150)
        self.assertTrue(r.pexpire("e:k", 90000))
        self.assertTrue(88000 < r.pttl("e:k") <= 90000)
        self.assertTrue(r.expireat("e:k", int(time.time()) + 500))
        self.assertTrue(498 <= r.ttl("e:k") <= 500)
        self.assertTrue(r.pexpireat("e:k", int(time.time() * 1000) + 60000))
        self.assertTrue(58 <= r.ttl("e:k") <= 60)
        self.assertEqual(r.get("e:k"), b"value")
        self.assertTrue(r.persist("e:k"))
        self.assertFalse(r.persist("e:k"))
        self.assertEqual(r.ttl("e:k"), -1)
        self.assertTrue(r.expire("e:k", -1))  # in the past: deleted
        self.assertEqual(r.exists("e:k"), 0)
        for args, error in ((("1", "NX", "XX"), "NX and XX, GT or LT options"),
                            (("1", "GT", "LT"), "GT and LT options"),
                            (("1", "SOON"), "Unsupported option SOON"),
                            (("soon",), "not an integer")):
            with self.assertRaisesRegex(redis.ResponseError, error, msg=args):
                r.execute_command("EXPIRE", "e:k", *args)

    def test_getex(self):
        r = self.r
        r.set("g:k", "value")
        self.assertEqual(r.getex("g:k", ex=100), b"value")
        self.assertTrue(98 <= r.ttl("g:k") <= 100)
        self.assertEqual(r.getex("g:k", px=50000), b"value")
        self.assertTrue(40000 < r.pttl("g:k") <= 50000)
        self.assertEqual(r.getex("g:k", persist=True), b"value")
        self.assertEqual(r.ttl("g:k"), -1)
        self.assertEqual(r.getex("g:k", exat=int(time.time()) + 300), b"value")
        self.assertTrue(298 <= r.ttl("g:k") <= 300)
        self.assertIsNone(r.getex("g:none", ex=10))
        with self.assertRaisesRegex(redis.ResponseError, "syntax error"):
            r.execute_command("GETEX", "g:k", "EX")
        with self.assertRaisesRegex(redis.ResponseError, "syntax error"):
            r.execute_command("GETEX", "g:k", "PERSIST", "EX", "10")

    def test_info_keyspace_counts_expires(self):
        r = self.r
        r.set("i:a", "v", ex=1000)
        r.set("i:b", "v")
        db0 = r.info("keyspace")["db0"]
        self.assertGreaterEqual(db0["expires"], 1)
        self.assertGreaterEqual(db0["keys"], db0["expires"] + 1)

    def test_redis_cli(self):
        port = str(self.server.resp_port)

        def cli(*args):
            return subprocess.run(["redis-cli", "-p", port] + list(args), capture_output=True,
                                  text=True, timeout=TIMEOUT).stdout.strip()

        self.assertEqual(cli("SET", "c:k", "v", "EX", "100"), "OK")
        self.assertIn(cli("TTL", "c:k"), ("99", "100"))
        self.assertEqual(cli("EXPIRE", "c:k", "300", "GT"), "1")
        self.assertIn(cli("TTL", "c:k"), ("299", "300"))
        self.assertEqual(cli("PERSIST", "c:k"), "1")
        self.assertEqual(cli("TTL", "c:k"), "-1")
        self.assertEqual(cli("SETEX", "c:k", "0", "v"),
                         "ERR invalid expire time in 'setex' command")


if __name__ == "__main__":
    unittest.main(verbosity=2)
