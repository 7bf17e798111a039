"""`make install` and `make uninstall` for real, into temporary directories.

Each test runs the project's Makefile on the build under test (BUILD from
KV_BUILD_DIR) with its own PREFIX or DESTDIR, then checks what landed there:
every file in the GNU directories, the soname links, a kvstore.pc that works
from wherever the tree is (staged below DESTDIR, or moved), a static library
that links with what `pkg-config --static` lists, and manual pages that render
cleanly and say what the programs' --help says.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import readme_sessions as rs  # noqa: E402
from server_harness import BUILD_DIR, sanitized_build  # noqa: E402

TIMEOUT = 280  # seconds for one make run (it builds whatever is not up to date)


def cache_value(name):
    with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(rf"^{name}:[A-Z]*=(.*)$", line)
            if m:
                return m.group(1)
    raise AssertionError(f"{name} is not in {BUILD_DIR}/CMakeCache.txt")


LIBDIR = cache_value("CMAKE_INSTALL_LIBDIR")
VERSION = cache_value("CMAKE_PROJECT_VERSION")
# The soname's version: MAJOR.MINOR before 1.0 (a minor release may change
# the binary interface then), MAJOR from 1.0 on.
_parts = VERSION.split(".")
MAJOR = ".".join(_parts[:2]) if _parts[0] == "0" else _parts[0]

EXPECTED = {
    "bin/kvstore", "bin/volume-server", "include/kvstore.h",
    f"{LIBDIR}/libkvstore.a", f"{LIBDIR}/libkvstore.so", f"{LIBDIR}/libkvstore.so.{MAJOR}",
    f"{LIBDIR}/libkvstore.so.{VERSION}", f"{LIBDIR}/pkgconfig/kvstore.pc",
    "share/man/man1/kvstore.1", "share/man/man8/volume-server.8",
    "share/man/man3/libkvstore.3",
}


def files_under(top):
    """Every file and symbolic link below top, relative to it."""
    found = set()
    for d, _, names in os.walk(top):
        for n in names:
            found.add(os.path.relpath(os.path.join(d, n), top))
    return found


def readme_program():
    """The C program of README.md's "Using the library"."""
    blocks = rs.code_blocks(rs.section(rs.read_readme(), "Using the library"))
    return "\n".join(next(lines for info, lines in blocks if info == "c")) + "\n"


def render(page):
    """A manual page as plain text, one long line per paragraph line."""
    r = subprocess.run(["groff", "-man", "-Tascii", "-rLL=250n", "-P-cbou", page],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def flat(text):
    return " ".join(text.split())


class InstallTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kv-install-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.env = rs.build_env(BUILD_DIR, os.path.join(self.tmp, "home"))

    def make(self, *args):
        r = subprocess.run(["make", *args], cwd=rs.ROOT, env=self.env, capture_output=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, f"make {' '.join(args)} exited with {r.returncode}:\n"
                         f"{r.stdout.decode()[-3000:]}\n{r.stderr.decode()[-3000:]}")
        return r.stdout.decode()

    def sh(self, command, cwd, env=None):
        r = subprocess.run(["bash", "-c", command], cwd=cwd, env=env or self.env,
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, f"$ {command}\nexited with {r.returncode}:\n"
                         f"{r.stdout.decode()}\n{r.stderr.decode()}")
        return r.stdout.decode()

    def needs_plain_compiler_build(self):
        if sanitized_build():
            self.skipTest("a sanitizer build's library needs the sanitizer runtime to link")

    def write_program(self):
        work = os.path.join(self.tmp, "work")
        os.makedirs(work, exist_ok=True)
        with open(os.path.join(work, "hello.c"), "w") as f:
            f.write(readme_program())
        return work


class MakeInstall(InstallTestCase):
    def test_install_under_a_prefix_puts_every_file_and_uninstall_removes_them(self):
        prefix = os.path.join(self.tmp, "prefix")
        self.make("install", f"PREFIX={prefix}")
        self.assertEqual(files_under(prefix), EXPECTED)

        lib = os.path.join(prefix, LIBDIR)
        self.assertEqual(os.readlink(os.path.join(lib, "libkvstore.so")), f"libkvstore.so.{MAJOR}")
        self.assertEqual(os.readlink(os.path.join(lib, f"libkvstore.so.{MAJOR}")),
                         f"libkvstore.so.{VERSION}")
        soname = self.sh(f"readelf -d {shlex.quote(os.path.join(lib, 'libkvstore.so'))}", self.tmp)
        self.assertIn(f"Library soname: [libkvstore.so.{MAJOR}]", soname)
        for program in ("kvstore", "volume-server"):
            out = self.sh(f"{shlex.quote(os.path.join(prefix, 'bin', program))} --version", self.tmp)
            self.assertIn(VERSION, out)

        out = self.make("uninstall", f"PREFIX={prefix}")
        self.assertIn(f"removed {len(EXPECTED)} files", out)
        self.assertEqual(files_under(prefix), set())

    def test_destdir_stages_the_tree_and_kvstore_pc_works_there_and_after_a_move(self):
        self.needs_plain_compiler_build()
        stage = os.path.join(self.tmp, "stage")
        self.make("install", f"DESTDIR={stage}", "PREFIX=/usr")
        self.assertEqual(files_under(stage), {"usr/" + f for f in EXPECTED})

        # The staged tree, then the same tree moved elsewhere: pkg-config's
        # directories follow the file, and the program builds and runs.
        moved = os.path.join(self.tmp, "moved")
        work = self.write_program()
        for top in (os.path.join(stage, "usr"), moved):
            if top == moved:
                shutil.move(os.path.join(stage, "usr"), moved)
            env = dict(self.env, PKG_CONFIG_PATH=os.path.join(top, LIBDIR, "pkgconfig"))
            flags = self.sh("pkg-config --cflags --libs kvstore", work, env).split()
            include = next(f[2:] for f in flags if f.startswith("-I"))
            libdir = next(f[2:] for f in flags if f.startswith("-L"))
            self.assertEqual(os.path.realpath(include), os.path.join(top, "include"))
            self.assertEqual(os.path.realpath(libdir), os.path.join(top, LIBDIR))
            self.sh("cc -o hello hello.c $(pkg-config --cflags --libs kvstore)", work, env)
            out = self.sh("./hello", work, dict(env, LD_LIBRARY_PATH=libdir))
            self.assertEqual(out, "Alice\n")

    def test_the_static_library_links_with_what_pkg_config_static_lists(self):
        self.needs_plain_compiler_build()
        prefix = os.path.join(self.tmp, "prefix")
        self.make("install", f"PREFIX={prefix}")
        lib = os.path.join(prefix, LIBDIR)
        for name in os.listdir(lib):  # leave the linker only libkvstore.a
            if name.startswith("libkvstore.so"):
                os.unlink(os.path.join(lib, name))
        env = dict(self.env, PKG_CONFIG_PATH=os.path.join(lib, "pkgconfig"))
        libs = self.sh("pkg-config --static --libs kvstore", self.tmp, env).split()
        for private in ("-lz", "-lisal", "-lxxhash", "-lpthread"):
            self.assertIn(private, libs)

        work = self.write_program()
        self.sh("cc -o hello hello.c $(pkg-config --static --cflags --libs kvstore)", work, env)
        self.assertNotIn("libkvstore", self.sh("readelf -d hello", work))
        self.assertEqual(self.sh("./hello", work), "Alice\n")

    def test_the_readme_program_compiles_without_warnings(self):
        self.needs_plain_compiler_build()
        work = self.write_program()
        include = os.path.join(rs.ROOT, "include")
        self.sh(f"cc -std=c11 -Wall -Wextra -Wpedantic -Werror -I{shlex.quote(include)} "
                "-c hello.c -o hello.o", work)


class ManualPages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kv-install-man-")
        env = rs.build_env(BUILD_DIR, cls.dir)
        r = subprocess.run(["make", "install", f"PREFIX={cls.dir}/prefix"], cwd=rs.ROOT,
                           env=env, capture_output=True, timeout=TIMEOUT)
        if r.returncode != 0:
            shutil.rmtree(cls.dir, True)
            raise AssertionError(f"make install: {r.stdout.decode()[-3000:]}{r.stderr.decode()}")
        cls.man = os.path.join(cls.dir, "prefix", "share", "man")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def page(self, name):
        section = name.rsplit(".", 1)[1]
        return os.path.join(self.man, f"man{section}", name)

    def help_of(self, program):
        return subprocess.run([os.path.join(BUILD_DIR, program), "--help"], capture_output=True,
                              check=True, timeout=30).stdout.decode()

    def test_every_page_renders_without_a_warning(self):
        for name in ("kvstore.1", "volume-server.8", "libkvstore.3"):
            r = subprocess.run(["groff", "-man", "-Tascii", "-ww", "-z", self.page(name)],
                               capture_output=True, timeout=60)
            self.assertEqual((r.returncode, r.stderr.decode()), (0, ""), name)
            self.assertIn(f"mini-kvstore {VERSION}", render(self.page(name)), name)

    def test_volume_server_8_lists_every_setting_of_its_help_with_the_default(self):
        text = flat(render(self.page("volume-server.8")))
        help_text = self.help_of("volume-server")
        settings = re.findall(r"^  ([A-Z][A-Z0-9_]*) +(--[a-z0-9-]+) +default (.*)\n((?: {6,}.*\n)+)",
                              help_text, re.M)
        self.assertGreater(len(settings), 10, help_text)
        for var, flag, default, desc in settings:
            desc = flat(desc)
            entry = f"{flag} value, {var}=value {desc}"
            self.assertIn(entry, text, f"volume-server(8) lacks {var} as --help gives it")
            if "(default: " not in desc:  # a default in words: --help's figure is this machine's
                self.assertRegex(text, re.escape(entry) + r"\.? Default: " + re.escape(default) +
                                 r"\.", f"volume-server(8): the default of {var}")
        for flag in re.findall(r"^  (--[a-z-]+)  ", help_text, re.M):
            self.assertIn(flag, text)

    def test_kvstore_1_describes_every_command_of_its_help(self):
        text = render(self.page("kvstore.1"))
        commands_section = text.split("\nCOMMANDS\n", 1)[1].split("\nQUOTING\n", 1)[0]
        help_commands = self.help_of("kvstore").split("\nCommands:\n", 1)[1]
        names = re.findall(r"^  ([a-z]+)\b", help_commands, re.M)
        self.assertGreater(len(names), 10, help_commands)
        for name in names:
            self.assertRegex(commands_section, rf"(?m)^ +(\S+, )*{name}\b",
                             f"kvstore(1) does not describe the command {name}")

    def test_libkvstore_3_names_every_function_of_the_installed_header(self):
        text = render(self.page("libkvstore.3"))
        with open(os.path.join(self.dir, "prefix", "include", "kvstore.h")) as f:
            functions = re.findall(r"^KV_API [^(]*?\b(kv_[a-z_]+)\(", f.read(), re.M)
        self.assertGreater(len(functions), 15)
        for name in functions:
            self.assertIn(name, text, f"libkvstore(3) does not name {name}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
