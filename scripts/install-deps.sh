#!/usr/bin/env bash
# Installs the Debian packages that building and testing mini-kvstore need,
# and only those that are missing, and the browser test's npm packages
# (tests/browser, npm ci). Safe to run again: it does nothing when
# everything is present.
#
#   scripts/install-deps.sh          build and test dependencies
#   scripts/install-deps.sh --tools  also the formatting and lint tools
#   scripts/install-deps.sh --bench  also the benchmark peers and tools
#                                    (LevelDB, RocksDB, LMDB, Redis, gnuplot,
#                                    and wrk and nginx for the HTTP benchmark)
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    zlib1g-dev libisal-dev libxxhash-dev  # CRC-32, hashing
    libzstd-dev                   # compression of values
    libcmocka-dev                 # unit tests
    libmicrohttpd-dev libjansson-dev libedit-dev  # server and CLI
    libuv1-dev libhiredis-dev     # the RESP front end's event loop; the CLI's --connect
    libcurl4-openssl-dev          # a replica fetching its primary's log
    scdoc                         # the manual pages (docs/man/*.scd)
    curl python3                  # end-to-end tests
    redis-tools python3-redis nutcracker  # RESP tests: redis-cli, redis-py, twemproxy
    nginx-light                   # the cluster test's gateway (scripts/cluster.sh)
    libnginx-mod-http-js          # the gateway's merged listing (njs)
    libnginx-mod-stream           # the gateway's TLS in front of twemproxy
    openssl                       # the cluster test's self-signed certificate
    libjs-chart.js                # the status page's charts, embedded at build time
    chromium                      # the status page's test in a real browser (tests/browser)
)
# The browser test runs on Node.js with playwright-core from npm (below). A
# machine with its own Node.js (and npm) keeps it; Debian's is the fallback.
if ! command -v node >/dev/null; then
    packages+=(nodejs npm)
elif ! command -v npm >/dev/null; then
    echo "install-deps: node is installed without npm; install npm for the browser test" >&2
    exit 1
fi
for opt in "$@"; do
    case "$opt" in
    --tools) packages+=(clang libclang-rt-14-dev clang-format clang-tidy cppcheck valgrind) ;;
    --bench)
        packages+=(libleveldb-dev librocksdb-dev liblmdb-dev  # peer engines, C APIs
                   redis-server redis-tools                   # durable-write peer, redis-benchmark
                   gnuplot-nox                                # the chart
                   wrk nginx-light)                           # HTTP benchmark
        ;;
    *) echo "install-deps: unknown option $opt (--tools, --bench)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
    echo "install-deps: installing ${missing[*]}" >&2
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The browser test's npm packages, exactly as tests/browser/package-lock.json
# pins them: npm ci again only when the lock file changed since the last time.
browser="$(cd "$(dirname "$0")/.." && pwd)/tests/browser"
lock_sum="$(sha256sum "$browser/package-lock.json" | cut -d' ' -f1)"
stamp="$browser/node_modules/.package-lock.sha256"
if [[ ! -f $stamp || "$(cat "$stamp")" != "$lock_sum" ]]; then
    echo "install-deps: npm ci in tests/browser" >&2
    (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$lock_sum" >"$stamp"
fi
