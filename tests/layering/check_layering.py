#!/usr/bin/env python3
"""The engine's layering, checked on the real build.

  front-ends   every folder of src/ but src/store, and cmd/, reach the
               engine through include/kvstore.h only: no include path of theirs (the flags in
               BUILD/compile_commands.json) reaches src/store, no #include of
               theirs resolves into it (relative paths included), and the
               compiler, run with the flags of a front-end file, cannot find
               "store/store.h" or "store.h" while it still compiles that file.
  store-calls  the modules of src/store call each other without a circle:
               X.c depends on Y.c when X.c or X.h includes Y's header (Y.h, or
               for a header with no .c of its name, every Y_*.c). store.h only
               defines the handle and declares no function, so it does not
               count (checked).
  self-test    both checks on small trees that break the rules must fail.

usage: check_layering.py front-ends|store-calls SOURCE_DIR BUILD_DIR
       check_layering.py self-test
"""
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

STORE = "src/store"


def front_ends(src):
    """Every folder of src/ but the engine's, and cmd/."""
    top = os.path.join(src, "src")
    parts = [f"src/{d}" for d in sorted(os.listdir(top))
             if d != "store" and os.path.isdir(os.path.join(top, d))]
    return parts + ["cmd"]
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def is_under(path, root):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root + os.sep)


def sources(root, parts, exts=(".c", ".h")):
    for part in parts:
        for base, _, files in os.walk(os.path.join(root, part)):
            for name in sorted(files):
                if name.endswith(exts):
                    yield os.path.join(base, name)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for m in INCLUDE_RE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        yield m.group(1) == '"', m.group(2), line


def entry_args(entry):
    if "arguments" in entry:
        return list(entry["arguments"])
    return shlex.split(entry["command"])


def include_dirs(entry):
    """The -I, -iquote and -isystem directories of a compile command."""
    args, dirs = entry_args(entry), []
    i = 0
    while i < len(args):
        a = args[i]
        for flag in ("-I", "-iquote", "-isystem"):
            if a == flag and i + 1 < len(args):
                dirs.append(args[i + 1])
                i += 1
                break
            if a.startswith(flag) and len(a) > len(flag):
                dirs.append(a[len(flag):])
                break
        i += 1
    return [os.path.join(entry["directory"], d) for d in dirs]


def front_end_entries(src, build):
    with open(os.path.join(build, "compile_commands.json"), encoding="utf-8") as f:
        entries = json.load(f)
    out = []
    for e in entries:
        path = os.path.join(e["directory"], e["file"])
        if any(is_under(path, os.path.join(src, p)) for p in front_ends(src)):
            out.append(e)
    return out


def check_front_ends(src, build, compile_probe=True):
    """Returns the list of violations (empty when the layering holds)."""
    errors = []
    store = os.path.join(src, STORE)
    entries = front_end_entries(src, build)
    if not entries:
        return ["no front-end file in compile_commands.json: nothing was checked"]
    search = []
    for e in entries:
        for d in include_dirs(e):
            if d not in search:
                search.append(d)
            # A directory reaches src/store if src/store lies below it.
            if is_under(store, d):
                errors.append(f"{e['file']}: include path {d} reaches {STORE}")
    for path in sources(src, front_ends(src)):
        for quoted, name, line in includes(path):
            dirs = ([os.path.dirname(path)] if quoted else []) + search
            for d in dirs:
                cand = os.path.join(d, name)
                if os.path.isfile(cand):
                    if is_under(cand, store):
                        rel = os.path.relpath(path, src)
                        errors.append(f"{rel}:{line}: #include {name} is {STORE}'s")
                    break
    if compile_probe:
        errors += compile_probes(entries)
    return errors


def compile_probes(entries):
    """Runs the compiler with the flags of each front-end target (each set of
    include directories): a file of that target must compile, and a file
    that includes an engine header must not."""
    chosen = {}
    for e in entries:
        chosen.setdefault(tuple(include_dirs(e)), e)
    errors = []
    for entry in chosen.values():
        errors += probe_entry(entry)
    return errors


def probe_entry(entry):
    args = entry_args(entry)
    source = os.path.join(entry["directory"], entry["file"])

    def run(path):
        cmd, skip = [], False
        for a in args:
            if skip:
                skip = False
                continue
            if a == "-o":
                skip = True
                continue
            if a in ("-c", entry["file"], source):
                continue
            cmd.append(a)
        cmd += ["-fsyntax-only", path]
        return subprocess.run(cmd, cwd=entry["directory"], capture_output=True, text=True,
                              check=False)

    control = run(source)
    if control.returncode != 0:
        return [f"control: {entry['file']} does not compile with its own flags:\n{control.stderr}"]
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        for header in ("store/store.h", "store.h", "src/store/store.h"):
            probe = os.path.join(tmp, "probe.c")
            with open(probe, "w", encoding="utf-8") as f:
                f.write(f'#include "{header}"\n')
            r = run(probe)
            # gcc says "No such file or directory", clang "file not found".
            missing = "No such file" in r.stderr or "file not found" in r.stderr
            if r.returncode == 0 or not missing:
                errors.append(f'the flags of {entry["file"]} find "{header}":\n{r.stderr}')
    return errors


def header_owners(store):
    """Maps each header of src/store to the .c files whose functions it
    declares: X.h -> X.c, or every X_*.c when there is no X.c."""
    files = sorted(os.listdir(store))
    cs = [f[:-2] for f in files if f.endswith(".c")]
    owners = {}
    for h in (f[:-2] for f in files if f.endswith(".h")):
        owners[h] = [h] if h in cs else [c for c in cs if c.startswith(h + "_")]
    return owners, cs


def check_store_calls(src):
    store = os.path.join(src, STORE)
    owners, modules = header_owners(store)
    errors = []
    with open(os.path.join(store, "store.h"), encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    if re.search(r"\bkv_?_?\w*\s*\([^)]*\)\s*;", text):
        errors.append("store.h declares a function: it must only define the handle")
    graph = {m: set() for m in modules}
    for m in modules:
        for ext in (".c", ".h"):
            path = os.path.join(store, m + ext)
            if not os.path.exists(path):
                continue
            for quoted, name, _ in includes(path):
                h = name[:-2] if quoted and name.endswith(".h") else None
                if h is None or h == "store" or h not in owners or m in owners[h]:
                    continue
                graph[m].update(owners[h])
    # Depth-first search for a circle.
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in modules:
        if m not in state:
            circle = visit(m)
            if circle:
                errors.append("call circle in src/store: " + " -> ".join(c + ".c" for c in circle))
                break
    return errors


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def self_test():
    """The checks must fail on trees that break the rules."""
    failures = []
    with tempfile.TemporaryDirectory() as root:
        write(root, "src/store/store.h", "struct kv_store { int x; };\n")
        write(root, "src/store/a.h", "int a(void);\n")
        write(root, "src/store/a.c", '#include "b.h"\n')
        write(root, "src/store/b.h", "int b(void);\n")
        write(root, "src/store/b.c", '#include "a.h"\n')
        write(root, "src/volume/ok.c", '#include "ok.h"\n')
        write(root, "src/volume/ok.h", "\n")
        write(root, "src/volume/bad.c", '#include "../store/a.h"\n')
        write(root, "cmd/prog/main.c", '#include "store/b.h"\n')
        build = os.path.join(root, "build")
        os.makedirs(build)
        commands = [
            {"directory": build, "file": os.path.join(root, "cmd/prog/main.c"),
             "command": f"cc -I{root}/src -c {root}/cmd/prog/main.c"},
        ]
        with open(os.path.join(build, "compile_commands.json"), "w", encoding="utf-8") as f:
            json.dump(commands, f)
        errors = check_front_ends(root, build, compile_probe=False)
        for want in ("include path", "src/volume/bad.c:1", "cmd/prog/main.c:1"):
            if not any(want in e for e in errors):
                failures.append(f"front-ends: a tree that breaks the rule gave no '{want}' error")
        if any("ok.c" in e for e in errors):
            failures.append("front-ends: a front-end header of its own was called a violation")
        if not any("call circle" in e for e in check_store_calls(root)):
            failures.append("store-calls: a.c -> b.c -> a.c was not found")
        write(root, "src/store/b.c", "\n")
        if check_store_calls(root):
            failures.append("store-calls: a tree without a circle was refused")
        write(root, "src/store/store.h", "int kv__touch(void);\n")
        if not check_store_calls(root):
            failures.append("store-calls: a function declared in store.h went unnoticed")
    return failures


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "self-test":
        errors = self_test()
    elif len(sys.argv) == 4 and sys.argv[1] == "front-ends":
        errors = check_front_ends(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "store-calls":
        errors = check_store_calls(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for e in errors:
        print(e, file=sys.stderr)
    if not errors:
        print(f"{sys.argv[1]}: ok")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
