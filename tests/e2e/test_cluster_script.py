"""scripts/cluster.sh as a newcomer first meets it: asking for help, or
mistyping a command. Help goes to standard output with status 0, a mistake
gets the usage on standard error with status 2, and neither creates the
cluster directory. (tests/e2e/test_cluster.py runs the cluster itself.)
"""

import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLUSTER_SH = os.path.join(ROOT, "scripts", "cluster.sh")


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
        self.assertIn("vol-1  stopped", r.stdout.decode())
        self.assertEqual(os.listdir(cwd), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
