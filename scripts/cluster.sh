#!/usr/bin/env bash
# The three-volume cluster without containers: three volume-server processes
# and an nginx gateway in front of them, all on 127.0.0.1, all under one
# directory. The gateway's configuration is rendered from the same template as
# the compose file's (deploy/nginx.conf.template).
#
#   scripts/cluster.sh start            start whatever is not running
#   scripts/cluster.sh stop [VOLUME]    stop everything (or one volume, e.g. vol-2)
#   scripts/cluster.sh status           what runs, and each volume's key count
#   scripts/cluster.sh help             this text
#
# Settings (environment):
#   CLUSTER_DIR    data, logs, pid files, nginx config    (default: ./cluster)
#   GATEWAY_PORT   the gateway's port                     (default: 9000)
#   VOLUME_PORTS   one port per volume, vol-1 first       (default: "9001 9002 9003")
#                  0: the volume takes a free port at its first start, and
#                  keeps it across restarts (the gateway's configuration names
#                  it); `status` and $CLUSTER_DIR/run/<volume>.port show it
#   BUILD          build directory with volume-server     (default: build)
#   NGINX          the nginx binary                       (default: nginx on PATH, or /usr/sbin/nginx)
#   START_TIMEOUT  seconds to wait for each process       (default: 30)
# Other volume-server variables (SYNC_MODE, LOG_LEVEL, ...) are passed through.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-cluster}
GATEWAY_PORT=${GATEWAY_PORT:-9000}
VOLUME_PORTS=${VOLUME_PORTS:-9001 9002 9003}
BUILD=${BUILD:-build}
START_TIMEOUT=${START_TIMEOUT:-30}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

# Nothing is created before a command needs it: start makes the directories.
dir=$(realpath -m -- "$CLUSTER_DIR")
[[ $BUILD == /* ]] || BUILD="$root/$BUILD"
read -r -a ports <<<"$VOLUME_PORTS"
names=()
for i in "${!ports[@]}"; do names+=("vol-$((i + 1))"); done

say() { echo "cluster: $*" >&2; }

# the comment at the top of this file, from its second line to `set -e`
usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# true while pid $1 runs (a zombie waiting for its reaper counts as gone)
alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}
die() {
    say "$*"
    exit 1
}

# pid of a running process recorded in pidfile $1 whose command contains $2
running_pid() {
    local pid
    [[ -r $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
    echo "$pid"
}

# waits until http://127.0.0.1:$1$2 answers 200, while pid $3 lives
wait_http() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1$2" 2>/dev/null; do
        alive "$3" || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# stops pid $1 with SIGTERM, SIGKILL after a bounded wait; returns its status
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 600; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    say "pid $pid did not stop within 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}

# the port of volume $1 configured as $2: a configured 0 is the port the
# volume took at its first start (empty before that)
volume_port() {
    if [[ $2 != 0 ]]; then
        echo "$2"
    elif [[ -r $dir/run/$1.port ]]; then
        cat "$dir/run/$1.port"
    fi
}

# waits until log $1 has, past byte $2, the start line of pid $3, and prints
# the port it names
wait_listening() {
    local deadline=$((SECONDS + START_TIMEOUT)) port
    while :; do
        port=$(tail -c "+$(($2 + 1))" "$1" 2>/dev/null |
            grep -o -m 1 'listening on http://127\.0\.0\.1:[0-9]*' | sed 's/.*://') || true
        [[ -n $port ]] && echo "$port" && return 0
        alive "$3" || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

start_volume() {
    local name=$1 port pidfile="$dir/run/$1.pid" pid log="$dir/logs/$1.log" offset
    if pid=$(running_pid "$pidfile" volume-server); then
        return 0
    fi
    [[ -x $BUILD/volume-server ]] || die "no $BUILD/volume-server: run make build (or set BUILD)"
    mkdir -p "$dir/data/$name" "$dir/logs" "$dir/run"
    port=$(volume_port "$name" "$2")
    offset=$(stat -c %s "$log" 2>/dev/null || echo 0)
    HOST=127.0.0.1 PORT=${port:-0} RESP_PORT=0 VOLUME_ID=$name DATA_DIR="$dir/data/$name" \
        nohup "$BUILD/volume-server" </dev/null >>"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    if [[ -z $port ]]; then
        if ! port=$(wait_listening "$log" "$offset" "$pid"); then
            tail -n 20 "$log" >&2 || true
            die "$name (pid $pid) did not start on a free port"
        fi
        echo "$port" >"$dir/run/$name.port"
    fi
    if ! wait_http "$port" /health "$pid"; then
        tail -n 20 "$dir/logs/$name.log" >&2 || true
        die "$name (pid $pid) did not answer on 127.0.0.1:$port/health"
    fi
    say "$name on 127.0.0.1:$port (pid $pid, data $dir/data/$name)"
}

start_gateway() {
    local ng="$dir/nginx" pid vols=() i
    if pid=$(running_pid "$ng/nginx.pid" nginx); then
        return 0
    fi
    [[ -x $NGINX ]] || die "no nginx ($NGINX): install nginx-light (scripts/install-deps.sh)"
    mkdir -p "$ng" "$dir/logs"
    for i in "${!ports[@]}"; do
        vols+=("${names[$i]}=127.0.0.1:$(volume_port "${names[$i]}" "${ports[$i]}")")
    done
    "$root/deploy/render-gateway.sh" "$root/deploy/nginx.conf.template" "$ng/nginx.conf" \
        "127.0.0.1:$GATEWAY_PORT" "$ng" "$dir/logs/nginx-error.log" "$dir/logs/nginx-access.log" \
        "${vols[@]}"
    # A private prefix, pid file and logs: no system nginx state is touched.
    # (-e: the error log before the configuration is read.)
    "$NGINX" -p "$ng" -c "$ng/nginx.conf" -e "$dir/logs/nginx-error.log" -g 'daemon on;' ||
        die "nginx did not start (see $dir/logs/nginx-error.log)"
    pid=$(running_pid "$ng/nginx.pid" nginx) || die "nginx wrote no pid file"
    wait_http "$GATEWAY_PORT" /health "$pid" || die "the gateway did not answer on 127.0.0.1:$GATEWAY_PORT"
    say "gateway on 127.0.0.1:$GATEWAY_PORT (nginx pid $pid): /blobs/{key}, /<volume>/health"
}

stop_all() {
    local rc=0 pid name
    if pid=$(running_pid "$dir/nginx/nginx.pid" nginx); then
        stop_pid "$pid" || rc=1
        say "gateway stopped"
    fi
    for name in "${names[@]}"; do
        stop_volume "$name" || rc=1
    done
    return $rc
}

stop_volume() {
    local pid
    if pid=$(running_pid "$dir/run/$1.pid" volume-server); then
        stop_pid "$pid" || return 1
        say "$1 stopped"
    fi
    rm -f "$dir/run/$1.pid"
}

status() {
    local rc=0 i pid keys port
    for i in "${!names[@]}"; do
        if pid=$(running_pid "$dir/run/${names[$i]}.pid" volume-server); then
            port=$(volume_port "${names[$i]}" "${ports[$i]}")
            keys=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/health" 2>/dev/null |
                grep -o '"keys":[0-9]*' | cut -d: -f2) || keys="?"
            echo "${names[$i]}  running  pid $pid  127.0.0.1:$port  keys ${keys:-?}"
        else
            echo "${names[$i]}  stopped"
            rc=3
        fi
    done
    if pid=$(running_pid "$dir/nginx/nginx.pid" nginx); then
        echo "gateway  running  pid $pid  127.0.0.1:$GATEWAY_PORT"
    else
        echo "gateway  stopped"
        rc=3
    fi
    return $rc
}

case "${1:-}" in
start)
    for i in "${!names[@]}"; do start_volume "${names[$i]}" "${ports[$i]}"; done
    start_gateway
    ;;
stop)
    if [[ -n ${2:-} ]]; then
        [[ " ${names[*]} " == *" $2 "* ]] || die "no volume $2 (${names[*]})"
        stop_volume "$2"
    else
        stop_all
    fi
    ;;
status) status ;;
help | -h | --help) usage ;;
*)
    [[ -z ${1:-} ]] || say "unknown command: $1"
    usage >&2
    exit 2
    ;;
esac
