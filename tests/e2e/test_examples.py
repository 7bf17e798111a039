"""The example programs, run the way a newcomer runs them: from any
directory, with no argument. They keep their store in the build directory
(build/examples/<name>-data) and leave nothing in the current directory.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_harness import BUILD_DIR  # noqa: E402

EXAMPLES = os.path.join(os.path.abspath(BUILD_DIR), "examples")
NAMES = ("basic_usage", "blob_usage")


class ExamplesRunFromAnywhere(unittest.TestCase):
    def test_without_arguments_an_example_stores_in_the_build_directory_only(self):
        for name in NAMES:
            with self.subTest(example=name):
                cwd = tempfile.mkdtemp(prefix="kv-example-")
                self.addCleanup(shutil.rmtree, cwd, True)
                data = os.path.join(EXAMPLES, f"{name}-data")
                shutil.rmtree(data, ignore_errors=True)
                env = {k: v for k, v in os.environ.items() if k != "KVSTORE_EXAMPLE_DIR"}
                r = subprocess.run([os.path.join(EXAMPLES, name)], cwd=cwd, env=env,
                                   capture_output=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr.decode())
                self.assertEqual(os.listdir(cwd), [], f"{name} left files where it ran")
                self.assertTrue(any(f.startswith("segment-") for f in os.listdir(data)),
                                f"{name} wrote no store in {data}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
