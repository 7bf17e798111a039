"""End-to-end test of GET /blobs paging: 10,000 keys, pages of 100, through
?limit= and ?after= with the X-Next-After header."""

import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import ServerTestCase, quote_key  # noqa: E402

N_KEYS = 10000
WRITERS = 8


class Paging(ServerTestCase):
    # Durability is not what is tested here: sync mode none makes the
    # 10,000 inserts quick.
    ENV = {"SYNC_MODE": "none"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Keys whose byte order differs from insertion order and from
        # numeric order, some with characters that need encoding.
        cls.keys = ["page/%05d/%s" % ((i * 7919) % N_KEYS, "é" if i % 3 == 0 else "a b")
                    for i in range(N_KEYS)]
        errors = []

        def writer(part):
            c = cls.server.connection()
            try:
                for key in cls.keys[part::WRITERS]:
                    r = cls.server.request("PUT", "/blobs/" + quote_key(key), b"v", conn=c)
                    if r.status != 201:
                        errors.append((key, r.status))
            finally:
                c.close()

        threads = [threading.Thread(target=writer, args=(p,)) for p in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:5]

    def test_pages_of_100_cover_every_key_once_in_order(self):
        expected = sorted(self.keys, key=lambda k: k.encode("utf-8"))
        seen = []
        after = None
        pages = 0
        c = self.server.connection()
        try:
            while True:
                query = "?prefix=page/&limit=100"
                if after is not None:
                    query += "&after=" + after
                r = self.server.request("GET", "/blobs" + query, conn=c)
                self.assertEqual(r.status, 200)
                page = r.json()
                pages += 1
                seen.extend(page)
                after = r.headers["X-Next-After"]
                if after is None:
                    break
                self.assertEqual(len(page), 100)
                self.assertLessEqual(pages, N_KEYS // 100, "paging does not end")
        finally:
            c.close()
        self.assertEqual(pages, N_KEYS // 100)
        self.assertEqual(len(seen), N_KEYS)
        self.assertEqual(seen, expected)

    def test_limit_is_capped_at_1000(self):
        r = self.server.request("GET", "/blobs?limit=5000")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.json()), 1000)
        self.assertIsNotNone(r.headers["X-Next-After"])

    def test_without_limit_every_key_comes_back(self):
        r = self.server.request("GET", "/blobs?prefix=page/")
        self.assertEqual(len(r.json()), N_KEYS)
        self.assertIsNone(r.headers["X-Next-After"])


if __name__ == "__main__":
    unittest.main()
