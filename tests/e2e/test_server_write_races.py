"""End-to-end tests of volume-server's conditional writes under races: many
concurrent PUTs and DELETEs of one key with If-None-Match: * or If-Match,
each on its own keep-alive connection, released together, round after round.
The engine decides each precondition atomically with its write, in log
order, so exactly one of each race wins (201 or 204) and every other gets
412, whatever rounds of group commit they share; the blob then holds the
winner's body, also after a restart. And the writes that wait for their
fdatasync together are counted in /metrics."""

import http.client
import os
import sys
import threading
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import ServerTestCase, quote_key  # noqa: E402

CLIENTS = 48
ROUNDS = 5


def etag_of(data):
    return '"%08x"' % zlib.crc32(data)


class Racers:
    """CLIENTS threads with a connection each; run(attempt) releases them
    together and returns each one's (status, body)."""

    def __init__(self, server):
        self.server = server
        self.conns = [server.connection(timeout=60) for _ in range(CLIENTS)]

    def close(self):
        for c in self.conns:
            c.close()

    def run(self, attempt):
        barrier = threading.Barrier(CLIENTS)
        results = [None] * CLIENTS
        errors = []

        def one(i):
            try:
                barrier.wait()
                method, path, body, headers = attempt(i)
                c = self.conns[i]
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                results[i] = (r.status, r.read())
            except (OSError, http.client.HTTPException, threading.BrokenBarrierError) as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise AssertionError("clients failed: %s" % errors[:3])
        return results


class ConditionalWriteRaces(ServerTestCase):
    ENV = {"SYNC_MODE": "always", "COMPACTION_INTERVAL_SECS": "0"}

    def setUp(self):
        self.racers = Racers(self.server)

    def tearDown(self):
        self.racers.close()

    def path(self, key):
        return "/blobs/" + quote_key(key)

    def winner(self, results, win_status):
        wins = [i for i, (status, _) in enumerate(results) if status == win_status]
        statuses = sorted(status for status, _ in results)
        self.assertEqual(statuses.count(412), CLIENTS - 1, statuses)
        self.assertEqual(len(wins), 1, statuses)
        return wins[0]

    def test_of_concurrent_creates_exactly_one_wins_and_is_stored(self):
        for rnd in range(ROUNDS):
            key = "race/create-%d" % rnd
            body = [b"create-%d-by-%d" % (rnd, i) for i in range(CLIENTS)]
            results = self.racers.run(
                lambda i, key=key, body=body: ("PUT", self.path(key), body[i],
                                               {"If-None-Match": "*"}))
            w = self.winner(results, 201)
            self.assertEqual(self.get(key).body, body[w])

    def test_of_concurrent_compare_and_swaps_exactly_one_wins_each_round(self):
        key = "race/cas"
        current = b"start"
        self.assertEqual(self.put(key, current).status, 201)
        for rnd in range(ROUNDS):
            tag = etag_of(current)
            body = [b"cas-%d-by-%d" % (rnd, i) for i in range(CLIENTS)]
            results = self.racers.run(
                lambda i, tag=tag, body=body: ("PUT", self.path(key), body[i], {"If-Match": tag}))
            w = self.winner(results, 201)
            current = body[w]
            self.assertEqual(self.get(key).body, current)

    def test_compare_and_swap_with_a_list_of_etags_has_one_winner(self):
        # A list of etags is no single engine condition: each write is pinned
        # to the state it was checked against, and retried if that changed.
        key = "race/cas-list"
        current = b"list-start"
        self.assertEqual(self.put(key, current).status, 201)
        for rnd in range(ROUNDS):
            tags = '"00000000", %s' % etag_of(current)
            body = [b"list-%d-by-%d" % (rnd, i) for i in range(CLIENTS)]
            results = self.racers.run(
                lambda i, tags=tags, body=body: ("PUT", self.path(key), body[i],
                                                 {"If-Match": tags}))
            w = self.winner(results, 201)
            current = body[w]
            self.assertEqual(self.get(key).body, current)

    def test_of_concurrent_conditional_deletes_exactly_one_wins(self):
        for rnd in range(ROUNDS):
            key = "race/delete-%d" % rnd
            data = b"doomed-%d" % rnd
            self.assertEqual(self.put(key, data).status, 201)
            tag = etag_of(data)
            results = self.racers.run(
                lambda i, key=key, tag=tag: ("DELETE", self.path(key), None, {"If-Match": tag}))
            self.winner(results, 204)
            self.assertEqual(self.get(key).status, 404)

    def test_creates_and_unconditional_writes_of_other_keys_share_rounds(self):
        # Half the clients race to create one key, the other half write keys
        # of their own: every unconditional write succeeds, one create wins.
        key = "race/mixed"
        half = CLIENTS // 2

        def attempt(i):
            if i < half:
                return ("PUT", self.path(key), b"m%d" % i, {"If-None-Match": "*"})
            return ("PUT", self.path("race/own-%d" % i), b"own", {})

        results = self.racers.run(attempt)
        creates = sorted(status for status, _ in results[:half])
        self.assertEqual(creates, [201] + [412] * (half - 1))
        self.assertEqual([status for status, _ in results[half:]], [201] * (CLIENTS - half))

    def test_the_outcome_survives_a_restart(self):
        key = "race/restart"
        body = [b"restart-by-%d" % i for i in range(CLIENTS)]
        results = self.racers.run(
            lambda i: ("PUT", self.path(key), body[i], {"If-None-Match": "*"}))
        w = self.winner(results, 201)
        self.racers.close()
        self.assertEqual(self.server.stop(), 0)
        self.server.start()
        self.racers = Racers(self.server)
        self.assertEqual(self.get(key).body, body[w])

    def test_metrics_count_writes_per_fdatasync_and_the_wait_for_a_round(self):
        self.racers.run(lambda i: ("PUT", self.path("race/metrics-%d" % i), b"x", {}))
        m = self.server.request("GET", "/metrics").json()
        # The shape of the request latencies (what the status page reads):
        # count, sum, percentiles, and the buckets that hold values as
        # [low, high, count], their counts adding up to count.
        for name, h in (("writes_per_fsync", m["writes_per_fsync"]),
                        ("latency_us.batch_wait", m["latency_us"]["batch_wait"])):
            self.assertGreater(h["count"], 0, name)
            self.assertEqual(sum(n for _, _, n in h["buckets"]), h["count"], name)
            for low, high, n in h["buckets"]:
                self.assertLess(low, high, name)
                self.assertGreater(n, 0, name)
            self.assertLessEqual(h["p50"], h["p99"], name)
        # In this sync mode every round that wrote synced once; the writes
        # those fdatasyncs covered are among the batches completed.
        per_sync = m["writes_per_fsync"]
        self.assertEqual(per_sync["count"], m["write_rounds"])
        self.assertGreaterEqual(per_sync["sum"], CLIENTS)
        self.assertLessEqual(per_sync["sum"], m["write_batches"])
        self.assertGreaterEqual(per_sync["p50"], 1)
        self.assertEqual(m["http_writes_in_flight"], 0)
        text = self.server.request("GET", "/metrics?format=prometheus").body.decode()
        self.assertIn('kvstore_writes_per_fsync_bucket{volume="vol-1",le="+Inf"} %d'
                      % per_sync["count"], text)
        self.assertIn("# TYPE kvstore_write_batch_wait_seconds histogram", text)

if __name__ == "__main__":
    unittest.main(verbosity=1)
