#!/usr/bin/env bash
# bench/run.sh - the benchmark suite behind `make bench`: mini-kvstore and
# its peers (LevelDB, RocksDB, LMDB through their C APIs, Redis through
# redis-benchmark) with the same keys, sizes and thread counts, the HTTP
# server against nginx, durable writes against Redis at several connection
# counts, the Redis protocol against Redis, and the machine's own limits, all
# in one run. Writes docs/BENCHMARKS.md and the
# chart docs/bench.png. Numbers are reported, never judged: the script fails
# only when a program fails.
#
#   bench/run.sh            (after scripts/install-deps.sh --bench)
#
# Environment (defaults in brackets):
#   BUILD            CMake build directory [build]
#   BENCH_NUM        keys [1000000]
#   BENCH_KEY_SIZE   key bytes [16]
#   BENCH_VALUE_SIZE value bytes [100]
#   BENCH_THREADS    reader thread counts [1,2]
#   BENCH_SYNC_THREADS  fillsync thread counts [1,4,16,64]
#   BENCH_SYNC_NUM   fillsync writes up to 4 threads [2000]
#   BENCH_DURATION   cap on one workload, seconds [30]
#   BENCH_REPEAT     runs of the reads, fillsync and disk limits; the median
#                    is reported [3]
#   BENCH_REDIS_NUM  redis-benchmark SETs for the durable row [20000]
#   BENCH_WRITE_CLIENTS  connection counts of the durable-write comparison
#                    (volume-server PUT against Redis SET) [8,32,128]
#   BENCH_WRITE_ROUNDS   its rounds; the median is reported [3]
#   BENCH_WRITE_SECS     seconds per run of it [8]
#   BENCH_JSON_NUM   keys of the JSON corpus for the compression rows [200000]
#   BENCH_CATCHUP_MB what a replica catches up with in the replication rows [1024]
#   BENCH_DATA_DIR   where the data directories go (the disk under test)
#                    [$BUILD/bench-data]
#   BENCH_OUT        the report [docs/BENCHMARKS.md]; the chart goes beside it
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD:-build}
num=${BENCH_NUM:-1000000}
key_size=${BENCH_KEY_SIZE:-16}
value_size=${BENCH_VALUE_SIZE:-100}
threads=${BENCH_THREADS:-1,2}
sync_threads=${BENCH_SYNC_THREADS:-1,4,16,64}
sync_num=${BENCH_SYNC_NUM:-2000}
duration=${BENCH_DURATION:-30}
repeat=${BENCH_REPEAT:-3}
redis_num=${BENCH_REDIS_NUM:-20000}
json_num=${BENCH_JSON_NUM:-200000}
data=${BENCH_DATA_DIR:-$build/bench-data}
out=${BENCH_OUT:-docs/BENCHMARKS.md}
chart="$(dirname "$out")/bench.png"
results="$build/bench-results"

log() { printf 'bench: %s\n' "$*" >&2; }

# A program that fails (or overruns its timeout) does not stop the suite:
# the report is written with what the others measured, and the run fails.
failures=0
failed() {
    log "FAILED: $1"
    failures=$((failures + 1))
}

# Logs a command and records it for the report, with paths relative to the
# repository so that the report reads the same on any machine.
record() {
    local line="$*"
    line=${line//"$root"\//}
    log "$line"
    echo "$line" >>"$results/commands.txt"
}

# ---- build: reconfigure so that peers installed since the last configure
# are found, then build only the benchmark programs
build_programs() {
    log "building the benchmark programs in $build"
    cmake -S . -B "$build" >/dev/null
    cmake --build "$build" --target bench-programs -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
}

# ---- the machine, for the report's first table
describe_machine() {
    local f=$results/machine.txt
    {
        echo "cpu: $(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1)"
        echo "cores: $(nproc)"
        echo "memory: $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
        echo "disk: $(df -hT "$data" | awk 'NR == 2 {print $1 " (" $2 "), " $3 " total, " $5 " free"}')"
        echo "kernel: $(uname -srm)"
        echo "os: $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null)"
        local cc type
        cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
        type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
        echo "compiler: $("${cc:-cc}" --version 2>/dev/null | head -1), CMake build type $type"
        for p in libleveldb-dev librocksdb-dev liblmdb-dev redis-server; do
            echo "version $p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo 'not installed')"
        done
        echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    } >"$f"
}

# ---- the physical limits: fdatasync rates, sequential write, memcpy
run_limits() {
    local cmd=("$build/bench/kvbench-limits" --dir "$data" --repeat "$repeat" --json)
    record "${cmd[*]}"
    timeout 300 "${cmd[@]}" >"$results/limits.jsonl" || failed "kvbench-limits"
}

# ---- the engines: one program each, in its own process
run_engines() {
    local prog cmd
    for prog in kvbench kvbench-leveldb kvbench-rocksdb kvbench-lmdb; do
        if [[ ! -x $build/bench/$prog ]]; then
            log "$prog was not built (its library is missing): skipped"
            continue
        fi
        cmd=("$build/bench/$prog" --num "$num" --key-size "$key_size" --value-size "$value_size"
             --threads "$threads" --sync-threads "$sync_threads" --sync-num "$sync_num"
             --duration "$duration" --sync-duration 5 --repeat "$repeat" --dir "$data" --json)
        record "${cmd[*]}"
        local load0
        load0=$(cut -d' ' -f1 /proc/loadavg)
        timeout 900 "${cmd[@]}" >"$results/$prog.jsonl" || failed "$prog"
        echo "load (1 min) before → after $prog: $load0 → $(cut -d' ' -f1 /proc/loadavg)" \
            >>"$results/machine.txt"
    done
}

# ---- compression: a corpus of JSON documents (200 B to 2 KiB, bench/corpus.c)
# stored by mini-kvstore with zstd and without, and by RocksDB with zstd and a
# dictionary: bytes on disk after a full compaction, and random reads after it.
# And durable writes with and without mini-kvstore's preallocated segments.
# Their rows go to $results/extra/, which the main tables do not read.
run_compression() {
    mkdir -p "$results/extra"
    local name prog comp cmd load0
    for name in kvbench-zstd kvbench-none kvbench-rocksdb-zstd; do
        prog=${name%-*}
        comp=${name##*-}
        if [[ ! -x $build/bench/$prog ]]; then
            log "$prog was not built: no $name row"
            continue
        fi
        cmd=("$build/bench/$prog" --num "$json_num" --values json --compression "$comp"
             --benchmarks fillrandom,compact,readcompacted --threads 1 --repeat "$repeat"
             --duration "$duration" --dir "$data" --json)
        record "${cmd[*]}"
        load0=$(cut -d' ' -f1 /proc/loadavg)
        timeout 900 "${cmd[@]}" >"$results/extra/$name.jsonl" || failed "$name"
        echo "load (1 min) before → after $name: $load0 → $(cut -d' ' -f1 /proc/loadavg)" \
            >>"$results/machine.txt"
    done
    for pre in on off; do
        cmd=("$build/bench/kvbench" --num "$num" --key-size "$key_size" --value-size "$value_size"
             --benchmarks fillsync --sync-threads 1 --sync-num "$sync_num" --sync-duration 5
             --repeat "$repeat" --preallocate "$pre" --dir "$data" --json)
        record "${cmd[*]}"
        timeout 300 "${cmd[@]}" >"$results/extra/kvbench-preallocate-$pre.jsonl" ||
            failed "kvbench --preallocate $pre"
    done
}

# ---- Redis: the durable-write row (appendfsync always) and memory per key
redis_pid=""
redis_dir=""
stop_redis() {
    if [[ -n $redis_pid ]]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=""
    fi
    if [[ -n $redis_dir ]]; then
        rm -rf "$redis_dir"
        redis_dir=""
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Turns redis-benchmark's --csv line for SET into one of our JSON lines.
redis_csv_to_json() {
    local threads=$1 ops=$2
    python3 -c '
import csv, json, sys
threads, ops = int(sys.argv[1]), int(sys.argv[2])
for row in csv.reader(sys.stdin):
    if row and row[0] == "SET":
        rps = float(row[1])
        out = {"engine": "redis", "workload": "fillsync", "threads": threads, "ops": ops,
               "secs": ops / rps if rps else 0, "ops_per_sec": rps, "errors": 0,
               "p50_us": float(row[4]) * 1000, "p99_us": float(row[6]) * 1000,
               "note": "redis-benchmark, %d clients, appendfsync always" % threads}
        print(json.dumps(out))
' "$threads" "$ops"
}

redis_used_memory() {
    redis-cli -h 127.0.0.1 -p "$1" info memory | tr -d '\r' | sed -n 's/^used_memory://p'
}

run_redis() {
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        log "redis-server or redis-benchmark missing: the Redis rows are skipped"
        return 0
    fi
    local port clients=50
    port=$(free_port)
    redis_dir=$(mktemp -d "$data/redis.XXXXXX")
    redis-server --bind 127.0.0.1 --port "$port" --dir "$redis_dir" --appendonly yes \
        --appendfsync always --save '' --daemonize no --logfile "$redis_dir/redis.log" &
    redis_pid=$!
    local i
    for i in $(seq 1 100); do
        [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && break
        [[ $i -eq 100 ]] && { failed "redis-server (it did not start)"; stop_redis; return 0; }
        sleep 0.1
    done
    local cmd=(redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$redis_num" -c "$clients"
               -d "$value_size" -r "$num" -P 1 -q --csv)
    record "redis-server --appendonly yes --appendfsync always --save ''; ${cmd[*]}"
    timeout 120 "${cmd[@]}" | redis_csv_to_json "$clients" "$redis_num" >"$results/redis.jsonl" ||
        failed "redis-benchmark"

    # Memory per key: the same key space filled without the AOF (pipelined,
    # so it takes seconds), used_memory growth over the keys it holds.
    redis-cli -h 127.0.0.1 -p "$port" config set appendonly no >/dev/null
    redis-cli -h 127.0.0.1 -p "$port" flushall >/dev/null
    local used0 used1 keys
    used0=$(redis_used_memory "$port")
    timeout 120 redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$num" -c 4 -d "$value_size" \
        -r "$num" -P 32 -q >/dev/null
    used1=$(redis_used_memory "$port")
    keys=$(redis-cli -h 127.0.0.1 -p "$port" dbsize | tr -d '\r')
    python3 -c '
import json, sys
used0, used1, keys = (int(a) for a in sys.argv[1:4])
print(json.dumps({"engine": "redis", "workload": "memory", "threads": 1, "ops": 0, "secs": 0,
                  "ops_per_sec": 0, "errors": 0, "keys": keys,
                  "used_memory_bytes_per_key": (used1 - used0) / keys if keys else 0}))
' "$used0" "$used1" "$keys" >>"$results/redis.jsonl"
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
    stop_redis
}

# ---- HTTP: wrk against volume-server and, in the same run, against nginx
# serving files of the same sizes (bench/http_bench.py). Its table goes to
# $results/http.md, appended to the report after it is written.
run_http() {
    if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
        log "wrk or nginx missing: no HTTP benchmark (scripts/install-deps.sh --bench)"
        return
    fi
    log "HTTP benchmark: wrk against volume-server and nginx"
    echo "python3 bench/http_bench.py --build $build --results $results" >>"$results/commands.txt"
    if ! python3 bench/http_bench.py --build "$build" --results "$results"; then
        log "HTTP benchmark failed"
        failures=$((failures + 1))
    fi
}

# ---- durable writes: volume-server's PUT against Redis's SET with
# appendfsync always, at several connection counts, with writes per
# fdatasync and the wait for a round (bench/write_bench.py). Its table goes
# to $results/write.md, appended to the report after the HTTP one.
run_write() {
    if ! command -v wrk >/dev/null; then
        log "wrk missing: no durable-write comparison (scripts/install-deps.sh --bench)"
        return
    fi
    log "durable writes: volume-server PUT against Redis SET"
    local cmd=(python3 bench/write_bench.py --build "$build" --results "$results"
               --clients "${BENCH_WRITE_CLIENTS:-8,32,128}" --rounds "${BENCH_WRITE_ROUNDS:-3}"
               --duration "${BENCH_WRITE_SECS:-8}")
    record "${cmd[*]}"
    if ! "${cmd[@]}"; then
        log "durable-write benchmark failed"
        failures=$((failures + 1))
    fi
}

# ---- the Redis protocol: redis-benchmark against volume-server's RESP port
# and, with the same flags in the same run, against Redis with appendfsync
# always (bench/resp_bench.py); its table goes to $results/resp.md.
run_resp() {
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        log "redis-server or redis-benchmark missing: no RESP benchmark (scripts/install-deps.sh --bench)"
        return
    fi
    log "RESP benchmark: redis-benchmark against volume-server and Redis"
    echo "python3 bench/resp_bench.py --build $build --results $results --keys $num" \
        >>"$results/commands.txt"
    if ! python3 bench/resp_bench.py --build "$build" --results "$results" --data "$data" \
        --keys "$num"; then
        log "RESP benchmark failed"
        failures=$((failures + 1))
    fi
}

# ---- replication: a primary and a replica on this machine
# (bench/repl_bench.py): durable PUT/s with and without MIN_REPLICA_ACKS=1 in
# the same run, a replica's lag under a steady load, a catch-up of
# BENCH_CATCHUP_MB; its table goes to $results/repl.md.
run_repl() {
    if ! command -v wrk >/dev/null; then
        log "wrk missing: no replication benchmark (scripts/install-deps.sh --bench)"
        return
    fi
    log "replication benchmark: semi-synchronous writes, lag, catch-up"
    local cmd=(python3 bench/repl_bench.py --build "$build" --results "$results" --data "$data"
        --catchup-mb "${BENCH_CATCHUP_MB:-1024}")
    echo "${cmd[*]}" >>"$results/commands.txt"
    if ! "${cmd[@]}"; then
        log "replication benchmark failed"
        failures=$((failures + 1))
    fi
}

# ---- the cluster: one volume direct against the gateway (HTTPS, three
# shards with a replica each) and twemproxy, GET and durable PUT, in the same
# run (bench/cluster_bench.py); its table goes to $results/cluster.md.
run_cluster() {
    if ! command -v wrk >/dev/null || ! command -v redis-benchmark >/dev/null; then
        log "wrk or redis-benchmark missing: no cluster benchmark (scripts/install-deps.sh --bench)"
        return
    fi
    log "cluster benchmark: one volume direct against the gateway and twemproxy"
    local cmd=(python3 bench/cluster_bench.py --build "$build" --results "$results")
    record "${cmd[*]}"
    if ! "${cmd[@]}"; then
        log "cluster benchmark failed"
        failures=$((failures + 1))
    fi
}

# ---- the report and the chart
write_report() {
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"
    log "writing $out"
    python3 bench/report.py --results "$results" --out "$out" --chart-data "$results/chart.dat" \
        --chart "$(basename "$chart")"
    local part
    for part in http write resp repl cluster; do
        if [[ -f $results/$part.md ]]; then
            printf '\n' >>"$out"
            cat "$results/$part.md" >>"$out"
        fi
    done
    if command -v gnuplot >/dev/null; then
        log "drawing $chart"
        gnuplot -e "datafile='$results/chart.dat'; outfile='$chart'" bench/chart.gp
    else
        log "gnuplot missing: no chart drawn (scripts/install-deps.sh --bench)"
    fi
}

main() {
    local start=$SECONDS
    build_programs
    rm -rf "$results"
    mkdir -p "$results" "$data" "$(dirname "$out")"
    data=$(cd "$data" && pwd) # redis-server resolves paths after it changes directory
    : >"$results/commands.txt"
    trap stop_redis EXIT
    describe_machine
    run_limits
    run_engines
    run_compression
    run_redis
    run_http
    run_write
    run_resp
    run_repl
    run_cluster
    write_report
    log "done in $((SECONDS - start)) s"
    if [[ $failures -gt 0 ]]; then
        log "$failures step(s) failed: see the messages above"
        exit 1
    fi
}

main "$@"
