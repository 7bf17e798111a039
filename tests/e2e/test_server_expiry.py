"""End-to-end tests of expiry over HTTP: PUT /blobs/KEY?ttl=SECONDS stores a
blob that expires; GET and HEAD send Expires (an IMF-fixdate) for it; once
it has expired it is 404 for GET and HEAD and absent from listings; a ttl
that is not a whole number of seconds is refused with 400. Expiry is waited
for as a condition with a bound, never slept on."""

import email.utils
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import ServerTestCase  # noqa: E402

WAIT_SECS = 30


def expires_of(response):
    """The Expires header as seconds since the epoch."""
    return email.utils.parsedate_to_datetime(response.headers["Expires"]).timestamp()


class Expiry(ServerTestCase):
    def wait_until_gone(self, path):
        deadline = time.monotonic() + WAIT_SECS
        while time.monotonic() < deadline:
            if self.server.request("HEAD", path).status == 404:
                return
            time.sleep(0.05)  # polling the condition, not waiting for it
        self.fail("%s still there after %d s" % (path, WAIT_SECS))

    def test_put_with_ttl_expires_and_is_gone_everywhere(self):
        before = time.time()
        r = self.server.request("PUT", "/blobs/gone/short?ttl=1", b"fleeting")
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.server.request("PUT", "/blobs/gone/kept", b"stays").status, 201)
        got = self.server.request("GET", "/blobs/gone/short")
        self.assertEqual(got.status, 200)
        self.assertEqual(got.body, b"fleeting")
        # The second by which it is gone: within the ttl of the put.
        self.assertGreaterEqual(expires_of(got), int(before))
        self.assertLessEqual(expires_of(got), time.time() + 1)
        head = self.server.request("HEAD", "/blobs/gone/short")
        self.assertEqual(head.headers["Expires"], got.headers["Expires"])
        self.assertNotIn("Expires", self.server.request("GET", "/blobs/gone/kept").headers)
        self.wait_until_gone("/blobs/gone/short")
        self.assertEqual(self.server.request("GET", "/blobs/gone/short").status, 404)
        listing = self.server.request("GET", "/blobs?prefix=gone/").json()
        self.assertEqual(listing, ["gone/kept"])
        paged = self.server.request("GET", "/blobs?prefix=gone/&limit=1").json()
        self.assertEqual(paged, ["gone/kept"])

    def test_a_put_without_ttl_clears_the_expiry(self):
        path = "/blobs/exp/renewed"
        self.assertEqual(self.server.request("PUT", path + "?ttl=1000", b"one").status, 201)
        self.assertIn("Expires", self.server.request("HEAD", path).headers)
        self.assertEqual(self.server.request("PUT", path, b"two").status, 201)
        self.assertNotIn("Expires", self.server.request("HEAD", path).headers)

    def test_long_ttl_is_in_expires(self):
        path = "/blobs/exp/long"
        before = time.time()
        self.assertEqual(self.server.request("PUT", path + "?ttl=86400", b"x").status, 201)
        at = expires_of(self.server.request("HEAD", path))
        self.assertGreaterEqual(at, int(before) + 86400)
        self.assertLessEqual(at, time.time() + 86400)

    def test_bad_ttl_is_refused_with_400(self):
        for ttl in ("0", "-5", "1.5", "abc", "", "99999999999"):
            r = self.server.request("PUT", "/blobs/exp/bad?ttl=" + ttl, b"x")
            self.assertEqual(r.status, 400, ttl)
            self.assertIn("Invalid ttl", r.json()["error"])
        self.assertEqual(self.server.request("HEAD", "/blobs/exp/bad").status, 404)


if __name__ == "__main__":
    unittest.main()
