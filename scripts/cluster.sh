#!/usr/bin/env bash
# The cluster without containers, all on 127.0.0.1, all under one directory:
# three shards, each a primary volume-server and (REPLICAS=1) a replica
# following it, the nginx gateway (HTTPS, and RESP over TLS) and twemproxy
# behind the gateway's RESP port. The gateway's and twemproxy's
# configurations are rendered from the compose gateway's template
# (deploy/render-gateway.sh).
#
#   scripts/cluster.sh start [NAME]     start whatever is not running (or one node)
#   scripts/cluster.sh stop [NAME]      stop everything (or one node, the gateway, twemproxy)
#   scripts/cluster.sh status           one line per node: name, role, HTTP and RESP
#                                       addresses, pid or "stopped"
#   scripts/cluster.sh promote NAME     make replica NAME its shard's primary: stops the
#                                       old primary if it runs, POST /admin/promote, the
#                                       gateway's writes and twemproxy go to NAME
#   scripts/cluster.sh help             this text
#
# Nodes are vol-Na (first primary of shard-N) and vol-Nb (its replica).
#
# Settings (environment), kept in $CLUSTER_DIR/cluster.env at the first start:
# a later command takes them from there, and one given again with another
# value is an error (delete CLUSTER_DIR to start a new cluster).
#   CLUSTER_DIR        data, logs, pid files, configuration  (default: ./cluster)
#   GATEWAY_PORT       the HTTPS gateway                      (default: 9000)
#   GATEWAY_RESP_PORT  the RESP gateway (TLS)                 (default: 6379)
#   REPLICAS           replicas per shard, 0 or 1             (default: 1)
#   VOLUME_PORTS       nodes' HTTP ports, vol-1a vol-2a vol-3a vol-1b vol-2b vol-3b
#                                                             (default: 9001 ... 9006)
#   VOLUME_RESP_PORTS  nodes' RESP ports, same order          (default: 6381 ... 6386)
#   TWEMPROXY_PORT, TWEMPROXY_STATS_PORT  twemproxy's own     (default: 22121, 22222)
#                      A port of 0 (or VOLUME_PORTS=0): a free port, chosen at the
#                      first start and kept; `status` shows them.
#   GATEWAY_TLS_CERT, GATEWAY_TLS_KEY   the gateway's certificate and key (PEM);
#                      unset: a self-signed one in $CLUSTER_DIR/tls (scripts/tls-cert.sh)
#   MIN_REPLICA_ACKS   on the primaries                       (default: REPLICAS)
#   SYNC_MODE, LOG_LEVEL, AUTH_TOKEN, REPLICA_ACK_TIMEOUT_MS, SEGMENT_SIZE_MB,
#   THREADS, COMPRESSION, MAX_REQUEST_SIZE_MB, COMPACTION_THRESHOLD,
#   COMPACTION_INTERVAL_SECS, SHUTDOWN_GRACE_SECS   passed to every volume-server
# Not kept (tools of this machine):
#   BUILD          build directory with volume-server     (default: build)
#   NGINX          the nginx binary                       (default: nginx on PATH, or /usr/sbin/nginx)
#   NUTCRACKER     twemproxy                              (default: nutcracker on PATH, or /usr/sbin/nutcracker)
#   START_TIMEOUT  seconds to wait for each process       (default: 30)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-cluster}
BUILD=${BUILD:-build}
START_TIMEOUT=${START_TIMEOUT:-30}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
NUTCRACKER=${NUTCRACKER:-$(command -v nutcracker || echo /usr/sbin/nutcracker)}
SHARDS=3

dir=$(realpath -m -- "$CLUSTER_DIR")
[[ $BUILD == /* ]] || BUILD="$root/$BUILD"
env_file=$dir/cluster.env
topology=$dir/topology
ng=$dir/gateway

settings=(GATEWAY_PORT GATEWAY_RESP_PORT REPLICAS VOLUME_PORTS VOLUME_RESP_PORTS
    TWEMPROXY_PORT TWEMPROXY_STATS_PORT GATEWAY_TLS_CERT GATEWAY_TLS_KEY MIN_REPLICA_ACKS
    SYNC_MODE LOG_LEVEL AUTH_TOKEN REPLICA_ACK_TIMEOUT_MS SEGMENT_SIZE_MB THREADS COMPRESSION
    MAX_REQUEST_SIZE_MB COMPACTION_THRESHOLD COMPACTION_INTERVAL_SECS SHUTDOWN_GRACE_SECS)
port_settings=" GATEWAY_PORT GATEWAY_RESP_PORT VOLUME_PORTS VOLUME_RESP_PORTS TWEMPROXY_PORT TWEMPROXY_STATS_PORT "

say() { echo "cluster: $*" >&2; }
die() {
    say "$*"
    exit 1
}

# the comment at the top of this file, from its second line to `set -e`
usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# true when a port setting's value asks for free ports ("0", "0 0 0", ...)
any_port() { [[ -n $1 && -z ${1//[0 ]/} ]]; }

# Reads the settings kept in cluster.env; a setting given again with another
# value is an error, so that a node never comes back on other ports (or with
# other settings) than the gateway was configured for.
load_settings() {
    local line name value
    while IFS= read -r line; do
        name=${line%%=*} value=${line#*=}
        if [[ -v $name && ${!name} != "$value" ]]; then
            if [[ $port_settings == *" $name "* ]] && any_port "${!name}"; then
                :
            else
                die "$name=${!name}, but the cluster in $dir was created with $name=${value:-(unset)}; unset it, or use another CLUSTER_DIR"
            fi
        fi
        if [[ -n $value ]]; then
            export "$name=$value"
        else
            unset "$name"
        fi
    done <"$env_file"
}

# n free TCP ports on 127.0.0.1, distinct (see scripts/free_ports.py)
free_ports() { python3 "$root/scripts/free_ports.py" "$1"; }

# The first start: the settings with their defaults, free ports chosen, the
# topology (every node, its shard, role and addresses) and the certificate.
create_cluster() {
    local n i j shard node ports resp free
    REPLICAS=${REPLICAS:-1}
    [[ $REPLICAS == 0 || $REPLICAS == 1 ]] || die "REPLICAS=$REPLICAS: 0 or 1"
    n=$((SHARDS * (REPLICAS + 1)))
    GATEWAY_PORT=${GATEWAY_PORT:-9000}
    GATEWAY_RESP_PORT=${GATEWAY_RESP_PORT:-6379}
    TWEMPROXY_PORT=${TWEMPROXY_PORT:-22121}
    TWEMPROXY_STATS_PORT=${TWEMPROXY_STATS_PORT:-22222}
    VOLUME_PORTS=${VOLUME_PORTS:-$(seq -s ' ' 9001 $((9000 + n)))}
    VOLUME_RESP_PORTS=${VOLUME_RESP_PORTS:-$(seq -s ' ' 6381 $((6380 + n)))}
    MIN_REPLICA_ACKS=${MIN_REPLICA_ACKS:-$REPLICAS}
    # every port asked for as 0 from one choice, so that no two are the same
    read -r -a free <<<"$(free_ports $((2 * n + 4)))"
    any_port "$VOLUME_PORTS" && VOLUME_PORTS=${free[*]:0:n}
    any_port "$VOLUME_RESP_PORTS" && VOLUME_RESP_PORTS=${free[*]:n:n}
    [[ $GATEWAY_PORT == 0 ]] && GATEWAY_PORT=${free[2 * n]}
    [[ $GATEWAY_RESP_PORT == 0 ]] && GATEWAY_RESP_PORT=${free[2 * n + 1]}
    [[ $TWEMPROXY_PORT == 0 ]] && TWEMPROXY_PORT=${free[2 * n + 2]}
    [[ $TWEMPROXY_STATS_PORT == 0 ]] && TWEMPROXY_STATS_PORT=${free[2 * n + 3]}
    read -r -a ports <<<"$VOLUME_PORTS"
    read -r -a resp <<<"$VOLUME_RESP_PORTS"
    [[ ${#ports[@]} -eq $n && ${#resp[@]} -eq $n ]] ||
        die "VOLUME_PORTS and VOLUME_RESP_PORTS need $n ports each (vol-1a vol-2a vol-3a vol-1b ...), or 0"
    if [[ -z ${GATEWAY_TLS_CERT:-} ]]; then
        [[ -z ${GATEWAY_TLS_KEY:-} ]] || die "GATEWAY_TLS_KEY without GATEWAY_TLS_CERT"
        "$root/scripts/tls-cert.sh" "$dir/tls"
        GATEWAY_TLS_CERT=$dir/tls/gateway.crt GATEWAY_TLS_KEY=$dir/tls/gateway.key
    fi
    [[ -r $GATEWAY_TLS_CERT && -r ${GATEWAY_TLS_KEY:-} ]] ||
        die "cannot read GATEWAY_TLS_CERT ($GATEWAY_TLS_CERT) and GATEWAY_TLS_KEY (${GATEWAY_TLS_KEY:-unset})"
    GATEWAY_TLS_CERT=$(realpath -- "$GATEWAY_TLS_CERT") GATEWAY_TLS_KEY=$(realpath -- "$GATEWAY_TLS_KEY")
    mkdir -p "$dir"
    {
        echo "# NODE SHARD ROLE HTTP_ADDR RESP_ADDR: scripts/cluster.sh promote changes the roles"
        # the ports: the primaries' first (vol-1a vol-2a vol-3a), then the replicas'
        for ((i = 1; i <= SHARDS; i++)); do
            shard=shard-$i
            echo "vol-${i}a $shard primary 127.0.0.1:${ports[i - 1]} 127.0.0.1:${resp[i - 1]}"
            if [[ $REPLICAS == 1 ]]; then
                j=$((SHARDS + i - 1))
                echo "vol-${i}b $shard replica 127.0.0.1:${ports[j]} 127.0.0.1:${resp[j]}"
            fi
        done
    } >"$topology"
    (
        umask 077
        for name in "${settings[@]}"; do
            [[ ${!name:-} != *$'\n'* ]] || die "$name holds a line break"
            echo "$name=${!name:-}"
        done >"$env_file"
    )
    load_settings
    say "new cluster in $dir (settings: $env_file)"
}

# true while pid $1 runs (a zombie waiting for its reaper counts as gone)
alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
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

# waits until URL $1 answers 200 (curl options in $3...), while pid $2 lives
wait_http() {
    local url=$1 pid=$2 deadline=$((SECONDS + START_TIMEOUT))
    shift 2
    until curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; do
        alive "$pid" || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# waits until 127.0.0.1:$1 accepts connections, while pid $2 lives
wait_port() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        alive "$2" || return 1
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

# "NODE SHARD ROLE HTTP RESP" of node $1 from the topology
node_line() { grep -E "^$1 " "$topology"; }
nodes() { grep -v '^#' "$topology" | cut -d' ' -f1; }
# HTTP address of shard $1's primary
primary_of() { awk -v s="$1" '$2 == s && $3 == "primary" { print $4 }' "$topology"; }

start_node() {
    local node shard role http resp pid log extra=()
    read -r node shard role http resp < <(node_line "$1")
    if pid=$(running_pid "$dir/run/$node.pid" volume-server); then
        return 0
    fi
    [[ -x $BUILD/volume-server ]] || die "no $BUILD/volume-server: run make build (or set BUILD)"
    mkdir -p "$dir/data/$node" "$dir/logs" "$dir/run"
    log=$dir/logs/$node.log
    if [[ $role == replica ]]; then
        # A replica acknowledges nothing itself; promoted, it takes writes at
        # once, with no replica to wait for until one follows it.
        extra=(REPLICA_OF="$(primary_of "$shard")" MIN_REPLICA_ACKS=0)
    fi
    env HOST=127.0.0.1 PORT="${http##*:}" RESP_PORT="${resp##*:}" VOLUME_ID="$node" \
        DATA_DIR="$dir/data/$node" "${extra[@]}" \
        nohup "$BUILD/volume-server" </dev/null >>"$log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/run/$node.pid"
    if ! wait_http "http://$http/health" "$pid"; then
        tail -n 20 "$log" >&2 || true
        die "$node (pid $pid) did not answer on $http/health"
    fi
    say "$node: $role of $shard on $http, RESP $resp (pid $pid)"
}

render() {
    mkdir -p "$ng" "$dir/logs"
    GATEWAY_LISTEN=127.0.0.1:$GATEWAY_PORT GATEWAY_RESP_LISTEN=127.0.0.1:$GATEWAY_RESP_PORT \
        TWEMPROXY_LISTEN=127.0.0.1:$TWEMPROXY_PORT TLS_CERT=$GATEWAY_TLS_CERT TLS_KEY=$GATEWAY_TLS_KEY \
        ERROR_LOG=$dir/logs/nginx-error.log ACCESS_LOG=$dir/logs/nginx-access.log \
        "$root/deploy/render-gateway.sh" "$topology" "$ng"
}

gateway_curl() { curl --cacert "$GATEWAY_TLS_CERT" "$@"; }

start_gateway() {
    local pid
    if pid=$(running_pid "$ng/nginx.pid" nginx); then
        return 0
    fi
    [[ -x $NGINX ]] || die "no nginx ($NGINX): scripts/install-deps.sh installs it"
    render
    # A private prefix, pid file and logs: no system nginx state is touched.
    # (-e: the error log before the configuration is read.)
    "$NGINX" -p "$ng" -c "$ng/nginx.conf" -e "$dir/logs/nginx-error.log" -g 'daemon on;' ||
        die "nginx did not start (see $dir/logs/nginx-error.log)"
    pid=$(running_pid "$ng/nginx.pid" nginx) || die "nginx wrote no pid file"
    # /health answers 503 while a shard is down: any answer will do here
    local deadline=$((SECONDS + START_TIMEOUT))
    until gateway_curl -sS -o /dev/null --max-time 2 "https://127.0.0.1:$GATEWAY_PORT/health" 2>/dev/null; do
        ((SECONDS < deadline)) || die "the gateway did not answer on https://127.0.0.1:$GATEWAY_PORT"
        sleep 0.1
    done
    say "gateway on https://127.0.0.1:$GATEWAY_PORT, RESP (TLS) on 127.0.0.1:$GATEWAY_RESP_PORT (nginx pid $pid)"
}

# Renders the configuration again and reloads nginx; returns once the
# gateway answers with it: its /health names node $1 as the primary of shard $2.
reload_gateway() {
    local pid deadline=$((SECONDS + START_TIMEOUT))
    render
    pid=$(running_pid "$ng/nginx.pid" nginx) || return 0
    "$NGINX" -p "$ng" -c "$ng/nginx.conf" -e "$dir/logs/nginx-error.log" -t -q ||
        die "the new gateway configuration does not load (see $dir/logs/nginx-error.log)"
    kill -HUP "$pid"
    until gateway_curl -sS --max-time 5 "https://127.0.0.1:$GATEWAY_PORT/health" 2>/dev/null |
        grep -q "\"name\":\"$1\",\"shard\":\"$2\",\"role\":\"primary\""; do
        ((SECONDS < deadline)) || die "the gateway did not take its new configuration (see $dir/logs/nginx-error.log)"
        sleep 0.1
    done
}

start_twemproxy() {
    local pid
    if pid=$(running_pid "$dir/run/twemproxy.pid" nutcracker); then
        return 0
    fi
    [[ -x $NUTCRACKER ]] || die "no twemproxy ($NUTCRACKER): scripts/install-deps.sh installs nutcracker"
    render
    mkdir -p "$dir/run"
    "$NUTCRACKER" -d -c "$ng/nutcracker.yml" -o "$dir/logs/twemproxy.log" -p "$dir/run/twemproxy.pid" \
        -a 127.0.0.1 -s "$TWEMPROXY_STATS_PORT" ||
        die "twemproxy did not start (see $dir/logs/twemproxy.log)"
    local deadline=$((SECONDS + START_TIMEOUT))
    until pid=$(running_pid "$dir/run/twemproxy.pid" nutcracker); do
        ((SECONDS < deadline)) || die "twemproxy wrote no pid file (see $dir/logs/twemproxy.log)"
        sleep 0.1
    done
    wait_port "$TWEMPROXY_PORT" "$pid" || die "twemproxy does not listen on 127.0.0.1:$TWEMPROXY_PORT"
    say "twemproxy on 127.0.0.1:$TWEMPROXY_PORT (pid $pid)"
}

stop_one() {
    local pid pidfile=$dir/run/$1.pid what=volume-server
    case $1 in
    gateway) pidfile=$ng/nginx.pid what=nginx ;;
    twemproxy) what=nutcracker ;;
    esac
    if pid=$(running_pid "$pidfile" "$what"); then
        stop_pid "$pid" || return 1
        say "$1 stopped"
    fi
    [[ $1 == gateway ]] || rm -f "$pidfile"
}

stop_all() {
    local rc=0 node
    stop_one gateway || rc=1
    stop_one twemproxy || rc=1
    for node in $(nodes); do
        stop_one "$node" || rc=1
    done
    return $rc
}

status() {
    local rc=0 node shard role http resp pid
    while read -r node shard role http resp; do
        [[ $node == \#* ]] && continue
        pid=$(running_pid "$dir/run/$node.pid" volume-server) || {
            pid=stopped
            rc=3
        }
        printf '%-10s %-8s %-21s %-21s %s\n' "$node" "$role" "$http" "$resp" "$pid"
    done <"$topology"
    pid=$(running_pid "$ng/nginx.pid" nginx) || {
        pid=stopped
        rc=3
    }
    printf '%-10s %-8s %-21s %-21s %s\n' gateway gateway "127.0.0.1:$GATEWAY_PORT" "127.0.0.1:$GATEWAY_RESP_PORT" "$pid"
    pid=$(running_pid "$dir/run/twemproxy.pid" nutcracker) || {
        pid=stopped
        rc=3
    }
    printf '%-10s %-8s %-21s %-21s %s\n' twemproxy proxy - "127.0.0.1:$TWEMPROXY_PORT" "$pid"
    return $rc
}

promote() {
    local node shard role http resp old
    node_line "$1" >/dev/null || die "no node $1 ($(nodes | tr '\n' ' '))"
    read -r node shard role http resp < <(node_line "$1")
    [[ $role == replica ]] || die "$node is already the primary of $shard"
    old=$(awk -v s="$shard" '$2 == s && $3 == "primary" { print $1 }' "$topology")
    # The old primary must take no more writes: it rejoins as a replica.
    stop_one "$old"
    curl -fsS -o /dev/null --max-time 10 -X POST ${AUTH_TOKEN:+-H "Authorization: Bearer $AUTH_TOKEN"} \
        "http://$http/admin/promote" || die "$node did not accept POST /admin/promote"
    awk -v s="$shard" -v n="$node" '$2 == s { $3 = ($1 == n) ? "primary" : "replica" } { print }' \
        "$topology" >"$topology.tmp"
    mv "$topology.tmp" "$topology"
    reload_gateway "$node" "$shard"
    stop_one twemproxy
    start_twemproxy
    say "$node is the primary of $shard; the gateway writes to $http. Start $old to rejoin as its replica."
}

cmd=${1:-}
case $cmd in
help | -h | --help)
    usage
    exit 0
    ;;
start | stop | status | promote) ;;
*)
    [[ -z $cmd ]] || say "unknown command: $cmd"
    usage >&2
    exit 2
    ;;
esac
if [[ -f $env_file ]]; then
    load_settings
elif [[ $cmd == start ]]; then
    create_cluster
else
    say "no cluster in $dir (scripts/cluster.sh start creates one)"
    [[ $cmd == status ]] && exit 3 # as for a cluster that is not running
    exit 1
fi

case $cmd in
start)
    if [[ -n ${2:-} ]]; then
        case $2 in
        gateway) start_gateway ;;
        twemproxy) start_twemproxy ;;
        *)
            node_line "$2" >/dev/null || die "no node $2 ($(nodes | tr '\n' ' '))"
            start_node "$2"
            ;;
        esac
    else
        for node in $(nodes); do start_node "$node"; done
        start_twemproxy
        start_gateway
    fi
    ;;
stop)
    if [[ -n ${2:-} ]]; then
        [[ $2 == gateway || $2 == twemproxy ]] || node_line "$2" >/dev/null ||
            die "no node $2 ($(nodes | tr '\n' ' ') gateway twemproxy)"
        stop_one "$2"
    else
        stop_all
    fi
    ;;
status) status ;;
promote)
    [[ -n ${2:-} ]] || die "promote NAME: which replica"
    promote "$2"
    ;;
esac
