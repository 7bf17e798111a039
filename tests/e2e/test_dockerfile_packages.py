#!/usr/bin/env python3
"""The Dockerfile installs what the build and the programs need.

The image is built only by `make test-docker`; this test keeps its package
lists in step with the build on every `make test`:
- the build stage installs the Debian package of every pkg-config module
  that a CMakeLists.txt requires;
- the run stage installs the package of every shared library that the built
  volume-server and kvstore name directly (DT_NEEDED), except libc's and the
  sanitizers' own.

Run by ctest with KV_BUILD_DIR set to the build directory.
"""
import os
import re
import shutil
import subprocess
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("KV_BUILD_DIR") or os.path.join(ROOT, "build")
PROGRAMS = ("volume-server", "kvstore")
# In every Debian image; the sanitizers' runtimes are only in test builds.
BASE = {"libc6", "libgcc-s1"}
SANITIZER = re.compile(r"lib(asan|ubsan|tsan|lsan)\.so")


def read(path):
    with open(path) as f:
        return f.read()


def stages():
    """The packages each FROM stage of the Dockerfile installs, in order."""
    text = read(os.path.join(ROOT, "Dockerfile")).replace("\\\n", " ")
    found = []
    for stage in re.split(r"^FROM ", text, flags=re.M)[1:]:
        packages = set()
        for m in re.finditer(r"apt-get install ([^&\n]*)", stage):
            packages.update(w for w in m.group(1).split() if not w.startswith("-"))
        found.append(packages)
    return found


def owner(path):
    """The Debian package that holds path (usr-merged or not)."""
    candidates = [path]
    if path.startswith("/usr/"):
        candidates.append(path[len("/usr"):])
    else:
        candidates.append("/usr" + path)
    for p in candidates:
        out = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.split(":", 1)[0].strip()
    raise AssertionError("no Debian package holds %s" % path)


def required_modules():
    modules = set()
    for top in ("CMakeLists.txt", "src", "cmd"):
        base = os.path.join(ROOT, top)
        files = [base] if os.path.isfile(base) else [
            os.path.join(d, f) for d, _, fs in os.walk(base) for f in fs if f == "CMakeLists.txt"]
        for f in files:
            for m in re.finditer(r"pkg_check_modules\(([^)]*)\)", read(f)):
                words = m.group(1).split()
                if "REQUIRED" in words:
                    modules.add(words[-1])
    return modules


class DockerfilePackages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("dpkg"):
            raise unittest.SkipTest("dpkg is not available: not a Debian machine")
        found = stages()
        cls.build, cls.run_stage = found[0], found[-1]

    def test_build_stage_has_every_required_module(self):
        modules = required_modules()
        self.assertIn("libmicrohttpd", modules)  # the scan found the CMake files
        for module in sorted(modules):
            pc = subprocess.run(["pkg-config", "--path", module], capture_output=True,
                                text=True, check=True).stdout.strip()
            self.assertIn(owner(os.path.realpath(pc)), self.build,
                          "the Dockerfile's build stage lacks the package of %s (%s)" %
                          (module, pc))

    def test_run_stage_has_every_needed_library(self):
        for program in PROGRAMS:
            path = os.path.join(BUILD_DIR, program)
            self.assertTrue(os.access(path, os.X_OK), "%s is not built" % path)
            dynamic = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                                     check=True).stdout
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
            resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(
                ["ldd", path], capture_output=True, text=True, check=True).stdout, re.M))
            self.assertTrue(needed)
            for lib in needed:
                if SANITIZER.match(lib) or lib not in resolved:
                    continue  # a sanitizer runtime, or the dynamic loader itself
                where = os.path.realpath(resolved[lib])
                if where.startswith(ROOT + os.sep):
                    continue  # the project's own library, built beside the program
                package = owner(where)
                if package.split(":")[0] in BASE:
                    continue
                self.assertIn(package, self.run_stage,
                              "the Dockerfile's run stage lacks %s (%s, needed by %s)" %
                              (package, lib, program))


if __name__ == "__main__":
    unittest.main(verbosity=1)
