"""scripts/cluster.sh as a newcomer first meets it: asking for help, or
mistyping a command. Help goes to standard output with status 0, a mistake
gets the usage on standard error with status 2, and neither creates the
cluster directory. Then a small cluster (no replicas): its settings live in
CLUSTER_DIR, so a node stopped and started again without the variables of the
first start comes back where the gateway expects it, and a setting given
again with another value is an error; `status` prints one line per node.
(tests/e2e/test_cluster.py runs the whole cluster.)
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLUSTER_SH = os.path.join(ROOT, "scripts", "cluster.sh")
BUILD_DIR = os.environ.get("KV_BUILD_DIR") or os.path.join(ROOT, "build")


class ClusterScriptUsage(unittest.TestCase):
    def run_script(self, *args):
        """Runs cluster.sh in a fresh, empty directory with the default
        CLUSTER_DIR (./cluster); returns the result and that directory."""
        cwd = tempfile.mkdtemp(prefix="kv-cluster-usage-")
        self.addCleanup(shutil.rmtree, cwd, True)
        env = {k: v for k, v in os.environ.items() if k != "CLUSTER_DIR"}
        r = subprocess.run([CLUSTER_SH, *args], cwd=cwd, env=env, capture_output=True,
                           timeout=60)
        return r, cwd

    def test_help_goes_to_stdout_with_status_0_and_creates_nothing(self):
        for arg in ("help", "--help", "-h"):
            with self.subTest(arg=arg):
                r, cwd = self.run_script(arg)
                self.assertEqual(r.returncode, 0, r.stderr.decode())
                self.assertIn("scripts/cluster.sh start", r.stdout.decode())
                self.assertEqual(r.stderr.decode(), "")
                self.assertEqual(os.listdir(cwd), [])

    def test_an_unknown_command_gets_the_usage_on_stderr_with_status_2(self):
        r, cwd = self.run_script("strat")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout.decode(), "")
        self.assertIn("unknown command: strat", r.stderr.decode())
        self.assertIn("scripts/cluster.sh start", r.stderr.decode())
        self.assertEqual(os.listdir(cwd), [])

    def test_no_command_gets_the_usage_on_stderr_with_status_2(self):
        r, cwd = self.run_script()
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout.decode(), "")
        self.assertIn("scripts/cluster.sh start", r.stderr.decode())
        self.assertEqual(os.listdir(cwd), [])

    def test_status_of_a_cluster_never_started_creates_nothing(self):
        r, cwd = self.run_script("status")
        self.assertEqual(r.returncode, 3, r.stderr.decode())
        self.assertIn("no cluster in", r.stderr.decode())
        self.assertEqual(os.listdir(cwd), [])


class ClusterSettings(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kv-cluster-settings-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.base = {k: v for k, v in os.environ.items()
                     if k not in ("GATEWAY_PORT", "VOLUME_PORTS", "SYNC_MODE")}
        self.base.update({"CLUSTER_DIR": os.path.join(self.tmp, "c"),
                          "BUILD": os.path.abspath(BUILD_DIR), "START_TIMEOUT": "30"})

    def cluster(self, *args, **env):
        e = dict(self.base, **env)
        return subprocess.run([CLUSTER_SH, *args], env=e, capture_output=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    def status(self):
        r = self.cluster("status")
        lines = {}
        for line in r.stdout.decode().splitlines():
            name, role, http, resp, pid = line.split()
            lines[name] = (role, http, resp, pid)
        return r.returncode, lines

    def test_a_node_comes_back_where_the_gateway_expects_it(self):
        ports = {"GATEWAY_PORT": "0", "GATEWAY_RESP_PORT": "0", "VOLUME_PORTS": "0",
                 "VOLUME_RESP_PORTS": "0", "TWEMPROXY_PORT": "0", "TWEMPROXY_STATS_PORT": "0"}
        self.addCleanup(self.cluster, "stop")
        r = self.cluster("start", REPLICAS="0", SYNC_MODE="none", **ports)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        rc, before = self.status()
        self.assertEqual(rc, 0)
        self.assertEqual(sorted(before), ["gateway", "twemproxy", "vol-1a", "vol-2a", "vol-3a"])
        for name in ("vol-1a", "vol-2a", "vol-3a"):
            role, http, resp, pid = before[name]
            self.assertEqual(role, "primary")
            self.assertRegex(http, r"^127\.0\.0\.1:\d+$")
            self.assertRegex(resp, r"^127\.0\.0\.1:\d+$")
            self.assertRegex(pid, r"^\d+$")

        # Stopped and started again with none of the first start's variables.
        r = self.cluster("stop", "vol-2a")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        rc, lines = self.status()
        self.assertEqual((rc, lines["vol-2a"][3]), (3, "stopped"))
        r = self.cluster("start")
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        rc, after = self.status()
        self.assertEqual(rc, 0)
        self.assertEqual(after["vol-2a"][:3], before["vol-2a"][:3])
        self.assertNotEqual(after["vol-2a"][3], before["vol-2a"][3])

        # A setting given again with another value is an error, and changes nothing.
        for name, value in (("GATEWAY_PORT", "1"), ("SYNC_MODE", "always"), ("REPLICAS", "1")):
            with self.subTest(setting=name):
                r = self.cluster("stop", "vol-3a", **{name: value})
                self.assertEqual(r.returncode, 1)
                self.assertTrue(re.search(name + r"=.*created with " + name, r.stderr.decode()),
                                r.stderr.decode())
        self.assertEqual(self.status()[1], after)
        # The same values again (as the first start gave them) are fine.
        r = self.cluster("status", SYNC_MODE="none", **ports)
        self.assertEqual(r.returncode, 0, r.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
