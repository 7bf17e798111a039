#!/usr/bin/env bash
# Smoke test of one benchmark program (run by ctest): on a tiny key count it
# must exit 0, with every read checked against what was written, and print a
# row for every workload. It judges no number.
#
#   bench/smoke_test.sh PROGRAM WORKDIR
set -euo pipefail

prog=$1
workdir=$2
mkdir -p "$workdir"

if [[ $(basename "$prog") == kvbench-limits ]]; then
    args=(--dir "$workdir" --syncs 20 --seq-mb 4 --docs 2000 --duration 1 --repeat 2 --json)
    expected=(fdatasync-append fdatasync-overwrite seqwrite memcpy zstd-decompress)
else
    args=(--dir "$workdir" --num 2000 --sync-num 20 --sync-threads "1,4,16,64" --threads "1,2"
          --duration 2 --sync-duration 1 --repeat 2 --verify --json)
    expected=(config fillrandom memory overwrite readrandom readmissing seekrandom
              readwhilewriting compact readwhilecompacting readcompacted open deleterandom fillseq
              fillsync fillbatch)
fi

rc=0
out=$("$prog" "${args[@]}") || rc=$?
if [[ $rc -ne 0 ]]; then
    echo "$out"
    echo "FAIL: $prog exited $rc" >&2
    exit 1
fi
echo "$out"
missing=0
for w in "${expected[@]}"; do
    if ! grep -q "\"workload\":\"$w\"" <<<"$out"; then
        echo "FAIL: $prog printed no $w row" >&2
        missing=1
    fi
done
if grep -q '"errors":[1-9]' <<<"$out"; then
    echo "FAIL: $prog reported failed operations" >&2
    missing=1
fi
exit "$missing"
