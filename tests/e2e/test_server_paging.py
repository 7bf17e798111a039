"""End-to-end test of GET /blobs: 10,000 keys, pages of 100 through ?limit=
and ?after= with the X-Next-After header, ranges with ?start= and ?end=, the
whole listing streamed without ?limit= (also while keys are written), and
the limits a request is refused for."""

import http.client
import json
import os
import sys
import threading
import unittest
import urllib.parse

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

    def sorted_keys(self):
        return sorted(self.keys, key=lambda k: k.encode("utf-8"))

    def list(self, query, conn=None):
        r = self.server.request("GET", "/blobs" + query, conn=conn)
        self.assertEqual(r.status, 200, r.body[:200])
        return r.json(), r.headers["X-Next-After"]

    def test_a_limit_above_1000_is_refused_with_the_reason(self):
        for limit in ("1001", "5000"):
            r = self.server.request("GET", "/blobs?limit=" + limit)
            self.assertEqual(r.status, 400)
            self.assertIn("1 to 1000 keys", r.json()["error"])

    def test_a_limit_of_zero_or_not_a_number_is_refused_with_the_reason(self):
        for limit in ("0", "ten", "-1", ""):
            r = self.server.request("GET", "/blobs?limit=" + limit)
            self.assertEqual(r.status, 400, limit)
            self.assertEqual(
                r.json()["error"],
                "Invalid limit: a page holds 1 to 1000 keys; page on with the after= that "
                "X-Next-After gives, or leave limit out for every key")

    def test_start_and_end_bound_the_listing_and_its_pages(self):
        expected = self.sorted_keys()
        start, end = expected[1234], expected[2345]
        want = expected[1234:2345]  # start is in, end is out
        q = "?start=%s&end=%s" % (urllib.parse.quote(start), urllib.parse.quote(end))
        keys, after = self.list(q)
        self.assertEqual(keys, want)
        self.assertIsNone(after)
        # The same range a page at a time: the last page has no X-Next-After,
        # though keys follow the end.
        seen, after = [], None
        while True:
            page_q = q + "&limit=250"
            if after is not None:
                page_q = "?end=%s&limit=250&after=%s" % (urllib.parse.quote(end), after)
            page, after = self.list(page_q)
            seen.extend(page)
            if after is None:
                break
        self.assertEqual(seen, want)
        # A start that is no key: from the next key on.
        keys, _ = self.list("?start=%s&limit=3" % urllib.parse.quote(start + "\u0000"))
        self.assertEqual(keys, expected[1235:1238])
        # With a prefix: its keys in the range only.
        keys, _ = self.list("?prefix=page/0&start=page/00500&end=page/00510")
        self.assertEqual(keys, [k for k in expected
                                if k.startswith("page/0") and "page/00500" <= k < "page/00510"])

    def test_start_and_after_together_are_refused(self):
        r = self.server.request("GET", "/blobs?start=a&after=b")
        self.assertEqual(r.status, 400)
        self.assertIn("not both", r.json()["error"])

    def test_without_limit_every_key_comes_back_streamed_in_order(self):
        r = self.server.request("GET", "/blobs?prefix=page/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Transfer-Encoding"], "chunked")
        self.assertEqual(r.json(), self.sorted_keys())
        self.assertIsNone(r.headers["X-Next-After"])
        r = self.server.request("GET", "/blobs?prefix=nothing/")
        self.assertEqual(r.json(), [])

    def test_a_streamed_listing_read_while_keys_change_has_every_lasting_key_once(self):
        # Keys of the class stay throughout; others come and go meanwhile.
        stop = threading.Event()
        errors = []
        touched = set()

        def churn():
            c = self.server.connection()
            i = 0
            try:
                while not stop.is_set():
                    key = "page/%05d/churn" % (i * 37 % N_KEYS)
                    touched.add(key)
                    method = "PUT" if i % 2 == 0 else "DELETE"
                    r = self.server.request(method, "/blobs/" + quote_key(key), b"c", conn=c)
                    if r.status not in (201, 204):
                        errors.append(r.status)
                    i += 1
            finally:
                c.close()

        t = threading.Thread(target=churn)
        t.start()
        try:
            # Read the body slowly, so that pages are taken while keys change.
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
            conn.request("GET", "/blobs?prefix=page/")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            body = b""
            while True:
                piece = resp.read(8192)
                if not piece:
                    break
                body += piece
            conn.close()
        finally:
            stop.set()
            t.join()
            for key in touched:  # the other tests expect the class's keys only
                self.server.request("DELETE", "/blobs/" + quote_key(key))
        self.assertEqual(errors, [])
        keys = json.loads(body.decode("utf-8"))
        self.assertEqual(keys, sorted(keys, key=lambda k: k.encode("utf-8")))
        self.assertEqual(len(keys), len(set(keys)))
        lasting = set(self.keys)
        self.assertEqual([k for k in keys if k in lasting], self.sorted_keys())
        self.assertTrue(all(k in lasting or k.endswith("/churn") for k in keys))


if __name__ == "__main__":
    unittest.main()
