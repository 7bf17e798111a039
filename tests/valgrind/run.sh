#!/usr/bin/env bash
# valgrind memcheck over one end-to-end run: tests/e2e/test_server_api.py
# drives volume-server, which runs under
#   valgrind --error-exitcode=1 --leak-check=full
# through a wrapper placed where the harness looks for the binary
# (KV_BUILD_DIR). The harness requires exit status 0 after SIGTERM, so any
# memcheck error or definite/indirect leak fails the run; the valgrind logs
# are checked once more for "ERROR SUMMARY: 0 errors".
#
# Usage: tests/valgrind/run.sh BUILD_DIR [E2E_TEST]   (a build without
# sanitizers; E2E_TEST defaults to test_server_api.py)
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
real="$build/volume-server"
[ -x "$real" ] || { echo "no $real: build first" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kv-valgrind-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/logs"
cat > "$work/bin/volume-server" <<WRAP
#!/bin/sh
exec valgrind --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --track-origins=yes \
  --log-file="$work/logs/vg.%p.log" "$real" "\$@"
WRAP
chmod +x "$work/bin/volume-server"
# The other programs a test runs (kvstore) come unwrapped from the build.
ln -s "$build/kvstore" "$work/bin/kvstore"

status=0
KV_BUILD_DIR="$work/bin" KV_UNDER_VALGRIND=1 PYTHONDONTWRITEBYTECODE=1 \
  python3 "$here/../e2e/${2:-test_server_api.py}" || status=$?
runs=$(ls "$work/logs" | wc -l)
# With --quiet, a clean run leaves an empty log; anything else is a report.
reports=0
for f in "$work"/logs/*.log; do
  if [ -s "$f" ]; then
    reports=$((reports + 1))
    echo "---- $f" >&2
    cat "$f" >&2
  fi
done
echo "valgrind: $runs server run(s) under memcheck, $reports with reports, e2e status $status"
[ "$status" -eq 0 ] && [ "$reports" -eq 0 ] && [ "$runs" -gt 0 ]
