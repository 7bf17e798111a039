#!/usr/bin/env bash
# Installs the Debian packages that building and testing mini-kvstore need,
# and only those that are missing. Safe to run again: it does nothing when
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
    libcmocka-dev                 # unit tests
    libmicrohttpd-dev libjansson-dev libedit-dev  # server and CLI
    libuv1-dev libhiredis-dev     # the RESP front end's event loop; the CLI's --connect
    scdoc                         # the manual pages (docs/man/*.scd)
    curl python3                  # end-to-end tests
    redis-tools python3-redis nutcracker  # RESP tests: redis-cli, redis-py, twemproxy
    nginx-light                   # the cluster test's gateway (scripts/cluster.sh)
)
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
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
