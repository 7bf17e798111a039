"""End-to-end tests of volume-server's HTTP API (DESIGN.md section 5): every
endpoint, every status code, JSON bodies field by field, keys, sizes,
ranges and preconditions, against the real binary on 127.0.0.1."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import Response, ServerTestCase, quote_key  # noqa: E402

LIMIT = 1024 * 1024  # MAX_REQUEST_SIZE_MB=1


def etag_of(data):
    return "%08x" % zlib.crc32(data)


class HealthAndMetrics(ServerTestCase):
    ENV = {"VOLUME_ID": "vol-test", "MAX_REQUEST_SIZE_MB": "1"}

    def test_health_reports_every_field_with_its_type(self):
        for path in ("/", "/health"):
            r = self.server.request("GET", path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.headers["Content-Type"], "application/json")
            doc = r.json()
            self.assertEqual(doc["status"], "healthy")
            self.assertEqual(doc["volume_id"], "vol-test")
            for field in ("keys", "segments", "uptime_secs"):
                self.assertIsInstance(doc[field], int, field)
                self.assertGreaterEqual(doc[field], 0, field)
            self.assertIsInstance(doc["total_mb"], float)
            self.assertEqual(set(doc), {"status", "volume_id", "keys", "segments",
                                        "total_mb", "uptime_secs", "role"})
            self.assertEqual(doc["role"], "primary")

    def test_head_health_has_headers_and_no_body(self):
        r = self.server.request("HEAD", "/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertGreater(int(r.headers["Content-Length"]), 0)

    def test_metrics_json_has_the_original_fields_and_counts_keys(self):
        before = self.server.request("GET", "/metrics").json()
        for i in range(3):
            self.assertEqual(self.put("metrics/k%d" % i, b"x" * 100).status, 201)
        doc = self.server.request("GET", "/metrics").json()
        for field in ("total_keys", "total_segments", "total_bytes", "active_segment_id",
                      "oldest_segment_id", "uptime_secs", "live_bytes", "dead_bytes",
                      "fsyncs", "puts", "http_requests", "http_responses_2xx"):
            self.assertIsInstance(doc[field], int, field)
        self.assertIsInstance(doc["total_mb"], float)
        self.assertIsInstance(doc["avg_value_size_bytes"], float)
        self.assertEqual(doc["volume_id"], "vol-test")
        self.assertEqual(doc["sync_mode"], "always")
        self.assertIs(doc["read_only"], False)
        self.assertIsInstance(doc["snapshot_loaded"], bool)
        self.assertEqual(doc["total_keys"], before["total_keys"] + 3)
        self.assertGreaterEqual(doc["puts"], before["puts"] + 3)
        self.assertGreater(doc["total_bytes"], before["total_bytes"])
        self.assertGreater(doc["avg_value_size_bytes"], 0.0)
        self.assertLessEqual(doc["oldest_segment_id"], doc["active_segment_id"])

    def parse_prometheus(self, text):
        """Parses the text exposition format line by line; returns
        {(name, labels): value} and checks that every sample has a TYPE."""
        samples = {}
        types = {}
        sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
        label_re = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"$')
        for line in text.split("\n"):
            if line == "":
                continue
            if line.startswith("# HELP "):
                self.assertEqual(len(line.split(" ", 3)), 4, line)
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                self.assertIn(kind, ("counter", "gauge", "histogram"), line)
                types[name] = kind
                continue
            self.assertFalse(line.startswith("#"), line)
            m = sample_re.match(line)
            self.assertIsNotNone(m, "not a sample line: %r" % line)
            name, labels = m.group(1), m.group(3) or ""
            for pair in labels.split(","):
                self.assertRegex(pair, label_re)
            family = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                    family = name[:-len(suffix)]
            self.assertIn(family, types, "sample without TYPE: " + line)
            if family != name and name.endswith("_bucket"):
                self.assertRegex(labels, r'(^|,)le="[^"]+"$', line)
            samples[(name, labels)] = float(m.group(4))
        return samples, types

    def test_prometheus_format_parses_and_agrees_with_json(self):
        self.assertEqual(self.put("prom/a", b"abc").status, 201)
        for headers, path in (({}, "/metrics?format=prometheus"),
                              ({"Accept": "text/plain"}, "/metrics")):
            r = self.server.request("GET", path, headers=headers)
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith("text/plain"))
            samples, types = self.parse_prometheus(r.body.decode("utf-8"))
            keys = samples[("kvstore_keys", 'volume="vol-test"')]
            doc = self.server.request("GET", "/metrics").json()
            self.assertEqual(keys, doc["total_keys"])
            self.assertEqual(types["kvstore_puts_total"], "counter")
            self.assertEqual(types["kvstore_keys"], "gauge")
            self.assertIn(("kvstore_http_responses_total", 'volume="vol-test",code="2xx"'),
                          samples)
            self.assertGreater(samples[("kvstore_http_responses_total",
                                        'volume="vol-test",code="2xx"')], 0)

    def test_accept_json_keeps_json(self):
        r = self.server.request("GET", "/metrics",
                                headers={"Accept": "application/json, text/plain"})
        self.assertEqual(r.headers["Content-Type"], "application/json")
        self.assertIn("total_keys", r.json())

    def test_admin_compact_and_snapshot(self):
        self.assertEqual(self.put("admin/a", b"1").status, 201)
        self.assertEqual(self.put("admin/a", b"2").status, 201)
        r = self.server.request("POST", "/admin/compact")
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(doc["status"], "compacted")
        self.assertEqual(doc["volume_id"], "vol-test")
        for field in ("keys", "segments_before", "segments_after", "total_bytes",
                      "reclaimed_bytes", "duration_ms"):
            self.assertIsInstance(doc[field], int, field)
        self.assertEqual(self.get("admin/a").body, b"2")
        r = self.server.request("POST", "/admin/snapshot")
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(doc["status"], "saved")
        self.assertIsInstance(doc["keys"], int)
        self.assertTrue(os.path.exists(os.path.join(self.server.data_dir, "index.snapshot")))

    def test_unknown_path_is_404_json(self):
        for path in ("/nope", "/blobsx", "/health/", "/admin", "/admin/other"):
            r = self.server.request("GET", path)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.json(), {"error": "Not found"})

    def test_wrong_method_is_405_with_allow(self):
        cases = [("PATCH", "/blobs/x", "GET, HEAD, PUT, POST, DELETE"),
                 ("OPTIONS", "/blobs/x", "GET, HEAD, PUT, POST, DELETE"),
                 ("DELETE", "/health", "GET, HEAD"),
                 ("POST", "/", "GET, HEAD"),
                 ("PUT", "/metrics", "GET, HEAD"),
                 ("POST", "/blobs", "GET, HEAD"),
                 ("GET", "/admin/compact", "POST"),
                 ("DELETE", "/admin/snapshot", "POST")]
        for method, path, allow in cases:
            r = self.server.request(method, path)
            self.assertEqual(r.status, 405, (method, path))
            self.assertEqual(r.headers["Allow"], allow, (method, path))
            self.assertIn("error", r.json())


class Blobs(ServerTestCase):
    ENV = {"MAX_REQUEST_SIZE_MB": "1"}

    def check_created(self, r, key, data):
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers["Content-Type"], "application/json")
        doc = r.json()
        self.assertEqual(doc, {"key": key, "etag": etag_of(data), "size": len(data),
                               "volume_id": "vol-1"})
        self.assertEqual(r.headers["ETag"], '"%s"' % etag_of(data))

    def test_post_then_get_returns_the_bytes(self):
        data = b"Hello, World!"
        r = self.server.request("POST", "/blobs/user:123", data)
        self.check_created(r, "user:123", data)
        r = self.get("user:123")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers["Content-Type"], "application/octet-stream")
        self.assertEqual(r.headers["ETag"], '"%s"' % etag_of(data))
        self.assertEqual(r.headers["Content-Length"], str(len(data)))

    def test_put_overwrites(self):
        self.check_created(self.put("put/k", b"first"), "put/k", b"first")
        self.check_created(self.put("put/k", b"second"), "put/k", b"second")
        self.assertEqual(self.get("put/k").body, b"second")

    def test_sizes_zero_one_and_around_the_limit(self):
        for name, size in (("zero", 0), ("one", 1), ("under", LIMIT - 1),
                           ("exactly", LIMIT)):
            data = os.urandom(size)
            self.check_created(self.put("size/" + name, data), "size/" + name, data)
            r = self.get("size/" + name)
            self.assertEqual(r.status, 200, name)
            self.assertEqual(r.body, data, name)
            self.assertEqual(r.headers["ETag"], '"%s"' % etag_of(data))

    def test_one_byte_over_the_limit_is_413_and_nothing_is_stored(self):
        # The server answers and closes as soon as it has the headers, so
        # the client's sending of the body may fail: the answer is read anyway.
        r = self.server.upload("PUT", "/blobs/size/over", b"x" * (LIMIT + 1))
        self.assertEqual(r.status, 413)
        self.assertIn("error", r.json())
        self.assertEqual(self.get("size/over").status, 404)

    def test_413_comes_before_the_body_is_sent(self):
        # Only the headers are sent: the answer must not wait for the body.
        out = self.server.raw(b"PUT /blobs/size/early HTTP/1.1\r\nHost: t\r\n"
                              b"Content-Length: %d\r\n\r\n" % (100 * LIMIT))
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out)
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        self.assertIn("limit", body["error"])

    def test_chunked_body_over_the_limit_is_413(self):
        c = self.server.connection()
        c.putrequest("PUT", "/blobs/size/chunked")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        chunk = b"y" * 65536
        sent = 0
        try:
            while sent <= LIMIT:
                c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.getresponse()
        self.assertEqual(r.status, 413)
        self.assertIn("error", json.loads(r.read()))
        c.close()
        self.assertEqual(self.get("size/chunked").status, 404)

    def test_chunked_body_under_the_limit_is_stored(self):
        c = self.server.connection()
        c.putrequest("PUT", "/blobs/size/chunked-ok")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        data = b""
        for i in range(20):
            piece = bytes([i]) * 30000
            data += piece
            c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        c.send(b"0\r\n\r\n")
        r = c.getresponse()
        self.check_created(Response(r.status, r.headers, r.read()), "size/chunked-ok", data)
        c.close()
        self.assertEqual(self.get("size/chunked-ok").body, data)

    def test_expect_100_continue(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        try:
            s.sendall(b"PUT /blobs/expect/ok HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 100 Continue"))
            s.sendall(b"hello")
            self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 201 Created"))
        finally:
            s.close()
        self.assertEqual(self.get("expect/ok").body, b"hello")
        out = self.server.raw(b"PUT /blobs/expect/big HTTP/1.1\r\nHost: t\r\n"
                              b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (LIMIT + 1))
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out)

    def test_get_missing_is_404_blob_not_found(self):
        r = self.get("missing/key")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json(), {"error": "Blob not found"})
        r = self.get("missing/key", method="HEAD")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, b"")

    def test_head_gives_headers_only(self):
        data = b"0123456789" * 10
        self.put("head/k", data)
        r = self.get("head/k", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers["Content-Length"], str(len(data)))
        self.assertEqual(r.headers["ETag"], '"%s"' % etag_of(data))
        self.assertEqual(r.headers["Content-Type"], "application/octet-stream")

    def test_delete_is_204_also_for_absent_keys(self):
        self.put("del/k", b"v")
        r = self.server.request("DELETE", "/blobs/del/k")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.body, b"")
        self.assertEqual(self.get("del/k").status, 404)
        self.assertEqual(self.server.request("DELETE", "/blobs/del/k").status, 204)
        self.assertEqual(self.server.request("DELETE", "/blobs/del/never").status, 204)

    def test_keys_with_slashes_spaces_quotes_and_letters(self):
        keys = ["dir/sub/file.txt", "with space", 'say "hi"', "back\\slash",
                "日本語/ключ/é", "emoji 😀", "tab\there", "new\nline", "100%", "a+b",
                "q?x=1&y", "#hash", "/leading", "trailing/", "a//b"]
        for key in keys:
            data = key.encode("utf-8") * 3
            self.check_created(self.put("keys/" + key, data), "keys/" + key, data)
            r = self.get("keys/" + key)
            self.assertEqual(r.status, 200, key)
            self.assertEqual(r.body, data, key)
        r = self.server.request("GET", "/blobs?prefix=keys/")
        self.assertEqual(r.json(), sorted(("keys/" + k for k in keys),
                                          key=lambda k: k.encode("utf-8")))

    def test_percent_2f_is_the_same_key_as_a_slash(self):
        self.check_created(self.server.request("PUT", "/blobs/slash/a%2Fb", b"v"),
                           "slash/a/b", b"v")
        self.assertEqual(self.server.request("GET", "/blobs/slash/a/b").body, b"v")
        self.assertEqual(self.server.request("GET", "/blobs/slash%2Fa%2fb").body, b"v")

    def test_invalid_keys_are_400(self):
        cases = ["/blobs/", "/blobs/%FF", "/blobs/bad%C0%AF", "/blobs/%ED%A0%80",
                 "/blobs/%F4%90%80%80", "/blobs/%zz", "/blobs/abc%4",
                 "/blobs/" + "k" * 1025, "/blobs/" + "%C3%A9" * 513]
        for path in cases:
            for method in ("PUT", "GET", "DELETE", "HEAD"):
                r = self.server.request(method, path, b"v" if method == "PUT" else None)
                self.assertEqual(r.status, 400, (method, path[:40]))
                if method != "HEAD":
                    self.assertIn("Invalid key", r.json()["error"])

    def test_key_of_1024_bytes_is_accepted(self):
        key = "k" * 1024
        self.check_created(self.put(key, b"v"), key, b"v")
        key = "é" * 512  # 1024 bytes of UTF-8
        self.check_created(self.put(key, b"w"), key, b"w")
        self.assertEqual(self.get(key).body, b"w")

    def test_keys_in_json_are_escaped(self):
        key = 'json/"quoted"\\ \x00\x01\x08\t\n\x0c\r\x1f\x7f ü'
        r = self.put(key, b"v")
        self.assertEqual(r.json()["key"], key)
        listed = self.server.request("GET", "/blobs?prefix=" + quote_key("json/")).json()
        self.assertEqual(listed, [key])


class BodyMemoryBudget(ServerTestCase):
    ENV = {"MAX_REQUEST_SIZE_MB": "1", "MAX_BODY_MEMORY_MB": "1"}

    def wait_body_bytes(self, n):
        """Requests on other connections are seen by the server on its own
        schedule: poll its gauge (bounded)."""
        deadline = time.monotonic() + 10
        while self.server.request("GET", "/metrics").json()["http_body_bytes"] != n:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)

    def test_uploads_beyond_the_budget_get_503_until_memory_returns(self):
        # One upload in progress holds the whole budget...
        first = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        first.sendall(b"PUT /blobs/budget/first HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Length: %d\r\n\r\n" % LIMIT + b"a" * 1000)
        try:
            self.wait_body_bytes(LIMIT)
            # ...so another is refused before its body is read, with a hint.
            r = self.server.upload("PUT", "/blobs/budget/second", b"b" * 1000)
            self.assertEqual(r.status, 503)
            self.assertEqual(r.headers["Retry-After"], "1")
            self.assertIn("MAX_BODY_MEMORY_MB", r.json()["error"])
            # Requests without a body are not affected.
            self.assertEqual(self.server.request("GET", "/health").status, 200)
            first.sendall(b"a" * (LIMIT - 1000))
            self.assertTrue(first.recv(4096).startswith(b"HTTP/1.1 201 Created"))
        finally:
            first.close()
        # The memory is back once the first request is over.
        self.wait_body_bytes(0)
        r = self.server.upload("PUT", "/blobs/budget/second", b"b" * 1000)
        self.assertEqual(r.status, 201)
        self.wait_body_bytes(0)


    def test_a_chunked_upload_that_outgrows_the_budget_gets_503(self):
        first = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        first.sendall(b"PUT /blobs/budget/holder HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Length: 600000\r\n\r\nxyz")
        try:
            self.wait_body_bytes(600000)
            c = self.server.connection()
            c.putrequest("PUT", "/blobs/budget/chunked")
            c.putheader("Transfer-Encoding", "chunked")
            c.endheaders()
            chunk = b"c" * 50000
            try:
                for i in range(8):  # 400,000 bytes: the buffer must grow to 512 KiB
                    c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = c.getresponse()
            self.assertEqual(r.status, 503)
            self.assertEqual(r.headers["Retry-After"], "1")
            self.assertIn("error", json.loads(r.read()))
            c.close()
        finally:
            first.close()
        self.assertEqual(self.get("budget/chunked").status, 404)
        self.wait_body_bytes(0)


class Ranges(ServerTestCase):
    DATA = b"0123456789"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server.request("PUT", "/blobs/r/ten", cls.DATA)
        cls.server.request("PUT", "/blobs/r/empty", b"")

    def range(self, key, value, extra=None):
        headers = {"Range": value}
        headers.update(extra or {})
        return self.server.request("GET", "/blobs/" + key, headers=headers)

    def check_partial(self, value, first, last):
        r = self.range("r/ten", value)
        self.assertEqual(r.status, 206, value)
        self.assertEqual(r.body, self.DATA[first:last + 1], value)
        self.assertEqual(r.headers["Content-Range"], "bytes %d-%d/10" % (first, last))
        self.assertEqual(r.headers["ETag"], '"%s"' % etag_of(self.DATA))

    def test_satisfiable_ranges_are_206(self):
        self.check_partial("bytes=0-0", 0, 0)
        self.check_partial("bytes=-5", 5, 9)
        self.check_partial("bytes=5-", 5, 9)
        self.check_partial("bytes=3-100", 3, 9)
        self.check_partial("bytes=-100", 0, 9)
        self.check_partial("bytes=9-9", 9, 9)
        self.check_partial("bytes=0-9", 0, 9)

    def test_unsatisfiable_ranges_are_416(self):
        for value in ("bytes=10-", "bytes=10-20", "bytes=100-200", "bytes=-0"):
            r = self.range("r/ten", value)
            self.assertEqual(r.status, 416, value)
            self.assertEqual(r.headers["Content-Range"], "bytes */10")
            self.assertIn("error", r.json())

    def test_ranges_on_an_empty_blob_are_416(self):
        for value in ("bytes=0-0", "bytes=-5", "bytes=0-"):
            r = self.range("r/empty", value)
            self.assertEqual(r.status, 416, value)
            self.assertEqual(r.headers["Content-Range"], "bytes */0")
        r = self.server.request("GET", "/blobs/r/empty")
        self.assertEqual((r.status, r.body), (200, b""))

    def test_unusable_range_headers_are_ignored(self):
        for value in ("bytes=5-3", "bytes=0-1,3-4", "items=0-1", "bytes=x-y", "bytes=",
                      "bytes=-", "garbage"):
            r = self.range("r/ten", value)
            self.assertEqual(r.status, 200, value)
            self.assertEqual(r.body, self.DATA, value)

    def test_if_range(self):
        tag = '"%s"' % etag_of(self.DATA)
        r = self.range("r/ten", "bytes=0-1", {"If-Range": tag})
        self.assertEqual((r.status, r.body), (206, b"01"))
        r = self.range("r/ten", "bytes=0-1", {"If-Range": '"00000000"'})
        self.assertEqual((r.status, r.body), (200, self.DATA))

    def test_head_ignores_range(self):
        r = self.server.request("HEAD", "/blobs/r/ten", headers={"Range": "bytes=0-0"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Length"], "10")


class Preconditions(ServerTestCase):

    def test_if_none_match_on_get_is_304(self):
        data = b"cached"
        self.put("c/get", data)
        tag = '"%s"' % etag_of(data)
        for value in (tag, "W/" + tag, '"00000000", ' + tag, "*", etag_of(data)):
            r = self.get("c/get", {"If-None-Match": value})
            self.assertEqual(r.status, 304, value)
            self.assertEqual(r.body, b"")
            self.assertEqual(r.headers["ETag"], tag)
        r = self.get("c/get", {"If-None-Match": '"00000000"'})
        self.assertEqual((r.status, r.body), (200, data))

    def test_if_none_match_star_creates_only(self):
        r = self.put("c/create", b"one", {"If-None-Match": "*"})
        self.assertEqual(r.status, 201)
        r = self.put("c/create", b"two", {"If-None-Match": "*"})
        self.assertEqual(r.status, 412)
        self.assertEqual(r.json(), {"error": "Precondition failed"})
        self.assertEqual(self.get("c/create").body, b"one")

    def test_if_match_compares_and_swaps(self):
        self.put("c/cas", b"v1")
        old = '"%s"' % etag_of(b"v1")
        r = self.put("c/cas", b"v2", {"If-Match": old})
        self.assertEqual(r.status, 201)
        self.assertEqual(r.json()["etag"], etag_of(b"v2"))
        r = self.put("c/cas", b"v3", {"If-Match": old})
        self.assertEqual(r.status, 412)
        self.assertEqual(self.get("c/cas").body, b"v2")
        r = self.put("c/cas", b"v3", {"If-Match": '"00000000", "%s"' % etag_of(b"v2")})
        self.assertEqual(r.status, 201)
        r = self.put("c/cas", b"v4", {"If-Match": "*"})
        self.assertEqual(r.status, 201)

    def test_if_none_match_with_a_tag_on_write(self):
        self.put("c/inm", b"same")
        tag = '"%s"' % etag_of(b"same")
        self.assertEqual(self.put("c/inm", b"next", {"If-None-Match": tag}).status, 412)
        self.assertEqual(self.put("c/inm", b"next", {"If-None-Match": '"00000000"'}).status,
                         201)
        self.assertEqual(self.get("c/inm").body, b"next")

    def test_if_match_weak_tag_never_matches(self):
        self.put("c/weak", b"w")
        r = self.put("c/weak", b"x", {"If-Match": 'W/"%s"' % etag_of(b"w")})
        self.assertEqual(r.status, 412)

    def test_if_match_on_absent_key_is_412(self):
        for value in ("*", '"%s"' % etag_of(b"")):
            r = self.put("c/absent", b"v", {"If-Match": value})
            self.assertEqual(r.status, 412, value)
            r = self.server.request("DELETE", "/blobs/c/absent", headers={"If-Match": value})
            self.assertEqual(r.status, 412, value)
        self.assertEqual(self.get("c/absent").status, 404)

    def test_delete_with_if_match(self):
        self.put("c/del", b"d")
        r = self.server.request("DELETE", "/blobs/c/del", headers={"If-Match": '"00000000"'})
        self.assertEqual(r.status, 412)
        self.assertEqual(self.get("c/del").status, 200)
        r = self.server.request("DELETE", "/blobs/c/del",
                                headers={"If-Match": '"%s"' % etag_of(b"d")})
        self.assertEqual(r.status, 204)
        self.assertEqual(self.get("c/del").status, 404)

    def test_malformed_precondition_is_400(self):
        for header in ("If-Match", "If-None-Match"):
            for value in ('"unterminated', '"a" junk', ",", ""):
                r = self.put("c/malformed", b"v", {header: value})
                self.assertEqual(r.status, 400, (header, value))

    def test_concurrent_create_only_has_one_winner(self):
        self.assert_one_winner(lambda i: self.put("c/race-create", b"%d" % i,
                                                  {"If-None-Match": "*"}))

    def test_concurrent_compare_and_swap_has_one_winner(self):
        self.put("c/race-cas", b"start")
        tag = '"%s"' % etag_of(b"start")
        self.assert_one_winner(lambda i: self.put("c/race-cas", b"w%d" % i,
                                                  {"If-Match": tag}))

    def assert_one_winner(self, attempt):
        n = 16
        barrier = threading.Barrier(n)
        results = [None] * n

        def run(i):
            barrier.wait()
            results[i] = attempt(i).status

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), [201] + [412] * (n - 1), results)


class Listing(ServerTestCase):
    ENV = {"SYNC_MODE": "none"}
    KEYS = ["list/a", "list/b/1", "list/b/2", "list/c", "list/z z", "list/é"]  # byte order

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for key in cls.KEYS:
            cls.server.request("PUT", "/blobs/" + quote_key(key), b"v")

    def list(self, query):
        return self.server.request("GET", "/blobs" + query)

    def test_all_keys_sorted(self):
        r = self.list("")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Type"], "application/json")
        keys = r.json()
        self.assertEqual(keys, sorted(keys, key=lambda k: k.encode("utf-8")))
        for key in self.KEYS:
            self.assertIn(key, keys)
        self.assertIsNone(r.headers["X-Next-After"])

    def test_prefix(self):
        self.assertEqual(self.list("?prefix=list/b/").json(), ["list/b/1", "list/b/2"])
        self.assertEqual(self.list("?prefix=nothing").json(), [])
        self.assertEqual(self.list("?prefix=" + quote_key("list/z z")).json(), ["list/z z"])
        self.assertEqual(self.list("?prefix=list/z+z").json(), ["list/z z"])

    def test_limit_and_after_page_through(self):
        r = self.list("?prefix=list/&limit=4")
        self.assertEqual(r.json(), self.KEYS[:4])
        after = r.headers["X-Next-After"]
        self.assertEqual(after, "list%2Fc")
        r = self.list("?prefix=list/&limit=4&after=" + after)
        self.assertEqual(r.json(), self.KEYS[4:])
        self.assertIsNone(r.headers["X-Next-After"])

    def test_exact_page_has_no_next(self):
        r = self.list("?prefix=list/&limit=%d" % len(self.KEYS))
        self.assertEqual(r.json(), self.KEYS)
        self.assertIsNone(r.headers["X-Next-After"])

    def test_bad_limits_are_400(self):
        for value in ("0", "-1", "abc", "", "1e3", "99999999999999999999999"):
            r = self.list("?limit=" + value)
            self.assertEqual(r.status, 400, value)
            self.assertIn("limit", r.json()["error"])

    def test_malformed_query_is_400(self):
        self.assertEqual(self.list("?prefix=%zz").status, 400)


class Compression(ServerTestCase):
    """COMPRESSION=zstd: blobs come back byte for byte, with the etag of their
    original bytes, before and after a compaction that trains a dictionary;
    the directory then holds zstd frames (as kvstore dump shows) and the
    dictionary file."""
    ENV = {"COMPRESSION": "zstd", "SYNC_MODE": "none"}

    @staticmethod
    def doc(i):
        return json.dumps({"id": i, "name": "user-%d" % i, "email": "user%d@example.com" % i,
                           "active": i % 2 == 0, "roles": ["reader", "writer"][: 1 + i % 2],
                           "address": {"city": ["Lisbon", "Oslo", "Lima"][i % 3],
                                       "zip": "%05d" % (i * 37 % 100000)}}).encode()

    def check_all(self, docs):
        for key, data in docs.items():
            r = self.get(key)
            self.assertEqual(r.status, 200, key)
            self.assertEqual(r.body, data, key)
            self.assertEqual(r.headers["ETag"], '"%s"' % etag_of(data), key)
            r = self.get(key, headers={"If-None-Match": '"%s"' % etag_of(data)})
            self.assertEqual(r.status, 304, key)

    def test_blobs_round_trip_compressed_through_a_compaction(self):
        docs = {"json/%04d" % i: self.doc(i) for i in range(1500)}
        docs["noise"] = os.urandom(3000)
        for key, data in list(docs.items()) + list(docs.items())[:100]:  # some dead bytes
            r = self.put(key, data)
            self.assertEqual(r.status, 201, key)
            self.assertEqual(r.json()["etag"], etag_of(data))
        self.check_all(docs)
        self.assertEqual(self.server.request("POST", "/admin/compact").status, 200)
        self.check_all(docs)
        names = os.listdir(self.server.data_dir)
        self.assertIn("dict-1.zdict", names)
        dump = subprocess.run([os.path.join(os.environ["KV_BUILD_DIR"], "kvstore"),
                               "--data-dir", self.server.data_dir, "dump"],
                              capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(dump.returncode, 0, dump.stderr)
        lines = dump.stdout.decode().splitlines()
        framed = [line for line in lines if " setx " in line and "zstd" in line]
        self.assertGreaterEqual(len(framed), 1500)
        self.assertTrue(all("dict=1" in line for line in framed))
        self.assertTrue(any('"noise"' in line and " set " in line for line in lines))


class Auth(ServerTestCase):
    ENV = {"AUTH_TOKEN": "s3cret-token"}
    GOOD = {"Authorization": "Bearer s3cret-token"}

    def test_health_is_open(self):
        self.assertEqual(self.server.request("GET", "/health").status, 200)
        self.assertEqual(self.server.request("GET", "/").status, 200)

    def test_everything_else_needs_the_token(self):
        cases = [("GET", "/metrics"), ("GET", "/blobs"), ("PUT", "/blobs/a"),
                 ("POST", "/blobs/a"), ("GET", "/blobs/a"), ("HEAD", "/blobs/a"),
                 ("DELETE", "/blobs/a"), ("POST", "/admin/compact"),
                 ("POST", "/admin/snapshot")]
        bad_headers = [{}, {"Authorization": "Bearer wrong"},
                       {"Authorization": "Bearer s3cret-toke"},
                       {"Authorization": "Bearer s3cret-token2"},
                       {"Authorization": "Basic czNjcmV0LXRva2Vu"},
                       {"Authorization": "s3cret-token"}]
        for method, path in cases:
            for headers in bad_headers:
                r = self.server.request(method, path, b"x" if method in ("PUT", "POST")
                                        else None, headers)
                self.assertEqual(r.status, 401, (method, path, headers))
                self.assertTrue(r.headers["WWW-Authenticate"].startswith("Bearer"))
                if method != "HEAD":
                    self.assertIn("error", r.json())

    def test_the_token_opens_every_endpoint(self):
        r = self.server.request("PUT", "/blobs/auth/a", b"x", self.GOOD)
        self.assertEqual(r.status, 201)
        self.assertEqual(self.server.request("GET", "/blobs/auth/a", None, self.GOOD).body, b"x")
        lower = {"Authorization": "bearer   s3cret-token"}
        self.assertEqual(self.server.request("GET", "/metrics", None, lower).status, 200)
        self.assertEqual(self.server.request("GET", "/blobs", None, self.GOOD).json(),
                         ["auth/a"])
        self.assertEqual(self.server.request("POST", "/admin/snapshot", None,
                                             self.GOOD).status, 200)
        self.assertEqual(self.server.request("DELETE", "/blobs/auth/a", None,
                                             self.GOOD).status, 204)

    def test_big_unauthorized_upload_is_refused_before_the_body(self):
        out = self.server.raw(b"PUT /blobs/auth/big HTTP/1.1\r\nHost: t\r\n"
                              b"Content-Length: 50000000\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 401 "), out)


class KeepAlive(ServerTestCase):

    def test_many_requests_share_one_connection(self):
        c = self.server.connection()
        try:
            for i in range(50):
                r = self.server.request("PUT", "/blobs/ka/%d" % i, b"v%d" % i, conn=c)
                self.assertEqual(r.status, 201)
                r = self.server.request("GET", "/blobs/ka/%d" % i, conn=c)
                self.assertEqual(r.body, b"v%d" % i)
                r = self.server.request("GET", "/blobs/ka/missing", conn=c)
                self.assertEqual(r.status, 404)
            sock = c.sock
            self.server.request("GET", "/health", conn=c)
            self.assertIs(c.sock, sock, "the connection was not kept alive")
        finally:
            c.close()

    def test_http_1_0_and_absolute_form(self):
        out = self.server.raw(b"GET /health HTTP/1.0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.0 200") or out.startswith(b"HTTP/1.1 200"), out)
        out = self.server.raw(b"GET http://127.0.0.1/health HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
        self.assertIn(b" 200 ", out.split(b"\r\n")[0])


if __name__ == "__main__":
    unittest.main()
