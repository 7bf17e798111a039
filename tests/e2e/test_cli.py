"""End-to-end tests of the kvstore CLI without a terminal: scripts on a pipe,
one-shot commands and their exit statuses, the lock held by another process,
verify and dump on clean and damaged directories, binary values and quoting.

Run by ctest with KV_BUILD_DIR set to the build directory.
"""

import os
import re
import struct
import subprocess
import time
import unittest
import zlib

from cli_support import KVSTORE, TIMEOUT, CliTestCase, read_until

STATS_HEAD = re.compile(
    rb"Store Statistics:\n"
    rb"  Keys: (\d+)\n"
    rb"  Segments: \d+\n"
    rb"  Total size: \d+\.\d\d MB\n"
    rb"  Active segment: \d+\n"
    rb"  Oldest segment: \d+\n")


class ScriptedSession(CliTestCase):
    """Commands on a pipe: no banner, no prompt, the original's replies."""

    def test_replies_are_the_originals_line_by_line(self):
        r = self.script("set name Alice\n"
                        "get name\n"
                        "list\n"
                        "compact\n"
                        "delete name\n"
                        "get name\n"
                        "quit\n")
        self.assertEqual(r.stdout.decode().splitlines(), [
            "OK", "Alice", "  name", "Compaction finished", "Deleted", "Key not found"])
        self.assertEqual(r.stderr, b"")
        self.assertStatus(r, 1)  # get of a missing key is the worst that happened

    def test_stats_block_starts_with_the_originals_lines(self):
        r = self.script("set a 1\nset b 2\nstats\n")
        self.assertStatus(r, 0)
        m = STATS_HEAD.search(r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(m.group(1), b"2")
        self.assertTrue(r.stdout.startswith(b"OK\nOK\nStore Statistics:\n"), r.stdout)
        for extra in (b"Index memory:", b"Bloom filter:", b"Checksum errors: 0",
                      b"Compactions:", b"Disk bytes:"):
            self.assertIn(extra, r.stdout)

    def test_stats_of_a_small_store_says_its_index_memory_is_reserved_not_per_key(self):
        r = self.script("set a 1\nset b 2\nstats\n")
        self.assertStatus(r, 0)
        line = re.search(rb"\n  Index memory: .*\n", r.stdout).group(0)
        # Two keys: the figure is the first allocation, said so, and no
        # per-key cost is derived from it.
        self.assertRegex(line, rb"^\n  Index memory: \d+ bytes reserved "
                               rb"\(allocated ahead of the keys, in steps\)\n$")
        self.assertNotIn(b"per key", line)

    def test_no_banner_and_no_prompt_when_stdin_is_not_a_terminal(self):
        r = self.script("set a 1\n")
        self.assertEqual(r.stdout, b"OK\n")
        self.assertNotIn(b"mini-kvstore", r.stdout + r.stderr)

    def test_value_is_the_rest_of_the_line_with_inner_spaces_kept(self):
        r = self.script("set greeting   hello   big  world  \nget greeting\n")
        self.assertEqual(r.stdout, b"OK\nhello   big  world\n")
        self.assertStatus(r, 0)

    def test_list_is_sorted_and_indented_by_two_spaces(self):
        r = self.script("set pear 1\nset apple 2\nset fig 3\nlist\n")
        self.assertEqual(r.stdout, b"OK\nOK\nOK\n  apple\n  fig\n  pear\n")

    def test_list_of_an_empty_store_prints_nothing(self):
        self.assertStatus(self.script("set k v\ndelete k\n"), 0)
        r = self.script("list\n")
        self.assertEqual(r.stdout, b"")
        self.assertStatus(r, 0)

    def test_scan_exists_and_count(self):
        r = self.script("set user:1 a\nset user:2 b\nset other c\n"
                        "scan user:\ncount\ncount user:\nexists user:1\nexists nope\n")
        self.assertEqual(r.stdout.decode().splitlines()[3:], [
            "  user:1", "  user:2", "3", "2", "true", "false"])
        self.assertStatus(r, 1)  # exists -> false

    def test_range_prints_the_keys_from_start_up_to_end(self):
        r = self.script("set b 1\nset a 2\nset d 3\nset c 4\nset \"c d\" 5\n"
                        "range b\nrange b d\nrange bb c\nrange x\n")
        self.assertEqual(r.stdout.decode().splitlines()[5:], [
            "  b", "  c", "  c d", "  d",  # from b on
            "  b", "  c", "  c d",        # up to d, not included
            # bb up to c: nothing; x on: nothing
        ])
        self.assertStatus(r, 0)

    def test_set_with_ttl_expires_and_ttl_tells_the_seconds_left(self):
        r = self.script('set --ttl 100 "a key" a value\nttl "a key"\nget "a key"\n'
                        "set plain v\nttl plain\nttl ghost\n")
        self.assertEqual(r.stdout.decode().splitlines(), [
            "OK", "100", "a value", "OK", "no expiry", "Key not found"])
        self.assertStatus(r, 1)  # ttl ghost
        # One-shot, and a key that expires: absent for every command.
        self.assertStatus(self.kv("set", "--ttl", "1", "brief", "gone", "soon"), 0)
        self.assertEqual(self.kv("get", "brief").stdout, b"gone soon")
        deadline = time.monotonic() + 30
        while self.kv("exists", "brief").returncode == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the condition, not waiting for it
        gone = self.script("exists brief\nget brief\nttl brief\nscan br\ncount\n")
        self.assertEqual(gone.stdout.decode().splitlines(), [
            "false", "Key not found", "Key not found", "2"])

    def test_a_bad_ttl_is_a_usage_error(self):
        for ttl in ("0", "-1", "1.5", "x", "99999999999"):
            r = self.kv("set", "--ttl", ttl, "k", "v")
            self.assertStatus(r, 2)
            self.assertIn("--ttl takes a whole number of seconds", r.stderr.decode())
        r = self.script("set --ttl\n")
        self.assertIn("usage: set <key> <value>", r.stderr.decode())
        self.assertStatus(self.kv("get", "k"), 3)  # nothing was created

    def test_range_takes_one_or_two_keys(self):
        r = self.script("range\nrange a b c\n")
        self.assertEqual(r.stdout, b"")
        self.assertEqual(r.stderr.decode().count("usage: range <start> [end]"), 2)

    def test_delete_of_a_missing_key_says_key_not_found(self):
        r = self.script("delete ghost\n")
        self.assertEqual(r.stdout, b"Key not found\n")
        self.assertStatus(r, 1)

    def test_unknown_commands_and_wrong_arity_print_usage_and_go_on(self):
        r = self.script("frobnicate\nget\nget a b\nset onlykey\nlist extra\nset a 1\nget a\n")
        self.assertEqual(r.stdout, b"OK\n1\n")
        err = r.stderr.decode().splitlines()
        self.assertEqual(err, [
            "kvstore: line 1: unknown command 'frobnicate' (type help for the list)",
            "kvstore: line 2: usage: get <key>",
            "kvstore: line 3: usage: get <key>",
            "kvstore: line 4: usage: set <key> <value>",
            "kvstore: line 5: usage: list",
        ])
        self.assertStatus(r, 2)

    def test_a_failed_command_does_not_stop_the_script_and_the_worst_status_wins(self):
        r = self.script("set a 1\nget missing\nbogus\nset b 2\n")
        self.assertEqual(r.stdout, b"OK\nKey not found\nOK\n")
        self.assertStatus(r, 2)

    def test_blank_lines_and_comments_are_skipped(self):
        r = self.script("# a comment\n\n   \n  # indented comment\nset a 1\r\nget a\n")
        self.assertEqual(r.stdout, b"OK\n1\n")
        self.assertStatus(r, 0)

    def test_command_names_ignore_case(self):
        r = self.script("SET a 1\nGet a\n")
        self.assertEqual(r.stdout, b"OK\n1\n")

    def test_quit_ends_the_script(self):
        r = self.script("set a 1\nquit\nset b 2\n")
        self.assertEqual(r.stdout, b"OK\n")
        self.assertStatus(self.kv("get", "b"), 1)

    def test_exit_is_quit(self):
        r = self.script("set a 1\nexit\nset b 2\n")
        self.assertEqual(r.stdout, b"OK\n")

    def test_help_lists_every_command(self):
        r = self.script("help\n")
        self.assertStatus(r, 0)
        for name in ("set", "get", "delete", "exists", "list", "scan", "range", "count", "stats",
                     "compact", "snapshot", "verify", "dump", "help", "quit", "exit"):
            self.assertRegex(r.stdout.decode(), rf"(?m)^  {name}\b")

    def test_data_survives_between_runs_and_the_snapshot_is_saved(self):
        self.assertStatus(self.script("set a 1\nset b 2\ndelete a\n"), 0)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "index.snapshot")))
        r = self.script("get b\nget a\nlist\n")
        self.assertEqual(r.stdout, b"2\nKey not found\n  b\n")

    def test_snapshot_command_writes_index_snapshot(self):
        os.mkdir(self.dir)
        holder = subprocess.Popen([KVSTORE, "--data-dir", self.dir], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env())
        try:
            holder.stdin.write(b"set a 1\nsnapshot\n")
            holder.stdin.flush()
            read_until(holder.stdout.fileno(), b"Snapshot saved\n")
            # Saved while the store is still open: not at close.
            self.assertTrue(os.path.exists(os.path.join(self.dir, "index.snapshot")))
        finally:
            holder.stdin.close()
            holder.wait(timeout=TIMEOUT)
            holder.stdout.close()
            holder.stderr.close()

    def test_empty_and_oversized_keys_are_usage_errors(self):
        self.assertStatus(self.kv("set", "seed", "1"), 0)
        r = self.script('get ""\nset "" v\nget ' + "k" * 65536 + "\n")
        self.assertEqual(r.stdout, b"")
        err = r.stderr.decode().splitlines()
        self.assertEqual(len(err), 3, err)
        self.assertIn("a key cannot be empty", err[0])
        self.assertIn("a key cannot be empty", err[1])
        self.assertIn("a key is at most 65535 bytes", err[2])
        self.assertStatus(r, 2)

    def test_dash_is_a_plain_value_in_a_script(self):
        r = self.script("set k -\nget k\n")
        self.assertEqual(r.stdout, b"OK\n-\n")


class Quoting(CliTestCase):
    def test_double_quotes_make_keys_and_values_with_spaces(self):
        r = self.script('set "my key" "a value"\nget "my key"\nlist\nexists "my key"\n')
        self.assertEqual(r.stdout, b"OK\na value\n  my key\ntrue\n")
        self.assertStatus(self.kv("get", "my key"), 0)
        self.assertEqual(self.kv("get", "my key").stdout, b"a value")

    def test_quoted_value_keeps_its_surrounding_spaces(self):
        self.script('set k "  padded  "\n')
        self.assertEqual(self.kv("get", "k").stdout, b"  padded  ")

    def test_backslash_escapes_inside_double_quotes(self):
        r = self.script('set k "tab\\there \\"q\\" back\\\\slash nl\\n nul\\0 hex\\x41"\n')
        self.assertStatus(r, 0)
        self.assertEqual(self.kv("get", "k").stdout,
                         b'tab\there "q" back\\slash nl\n nul\x00 hexA')

    def test_single_quotes_are_literal(self):
        self.script("set 'C:\\dir' 'a\\nb'\n")
        self.assertEqual(self.kv("get", "C:\\dir").stdout, b"a\\nb")

    def test_quotes_inside_a_bare_word_are_literal(self):
        r = self.script("set it's fine, isn't it\nget it's\n")
        self.assertEqual(r.stdout, b"OK\nfine, isn't it\n")

    def test_unterminated_quote_is_a_usage_error_with_its_column(self):
        r = self.script('get "open\n')
        self.assertEqual(r.stderr, b"kvstore: line 1: unterminated quote (column 5)\n")
        self.assertStatus(r, 2)

    def test_text_after_a_quoted_value_is_refused(self):
        r = self.script('set other 1\nset k "a" b\n')
        self.assertIn(b"quote all of it or none", r.stderr)
        self.assertStatus(r, 2)
        self.assertStatus(self.kv("get", "k"), 1)

    def test_one_shot_arguments_are_taken_as_they_are(self):
        self.assertStatus(self.kv("set", "my key", '"quoted" value'), 0)
        self.assertEqual(self.kv("get", "my key").stdout, b'"quoted" value')

    def test_one_shot_set_joins_extra_words_with_one_space(self):
        self.assertStatus(self.kv("set", "k", "hello", "world"), 0)
        self.assertEqual(self.kv("get", "k").stdout, b"hello world")


class OneShot(CliTestCase):
    """kvstore --data-dir DIR COMMAND ARG...: 0 ok, 1 not found, 2 usage, 3 error."""

    def test_get_prints_exactly_the_value_and_exits_0(self):
        self.assertEqual(self.kv("set", "name", "Alice").stdout, b"OK\n")
        r = self.kv("get", "name")
        self.assertEqual(r.stdout, b"Alice")  # no newline: stdout is not a terminal
        self.assertEqual(r.stderr, b"")
        self.assertStatus(r, 0)

    def test_get_of_a_missing_key_exits_1_with_nothing_on_stdout(self):
        self.assertStatus(self.kv("set", "someone", "1"), 0)
        r = self.kv("get", "ghost")
        self.assertEqual(r.stdout, b"")
        self.assertEqual(r.stderr, b"Key not found\n")
        self.assertStatus(r, 1)

    def test_delete_exits_0_then_1(self):
        self.kv("set", "k", "v")
        r = self.kv("delete", "k")
        self.assertEqual(r.stdout, b"Deleted\n")
        self.assertStatus(r, 0)
        self.assertStatus(self.kv("delete", "k"), 1)

    def test_exists_exits_0_for_true_and_1_for_false(self):
        self.kv("set", "k", "v")
        self.assertEqual(self.kv("exists", "k").stdout, b"true\n")
        self.assertStatus(self.kv("exists", "k"), 0)
        self.assertEqual(self.kv("exists", "nope").stdout, b"false\n")
        self.assertStatus(self.kv("exists", "nope"), 1)

    def test_list_stats_compact_count_and_snapshot(self):
        self.kv("set", "b", "2")
        self.kv("set", "a", "1")
        self.assertEqual(self.kv("list").stdout, b"  a\n  b\n")
        self.assertEqual(self.kv("range", "a", "b").stdout, b"  a\n")
        self.assertEqual(self.kv("range", "a ").stdout, b"  b\n")
        r = self.kv("stats")
        self.assertStatus(r, 0)
        self.assertIsNotNone(STATS_HEAD.match(r.stdout), r.stdout)
        self.assertEqual(self.kv("compact").stdout, b"Compaction finished\n")
        self.assertEqual(self.kv("count").stdout, b"2\n")
        self.assertEqual(self.kv("snapshot").stdout, b"Snapshot saved\n")
        self.assertEqual(self.kv("list").stdout, b"  a\n  b\n")

    def test_usage_errors_exit_2(self):
        cases = [
            (["get"], b"kvstore: usage: kvstore [--data-dir DIR] get <key>\n"),
            (["get", "a", "b"], b"kvstore: usage: kvstore [--data-dir DIR] get <key>\n"),
            (["set", "k"], b"kvstore: usage: kvstore [--data-dir DIR] set <key> <value>\n"),
            (["frobnicate"], b"kvstore: unknown command 'frobnicate' (kvstore --help lists them)\n"),
        ]
        for args, err in cases:
            with self.subTest(args=args):
                r = self.kv(*args)
                self.assertEqual(r.stderr, err)
                self.assertStatus(r, 2)
        self.assertFalse(os.path.exists(self.dir), "a usage error must not create the store")

    def test_bad_options_exit_2(self):
        for args in (["--bogus"], ["-x"], ["--data-dir"], ["--data-dir", ""]):
            with self.subTest(args=args):
                r = subprocess.run([KVSTORE, *args], capture_output=True, timeout=TIMEOUT,
                                   env=self.env(), cwd=self.tmp)
                self.assertStatus(r, 2)
                self.assertTrue(r.stderr.startswith(b"kvstore: "), r.stderr)

    def test_help_and_version(self):
        r = subprocess.run([KVSTORE, "--help"], capture_output=True, timeout=TIMEOUT)
        self.assertStatus(r, 0)
        self.assertTrue(r.stdout.startswith(b"usage: kvstore [--data-dir DIR]"), r.stdout)
        self.assertIn(b"Exit status:", r.stdout)
        r = subprocess.run([KVSTORE, "--version"], capture_output=True, timeout=TIMEOUT)
        self.assertStatus(r, 0)
        self.assertRegex(r.stdout.decode(), r"^kvstore \(mini-kvstore\) \d+\.\d+\.\d+\n$")

    def test_a_data_dir_that_cannot_be_opened_exits_3(self):
        path = os.path.join(self.tmp, "a-file")
        with open(path, "w") as f:
            f.write("not a directory")
        r = self.kv("set", "k", "v", data_dir=path)
        self.assertStatus(r, 3)
        self.assertIn(f"kvstore: cannot open {path}: ".encode(), r.stderr)
        r = self.kv("get", "k", data_dir=path)
        self.assertStatus(r, 3)
        self.assertIn(f"kvstore: get: {path}: not a directory".encode(), r.stderr)
        r = self.script("get k\nset a 1\nset b 2\n", data_dir=path)
        self.assertStatus(r, 3)
        self.assertEqual(r.stdout, b"")
        # The script stops at the first command that cannot open the store.
        self.assertEqual(r.stderr.count(f"kvstore: cannot open {path}: ".encode()), 1, r.stderr)

    def test_a_read_of_a_missing_directory_names_it_exits_3_and_creates_nothing(self):
        typo = os.path.join(self.tmp, "typo")
        for args in (["get", "x"], ["exists", "x"], ["list"], ["scan", "p"], ["count"],
                     ["stats"], ["compact"], ["snapshot"]):
            r = self.kv(*args, data_dir=typo)
            self.assertStatus(r, 3)
            self.assertEqual(r.stdout, b"")
            self.assertEqual(
                r.stderr.decode(),
                f"kvstore: {args[0]}: {typo}: no such directory; {args[0]} reads a store and "
                f"creates none (set creates one)\n")
            self.assertFalse(os.path.exists(typo), args)

    def test_a_read_of_a_directory_without_a_store_creates_nothing_in_it(self):
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        r = self.kv("get", "x", data_dir=empty)
        self.assertStatus(r, 3)
        self.assertIn(f"kvstore: get: {empty}: no store there (no segment files)".encode(),
                      r.stderr)
        self.assertEqual(os.listdir(empty), [])

    def test_a_write_creates_the_store_and_reads_then_work(self):
        fresh = os.path.join(self.tmp, "fresh")
        self.assertStatus(self.kv("delete", "x", data_dir=fresh), 1)  # a write: creates it
        self.assertTrue(os.path.isdir(fresh))
        self.assertStatus(self.kv("get", "x", data_dir=fresh), 1)
        other = os.path.join(self.tmp, "other")
        r = self.script("get a\nset a 1\nget a\n", data_dir=other)
        self.assertEqual(r.stdout, b"OK\n1\n")  # the read failed, the write created it
        self.assertStatus(r, 3)

    def test_a_store_open_in_another_process_exits_3_with_one_clear_line(self):
        holder = subprocess.Popen([KVSTORE, "--data-dir", self.dir], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env())
        try:
            holder.stdin.write(b"set held yes\n")
            holder.stdin.flush()
            read_until(holder.stdout.fileno(), b"OK\n")  # the holder has the store open
            for args in (["get", "held"], ["set", "k", "v"], ["list"]):
                with self.subTest(args=args):
                    r = self.kv(*args)
                    self.assertStatus(r, 3)
                    self.assertEqual(r.stdout, b"")
                    self.assertEqual(
                        r.stderr, f"kvstore: {self.dir} is in use by another process\n".encode())
            r = self.script("get held\n")
            self.assertStatus(r, 3)
            # verify and dump take no lock: they work beside the holder.
            r = self.kv("verify")
            self.assertStatus(r, 0)
            self.assertIn(b"no damage", r.stdout)
            self.assertIn(b'"held"', self.kv("dump").stdout)
        finally:
            holder.stdin.close()
            self.assertEqual(holder.wait(timeout=TIMEOUT), 0)
            holder.stdout.close()
            holder.stderr.close()
        self.assertEqual(self.kv("get", "held").stdout, b"yes")


class BinaryValues(CliTestCase):
    def test_every_byte_value_round_trips_through_set_dash_and_get(self):
        value = bytes(range(256)) * 3 + b"\x00\x00\n\r\n\x00"
        r = self.kv("set", "bin", "-", input=value)
        self.assertEqual(r.stdout, b"OK\n")
        self.assertStatus(r, 0)
        r = self.kv("get", "bin")
        self.assertStatus(r, 0)
        self.assertEqual(r.stdout, value)

    def test_an_empty_standard_input_stores_an_empty_value(self):
        self.assertStatus(self.kv("set", "empty", "-", input=b""), 0)
        r = self.kv("get", "empty")
        self.assertStatus(r, 0)
        self.assertEqual(r.stdout, b"")

    def test_a_value_larger_than_a_pipe_buffer_round_trips(self):
        value = os.urandom(3 * 1024 * 1024 + 7)
        self.assertStatus(self.kv("set", "big", "-", input=value), 0)
        self.assertEqual(self.kv("get", "big").stdout, value)

    def test_a_script_prints_binary_values_raw_with_a_newline(self):
        self.kv("set", "b", "-", input=b"\x00\x01\xff")
        self.assertEqual(self.script("get b\n").stdout, b"\x00\x01\xff\n")


def record(op, key, value):
    """One record in the on-disk format of DESIGN.md section 3."""
    body = struct.pack("<BII", op, len(key), len(value)) + key + value
    return b"\xf0\xf1" + body + struct.pack("<I", zlib.crc32(body))


def parse_dump(text):
    """Rows of `kvstore dump` as dicts (header and summary line left out)."""
    lines = text.decode().splitlines()
    assert lines[0].split() == ["segment", "offset", "length", "op", "value_len", "checksum",
                                "status", "key"], lines[0]
    rows = []
    for line in lines[1:-1]:
        f = line.split(None, 7)
        rows.append({"segment": int(f[0]), "offset": int(f[1]), "length": int(f[2]),
                     "op": f[3], "value_len": f[4], "checksum": f[5], "status": f[6],
                     "key": f[7]})
    return rows


class VerifyAndDump(CliTestCase):
    def fill(self):
        r = self.script("set k1 value-one\nset k2 value-two\nset k3 value-three\ndelete k1\n")
        self.assertStatus(r, 0)

    def segment_path(self, segment):
        return os.path.join(self.dir, f"segment-{segment}.dat")

    def test_verify_on_a_clean_directory_exits_0(self):
        self.fill()
        r = self.kv("verify")
        self.assertStatus(r, 0)
        lines = r.stdout.decode().splitlines()
        self.assertEqual(lines[-2], "snapshot: valid, 2 keys")
        self.assertRegex(lines[-1], r"^verify: 1 segment, 4 records, no damage$")

    def test_dump_lists_every_record_in_log_order(self):
        self.fill()
        r = self.kv("dump")
        self.assertStatus(r, 0)
        rows = parse_dump(r.stdout)
        self.assertEqual([(x["op"], x["key"], x["value_len"], x["status"]) for x in rows], [
            ("set", '"k1"', "9", "ok"), ("set", '"k2"', "9", "ok"),
            ("set", '"k3"', "11", "ok"), ("delete", '"k1"', "0", "ok")])
        offsets = [x["offset"] for x in rows]
        self.assertEqual(offsets[0], 0)
        for prev, row in zip(rows, rows[1:]):
            self.assertEqual(row["offset"], prev["offset"] + prev["length"])
        self.assertTrue(r.stdout.decode().splitlines()[-1].startswith("dump: 1 segment, 4 records"))

    def test_verify_names_the_segment_and_offset_of_a_flipped_byte(self):
        self.fill()
        k2 = [x for x in parse_dump(self.kv("dump").stdout) if x["key"] == '"k2"'][0]
        path = self.segment_path(k2["segment"])
        with open(path, "r+b") as f:
            at = k2["offset"] + 11 + 2 + 3  # header, key, into the value
            f.seek(at)
            byte = f.read(1)
            f.seek(at)
            f.write(bytes([byte[0] ^ 0x20]))
        r = self.kv("verify")
        self.assertStatus(r, 1)
        out = r.stdout.decode()
        self.assertIn(f"segment {k2['segment']} offset {k2['offset']}: checksum mismatch", out)
        self.assertIn('key "k2"', out)
        self.assertTrue(out.splitlines()[-1].endswith("1 damaged"), out)
        rows = parse_dump(self.kv("dump").stdout)
        self.assertEqual([x["status"] for x in rows], ["ok", "bad-checksum", "ok", "ok"])
        # Reads never lie: the damaged value is an error, the others read back.
        r = self.kv("get", "k2")
        self.assertStatus(r, 3)
        self.assertIn(b"checksum", r.stderr)
        self.assertEqual(self.kv("get", "k3").stdout, b"value-three")

    def test_an_incomplete_record_at_the_end_of_the_newest_segment_is_not_damage(self):
        self.fill()
        rows = parse_dump(self.kv("dump").stdout)
        with open(self.segment_path(rows[-1]["segment"]), "ab") as f:
            f.write(b"\xf0\xf1\x01\x05\x00")  # a write cut short
        r = self.kv("verify")
        self.assertStatus(r, 0)
        self.assertIn(b"incomplete record of 5 bytes at the end of the newest segment", r.stdout)
        # The next open cuts it off; verify is then silent about it.
        self.assertEqual(self.kv("get", "k2").stdout, b"value-two")
        self.assertNotIn(b"incomplete", self.kv("verify").stdout)

    def test_an_incomplete_record_at_the_end_of_a_sealed_segment_is_damage(self):
        os.mkdir(self.dir)
        with open(self.segment_path(1), "wb") as f:
            f.write(record(1, b"a", b"1") + record(1, b"b", b"2")[:9])
        with open(self.segment_path(2), "wb") as f:
            f.write(record(1, b"c", b"3"))
        r = self.kv("verify")
        self.assertStatus(r, 1)
        self.assertIn(b"segment 1 offset 17: incomplete record of 9 bytes at the end of a sealed "
                      b"segment\n", r.stdout)
        self.assertIn(b"verify: 2 segments, 3 records, 1 damaged", r.stdout)

    def test_records_written_by_another_implementation_are_read(self):
        os.mkdir(self.dir)
        with open(self.segment_path(0), "wb") as f:
            f.write(record(1, b"name", b"Alice") + record(1, b"gone", b"x") +
                    record(2, b"gone", b""))
        self.assertEqual(self.kv("get", "name").stdout, b"Alice")
        self.assertStatus(self.kv("get", "gone"), 1)
        rows = parse_dump(self.kv("dump").stdout)
        self.assertEqual([(x["segment"], x["op"], x["key"]) for x in rows],
                         [(0, "set", '"name"'), (0, "set", '"gone"'), (0, "delete", '"gone"')])

    def test_dump_shows_a_batch_then_the_records_inside_it(self):
        os.mkdir(self.dir)
        inner = record(1, b"a", b"alpha") + record(2, b"old", b"") + record(1, b"b", b"bravo")
        with open(self.segment_path(1), "wb") as f:
            f.write(record(1, b"old", b"x") + record(4, b"", inner) + record(1, b"c", b"3"))
        rows = parse_dump(self.kv("dump").stdout)
        self.assertEqual([(x["op"], x["key"], x["status"]) for x in rows], [
            ("set", '"old"', "ok"), ("batch", "-", "ok"), ("+set", '"a"', "ok"),
            ("+delete", '"old"', "ok"), ("+set", '"b"', "ok"), ("set", '"c"', "ok")])
        self.assertEqual(rows[1]["value_len"], str(len(inner)))
        self.assertEqual(rows[2]["offset"], rows[1]["offset"] + 11)
        r = self.kv("verify")
        self.assertStatus(r, 0)
        self.assertIn(b"verify: 1 segment, 5 records, 1 batch, no damage", r.stdout)
        self.assertEqual(self.kv("get", "a").stdout, b"alpha")
        self.assertStatus(self.kv("get", "old"), 1)

    def test_a_damaged_batch_is_one_damaged_region_and_none_of_its_records_applies(self):
        os.mkdir(self.dir)
        inner = record(1, b"a", b"alpha") + record(1, b"b", b"bravo")
        batch = bytearray(record(4, b"", inner))
        batch[11 + 15] ^= 0x01  # into the value of the second record inside it
        with open(self.segment_path(1), "wb") as f:
            f.write(record(1, b"a", b"1") + bytes(batch) + record(1, b"c", b"3"))
        with open(self.segment_path(2), "wb") as f:
            f.write(record(1, b"d", b"4"))
        rows = parse_dump(self.kv("dump").stdout)
        self.assertEqual([(x["op"], x["status"]) for x in rows], [
            ("set", "ok"), ("batch", "bad-checksum"), ("set", "ok"), ("set", "ok")])
        r = self.kv("verify")
        self.assertStatus(r, 1)
        self.assertIn(b"segment 1 offset 17: checksum mismatch in a batch of 57 bytes (none of "
                      b"its records is applied)\n", r.stdout)
        self.assertIn(b"1 damaged", r.stdout)
        self.assertEqual(self.kv("get", "a").stdout, b"1")
        self.assertStatus(self.kv("get", "b"), 1)
        self.assertEqual(self.kv("get", "c").stdout, b"3")

    def test_a_damaged_snapshot_is_reported(self):
        self.fill()
        with open(os.path.join(self.dir, "index.snapshot"), "r+b") as f:
            f.seek(20)
            byte = f.read(1)
            f.seek(20)
            f.write(bytes([byte[0] ^ 0xff]))
        r = self.kv("verify")
        self.assertStatus(r, 1)
        self.assertIn(b"snapshot: invalid", r.stdout)

    def test_verify_counts_segments_as_stats_does(self):
        self.script("set a 1\nset a 2\ncompact\n")  # leaves an empty active segment
        segments = int(re.search(rb"Segments: (\d+)", self.kv("stats").stdout).group(1))
        self.assertIn(f"verify: {segments} segments, 1 record, no damage".encode(),
                      self.kv("verify").stdout)

    def test_verify_of_a_missing_directory_exits_3_and_creates_nothing(self):
        r = self.kv("verify")
        self.assertStatus(r, 3)
        self.assertIn(b"verify: cannot read", r.stderr)
        self.assertFalse(os.path.exists(self.dir))

    def test_verify_of_an_empty_directory_is_clean(self):
        os.mkdir(self.dir)
        r = self.kv("verify")
        self.assertStatus(r, 0)
        self.assertIn(b"snapshot: none", r.stdout)
        self.assertIn(b"verify: 0 segments, 0 records, no damage", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=1)
