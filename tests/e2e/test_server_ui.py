"""End-to-end tests of how volume-server serves its status page (GET /ui) over
HTTP: the files built into the binary with their types, ETags and caching
headers, the policy that keeps the page on its own origin, relative URLs, and
the token: the page's files are public, /metrics is not. (The page itself is
tested in a browser: tests/browser/test_ui.mjs.)"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import ServerTestCase  # noqa: E402

ASSETS = {"/ui/app.js": "text/javascript; charset=utf-8",
          "/ui/style.css": "text/css; charset=utf-8",
          "/ui/chart.min.js": "text/javascript; charset=utf-8"}


class StatusPageFiles(ServerTestCase):
    ENV = {"VOLUME_ID": "vol-ui"}

    def test_the_page_is_html_with_caching_headers_and_a_same_origin_policy(self):
        r = self.server.request("GET", "/ui")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Type"], "text/html; charset=utf-8")
        self.assertEqual(r.headers["Cache-Control"], "no-cache")
        self.assertRegex(r.headers["ETag"], r'^"[0-9a-f]{20}"$')
        self.assertEqual(r.headers["X-Content-Type-Options"], "nosniff")
        csp = r.headers["Content-Security-Policy"]
        self.assertIn("default-src 'none'", csp)
        for directive in ("script-src", "style-src", "connect-src"):
            self.assertIn(directive + " 'self'", csp)
        self.assertTrue(r.body.startswith(b"<!doctype html>"))

    def test_every_url_of_the_page_is_relative(self):
        page = self.server.request("GET", "/ui").body.decode()
        urls = re.findall(r'(?:src|href)="([^"]*)"', page)
        self.assertIn("ui/app.js", urls)
        self.assertIn("ui/chart.min.js", urls)
        for url in urls:
            self.assertFalse(url.startswith(("/", "http:", "https:", "//")), url)
        script = self.server.request("GET", "/ui/app.js").body.decode()
        self.assertIn('fetch("metrics"', script)
        self.assertNotRegex(script, r"https?://")

    def test_its_files_come_with_their_types_and_etags(self):
        etags = set()
        for path, ctype in ASSETS.items():
            r = self.server.request("GET", path)
            self.assertEqual(r.status, 200, path)
            self.assertEqual(r.headers["Content-Type"], ctype, path)
            self.assertEqual(int(r.headers["Content-Length"]), len(r.body), path)
            self.assertGreater(len(r.body), 100, path)
            etags.add(r.headers["ETag"])
        self.assertEqual(len(etags), len(ASSETS))
        chart = self.server.request("GET", "/ui/chart.min.js").body
        self.assertIn(b"Chart.js v", chart[:200])

    def test_a_known_etag_gets_304_without_a_body(self):
        first = self.server.request("GET", "/ui/chart.min.js")
        etag = first.headers["ETag"]
        r = self.server.request("GET", "/ui/chart.min.js", headers={"If-None-Match": etag})
        self.assertEqual(r.status, 304)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers["ETag"], etag)
        r = self.server.request("GET", "/ui/chart.min.js", headers={"If-None-Match": '"other"'})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, first.body)

    def test_head_gives_the_headers_alone(self):
        r = self.server.request("HEAD", "/ui")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(int(r.headers["Content-Length"]),
                         len(self.server.request("GET", "/ui").body))

    def test_a_trailing_slash_redirects_to_the_page_relatively(self):
        r = self.server.request("GET", "/ui/")
        self.assertEqual(r.status, 308)
        self.assertEqual(r.headers["Location"], "../ui")

    def test_unknown_files_and_other_methods_are_refused(self):
        for path in ("/ui/nothing.js", "/ui/index.html", "/ui/app.js/x", "/uix", "/ui/../metrics"):
            r = self.server.request("GET", path)
            self.assertEqual(r.status, 404, path)
        r = self.server.request("POST", "/ui", b"x")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["Allow"], "GET, HEAD")


class StatusPageWithToken(ServerTestCase):
    ENV = {"VOLUME_ID": "vol-ui-auth", "AUTH_TOKEN": "page-token"}

    def test_the_page_loads_without_the_token_and_metrics_does_not(self):
        for path in ("/ui", "/ui/app.js", "/ui/style.css", "/ui/chart.min.js"):
            self.assertEqual(self.server.request("GET", path).status, 200, path)
        self.assertEqual(self.server.request("GET", "/metrics").status, 401)
        self.assertEqual(self.server.request("GET", "/metrics?format=prometheus").status, 401)
        self.assertEqual(self.server.request("GET", "/blobs").status, 401)
        r = self.server.request("GET", "/metrics",
                                headers={"Authorization": "Bearer page-token"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["volume_id"], "vol-ui-auth")

    def test_the_page_holds_no_figure_of_the_volume(self):
        page = self.server.request("GET", "/ui").body.decode()
        self.assertNotIn("vol-ui-auth", page)
        self.assertNotIn("total_keys", page)


if __name__ == "__main__":
    unittest.main()
