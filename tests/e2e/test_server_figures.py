"""End-to-end tests of the figures /metrics gives for the status page: request
latency by kind (JSON percentiles and buckets, Prometheus histograms), each
segment's live and dead bytes, compaction's state and last result, and the
data directory's free disk, against the real binary on 127.0.0.1."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import ServerTestCase  # noqa: E402

KINDS = ("http_get", "http_put", "http_delete", "http_list", "resp_read", "resp_write")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$')


def histogram_series(text, family):
    """{kind: {"buckets": [(le, count)], "sum": s, "count": n}} of a histogram
    family in the exposition, in the order the lines come."""
    series = {}
    for line in text.split("\n"):
        m = SAMPLE.match(line)
        if not m or not m.group(1).startswith(family + "_"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        one = series.setdefault(labels["kind"], {"buckets": []})
        part = m.group(1)[len(family) + 1:]
        if part == "bucket":
            one["buckets"].append((float(labels["le"]), float(m.group(3))))
        else:
            one[part] = float(m.group(3))
    return series


class Latency(ServerTestCase):
    ENV = {"VOLUME_ID": "vol-lat"}

    def test_each_request_is_counted_under_its_kind(self):
        before = self.server.request("GET", "/metrics").json()["latency_us"]
        conn = self.server.connection()
        for i in range(7):
            self.assertEqual(self.server.request("PUT", "/blobs/lat/%d" % i, b"v" * 100,
                                                 conn=conn).status, 201)
        for i in range(5):
            self.assertEqual(self.server.request("GET", "/blobs/lat/%d" % i, conn=conn).status,
                             200)
        self.assertEqual(self.server.request("HEAD", "/blobs/lat/0", conn=conn).status, 200)
        self.assertEqual(self.server.request("GET", "/blobs/lat/absent", conn=conn).status, 404)
        for i in range(3):
            self.assertEqual(self.server.request("DELETE", "/blobs/lat/%d" % i,
                                                 conn=conn).status, 204)
        for _ in range(2):
            self.assertEqual(self.server.request("GET", "/blobs?prefix=lat/",
                                                 conn=conn).status, 200)
        self.server.request("GET", "/health", conn=conn)  # not a kind: not counted
        conn.close()
        after = self.server.request("GET", "/metrics").json()["latency_us"]
        # The requests' kinds, and the engine's wait of writes for a round.
        self.assertEqual(set(after), set(KINDS) | {"batch_wait"})
        added = {k: after[k]["count"] - before[k]["count"] for k in KINDS}
        self.assertEqual(added, {"http_get": 7, "http_put": 7, "http_delete": 3, "http_list": 2,
                                 "resp_read": 0, "resp_write": 0})

    def test_percentiles_are_ordered_and_the_buckets_add_up(self):
        for i in range(50):
            self.assertEqual(self.put("order/%d" % i, b"x" * 1000).status, 201)
            self.assertEqual(self.get("order/%d" % i).status, 200)
        doc = self.server.request("GET", "/metrics").json()["latency_us"]
        for kind in ("http_get", "http_put"):
            h = doc[kind]
            self.assertGreaterEqual(h["count"], 50, kind)
            self.assertGreater(h["p50"], 0, kind)
            self.assertLessEqual(h["p50"], h["p99"], kind)
            self.assertLessEqual(h["p99"], h["p999"], kind)
            self.assertEqual(sum(b[2] for b in h["buckets"]), h["count"], kind)
            lows = [b[0] for b in h["buckets"]]
            self.assertEqual(lows, sorted(lows), kind)
            for low, high, n in h["buckets"]:
                self.assertLess(low, high)
                self.assertGreater(n, 0)
            # The mean lies between the lowest and the highest bucket.
            mean = h["sum"] / h["count"]
            self.assertGreaterEqual(mean, h["buckets"][0][0] * 0.99, kind)
            self.assertLessEqual(mean, h["buckets"][-1][1] * 1.01, kind)
            # p99.9 lies in the highest bucket that holds a value, or below.
            self.assertLessEqual(h["p999"], h["buckets"][-1][1], kind)
        self.assertEqual(doc["resp_read"]["buckets"], [])
        self.assertEqual(doc["resp_read"]["p99"], 0)

    def test_prometheus_histograms_are_cumulative_and_agree_with_json(self):
        for i in range(20):
            self.assertEqual(self.put("prom/%d" % i, b"y" * 10).status, 201)
        text = self.server.request("GET", "/metrics?format=prometheus").body.decode()
        self.assertIn("# TYPE kvstore_request_duration_seconds histogram\n", text)
        series = histogram_series(text, "kvstore_request_duration_seconds")
        self.assertEqual(set(series), set(KINDS))
        doc = self.server.request("GET", "/metrics").json()["latency_us"]
        for kind, h in series.items():
            les = [le for le, _ in h["buckets"]]
            counts = [n for _, n in h["buckets"]]
            self.assertEqual(les[-1], float("inf"), kind)
            self.assertEqual(les, sorted(les), kind)
            self.assertEqual(counts, sorted(counts), kind + ": buckets are cumulative")
            self.assertEqual(counts[-1], h["count"], kind)
            self.assertGreaterEqual(h["sum"], 0, kind)
        put = series["http_put"]
        # The metrics request and this one came after the JSON: no puts between.
        self.assertEqual(put["count"], doc["http_put"]["count"])
        self.assertGreaterEqual(put["count"], 20)
        self.assertAlmostEqual(put["sum"] * 1e6, doc["http_put"]["sum"], delta=1.0)
        # Durations are in seconds: a loopback put takes less than a second.
        self.assertLess(put["sum"] / put["count"], 1.0)


class SegmentsAndCompaction(ServerTestCase):
    ENV = {"VOLUME_ID": "vol-seg", "SEGMENT_SIZE_MB": "1", "COMPACTION_INTERVAL_SECS": "0"}

    def test_segments_list_live_and_dead_bytes_that_add_up(self):
        value = b"s" * 50000
        for round_ in range(2):  # the second round makes the first one dead
            for i in range(30):
                self.assertEqual(self.put("seg/%d" % i, value).status, 201)
        doc = self.server.request("GET", "/metrics").json()
        segs = doc["segments"]
        self.assertEqual(len(segs), doc["total_segments"])
        self.assertGreaterEqual(len(segs), 3)
        self.assertEqual([s["id"] for s in segs], sorted(s["id"] for s in segs))
        self.assertEqual([s["active"] for s in segs], [False] * (len(segs) - 1) + [True])
        self.assertEqual(segs[-1]["id"], doc["active_segment_id"])
        for s in segs:
            self.assertEqual(s["live_bytes"] + s["dead_bytes"], s["disk_bytes"], s)
        self.assertEqual(sum(s["disk_bytes"] for s in segs), doc["total_bytes"])
        self.assertEqual(sum(s["live_bytes"] for s in segs), doc["live_bytes"])
        self.assertGreaterEqual(sum(s["dead_bytes"] for s in segs), 30 * len(value))

    def test_compaction_reports_its_last_result_and_the_disk_its_space(self):
        for i in range(20):
            self.assertEqual(self.put("cmp/%d" % i, b"c" * 20000).status, 201)
            self.assertEqual(self.put("cmp/%d" % i, b"d" * 20000).status, 201)
        before = self.server.request("GET", "/metrics").json()
        self.assertIs(before["compacting"], False)
        self.assertIs(before["last_compaction_failed"], False)
        self.assertIsNone(before["last_compaction_error"])
        r = self.server.request("POST", "/admin/compact")
        self.assertEqual(r.status, 200, r)
        doc = self.server.request("GET", "/metrics").json()
        self.assertEqual(doc["compactions"], before["compactions"] + 1)
        self.assertIs(doc["compacting"], False)
        self.assertIs(doc["last_compaction_failed"], False)
        self.assertIsNone(doc["last_compaction_error"])
        self.assertEqual(doc["last_compaction_reclaimed_bytes"], r.json()["reclaimed_bytes"])
        self.assertGreater(doc["last_compaction_reclaimed_bytes"], 20 * 20000)
        st = os.statvfs(self.server.data_dir)
        self.assertGreater(doc["disk_free_bytes"], 0)
        self.assertEqual(doc["disk_size_bytes"], st.f_blocks * st.f_frsize)
        self.assertLessEqual(doc["disk_free_bytes"], doc["disk_size_bytes"])
        text = self.server.request("GET", "/metrics?format=prometheus").body.decode()
        self.assertIn('kvstore_compacting{volume="vol-seg"} 0\n', text)
        self.assertIn('kvstore_disk_size_bytes{volume="vol-seg"} %d\n' % doc["disk_size_bytes"],
                      text)


if __name__ == "__main__":
    unittest.main()
