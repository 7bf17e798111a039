"""End-to-end test that HEAD and a conditional GET answer from the blob's
record head and checksum (kv_stat), without reading its bytes: with the
blob's bytes damaged on disk, HEAD still gives its size and etag and a GET
whose If-None-Match names the etag still gets 304, while a plain GET, which
reads and checks the bytes, reports the damage."""

import glob
import os
import sys
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import Server, quote_key, stop_and_check  # noqa: E402

BODY = b"the bytes of a blob whose record gets damaged " * 100
KEY = "stat/damaged blob"


class StatWithoutReading(unittest.TestCase):
    def test_head_and_if_none_match_answer_without_reading_the_bytes(self):
        server = Server(env={"SYNC_MODE": "always"}).start()
        try:
            r = server.request("PUT", "/blobs/" + quote_key(KEY), BODY)
            self.assertEqual(r.status, 201)
            etag = '"%08x"' % (zlib.crc32(BODY) & 0xFFFFFFFF)
            self.assertEqual(r.headers["ETag"], etag)
            self.assertEqual(server.stop(), 0)
            # Damage one byte in the middle of the value: the record's
            # checksum no longer matches its bytes.
            segments = glob.glob(os.path.join(server.data_dir, "segment-*.dat"))
            self.assertEqual(len(segments), 1)
            with open(segments[0], "r+b") as f:
                data = f.read()
                at = data.index(BODY) + len(BODY) // 2
                f.seek(at)
                f.write(bytes([data[at] ^ 0xFF]))
            server.start()
            path = "/blobs/" + quote_key(KEY)
            head = server.request("HEAD", path)
            self.assertEqual(head.status, 200)
            self.assertEqual(head.headers["ETag"], etag)
            self.assertEqual(head.headers["Content-Length"], str(len(BODY)))
            self.assertEqual(head.body, b"")
            cond = server.request("GET", path, headers={"If-None-Match": etag})
            self.assertEqual(cond.status, 304)
            self.assertEqual(cond.headers["ETag"], etag)
            # A list that does not name it reads the bytes, and finds them
            # damaged; so does a plain GET.
            other = server.request("GET", path, headers={"If-None-Match": '"00000000"'})
            self.assertEqual(other.status, 500)
            plain = server.request("GET", path)
            self.assertEqual(plain.status, 500)
            self.assertIn("checksum", plain.json()["error"])
            missing = server.request("HEAD", "/blobs/stat/absent")
            self.assertEqual(missing.status, 404)
        finally:
            stop_and_check(self, server)


if __name__ == "__main__":
    unittest.main()
