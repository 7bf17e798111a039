#!/usr/bin/env python3
"""Prints the C files a build directory compiles, one per line, relative to
the source tree and sorted: the files of BUILD/compile_commands.json that lie
in this repository.

`make lint` lints these, so that it needs no header of a program the build
skipped (the peers' benchmark adapters when their libraries are absent).

usage: scripts/built-sources.py BUILD [EXCLUDE_PREFIX...]
"""
import json
import os
import sys


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    build = sys.argv[1]
    excluded = tuple(sys.argv[2:])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(build, "compile_commands.json"), encoding="utf-8") as f:
        entries = json.load(f)
    files = set()
    for e in entries:
        path = os.path.normpath(os.path.join(e.get("directory", ""), e["file"]))
        rel = os.path.relpath(path, root)
        if rel.startswith(".." + os.sep) or not rel.endswith(".c"):
            continue
        if excluded and rel.startswith(excluded):
            continue
        files.add(rel)
    for rel in sorted(files):
        print(rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
