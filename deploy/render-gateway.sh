#!/usr/bin/env bash
# Renders the gateway's configuration from a topology: nginx's (from
# deploy/nginx.conf.template) and twemproxy's.
#
#   deploy/render-gateway.sh TOPOLOGY OUT_DIR
#
# TOPOLOGY is a file, one node a line ("#" starts a comment):
#   NODE SHARD ROLE HTTP_ADDR RESP_ADDR
#   vol-1a shard-1 primary 127.0.0.1:9001 127.0.0.1:6381
#   vol-1b shard-1 replica 127.0.0.1:9002 127.0.0.1:6382
# Each shard has exactly one primary (writes, and reads first) and any number
# of replicas (reads when the primary does not answer).
#
# Writes OUT_DIR/nginx.conf, OUT_DIR/gateway.js (deploy/gateway.js with the
# shards' names) and OUT_DIR/nutcracker.yml. OUT_DIR is nginx's run directory
# too (pid file, temporary files).
# Environment:
#   GATEWAY_LISTEN       the HTTPS gateway, e.g. 127.0.0.1:9000 or 9000
#   GATEWAY_RESP_LISTEN  the RESP gateway over TLS, e.g. 127.0.0.1:6379
#   TWEMPROXY_LISTEN     where twemproxy listens (HOST:PORT): the RESP gateway's upstream
#   TLS_CERT, TLS_KEY    the gateway's certificate (chain) and key, PEM files
#   ERROR_LOG            file (or /dev/stderr) for nginx's error log
#   ACCESS_LOG           file, /dev/stdout or "off"                 (default: off)
#   TWEMPROXY_TIMEOUT_MS twemproxy's wait for a shard's answer      (default: 10000)
#   MODULES_DIR          nginx's dynamic modules                    (default: /usr/lib/nginx/modules)
#
# Used by scripts/cluster.sh and by the gateway image (deploy/gateway-entrypoint.sh),
# so that both deployments run the same gateway.
set -euo pipefail

usage() { sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; }
if [[ $# -ne 2 ]]; then
    usage
    exit 2
fi
topology=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
fail() {
    echo "render-gateway: $*" >&2
    exit 2
}
for v in GATEWAY_LISTEN GATEWAY_RESP_LISTEN TWEMPROXY_LISTEN TLS_CERT TLS_KEY ERROR_LOG; do
    [[ -n ${!v:-} ]] || fail "set $v"
done
access_log=${ACCESS_LOG:-off}
[[ $access_log == off ]] || access_log="$access_log combined"
out=$(realpath -m -- "$out")

name_re='^[A-Za-z0-9._-]+$' addr_re='^[A-Za-z0-9._-]+:[0-9]+$'
shards=() nodes=()
declare -A primary=() replicas=() resp_of=()
while read -r node shard role http resp extra || [[ -n ${node:-} ]]; do
    [[ -z ${node:-} || $node == \#* ]] && continue
    [[ -z ${extra:-} && $node =~ $name_re && $shard =~ $name_re && $http =~ $addr_re && ${resp:-} =~ $addr_re ]] ||
        fail "$topology: bad line '$node $shard $role $http $resp $extra' (want NODE SHARD ROLE HTTP_ADDR RESP_ADDR)"
    [[ -v "primary[$shard]" || -v "replicas[$shard]" ]] || shards+=("$shard")
    case $role in
    primary)
        [[ -z ${primary[$shard]:-} ]] || fail "$topology: shard $shard has two primaries"
        primary[$shard]=$http
        resp_of[$shard]=$resp
        ;;
    replica) replicas[$shard]+="$http " ;;
    *) fail "$topology: $node: role '$role' (want primary or replica)" ;;
    esac
    nodes+=("$node $shard $role $http")
done <"$topology"
[[ ${#shards[@]} -gt 0 ]] || fail "$topology: no nodes"

shards_json="" upstreams="" lists="" healths="" locations="" node_list=""
for s in "${shards[@]}"; do
    [[ -n ${primary[$s]:-} ]] || fail "$topology: shard $s has no primary"
    shards_json+="${shards_json:+, }\"$s\""
    upstreams+="    upstream $s-read {"$'\n'
    upstreams+="        server ${primary[$s]} max_fails=1 fail_timeout=5s;"$'\n'
    for r in ${replicas[$s]:-}; do
        upstreams+="        server $r backup max_fails=1 fail_timeout=5s;"$'\n'
    done
    upstreams+="        keepalive 16;"$'\n'"    }"$'\n'
    upstreams+="    upstream $s-write {"$'\n'
    upstreams+="        server ${primary[$s]};"$'\n'
    upstreams+="        keepalive 16;"$'\n'"    }"$'\n'
    lists+="        location = /_list/$s {
            internal;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_pass http://$s-read/blobs\$is_args\$args;
        }
"
done
for n in "${nodes[@]}"; do
    read -r node shard role http <<<"$n"
    healths+="        location = /_health/$node {
            internal;
            proxy_connect_timeout 1s;
            proxy_read_timeout 3s;
            proxy_pass http://$http/health;
        }
"
    locations+="        location /$node/ {
            add_header X-Volume-Addr \$upstream_addr always;
            proxy_pass http://$http/;
        }
"
    node_list+="${node_list:+; }$node $shard $role $http"
done

mkdir -p "$out"
tmp="$out/nginx.conf.tmp.$$"
while IFS= read -r line || [[ -n $line ]]; do
    case "$line" in
    @SHARD_UPSTREAMS@) printf '%s' "$upstreams" ;;
    @LIST_LOCATIONS@) printf '%s' "$lists" ;;
    @HEALTH_LOCATIONS@) printf '%s' "$healths" ;;
    @NODE_LOCATIONS@) printf '%s' "$locations" ;;
    *)
        line=${line//@MODULES_DIR@/${MODULES_DIR:-/usr/lib/nginx/modules}}
        line=${line//@JS_FILE@/$here/gateway.js}
        line=${line//@LISTEN@/$GATEWAY_LISTEN}
        line=${line//@RESP_LISTEN@/$GATEWAY_RESP_LISTEN}
        line=${line//@TWEMPROXY_ADDR@/$TWEMPROXY_LISTEN}
        line=${line//@TLS_CERT@/$TLS_CERT}
        line=${line//@TLS_KEY@/$TLS_KEY}
        line=${line//@RUN_DIR@/$out}
        line=${line//@ERROR_LOG@/$ERROR_LOG}
        line=${line//@ACCESS_LOG@/$access_log}
        line=${line//@NODE_LIST@/$node_list}
        printf '%s\n' "$line"
        ;;
    esac
done <"$here/nginx.conf.template" >"$tmp"
mv "$tmp" "$out/nginx.conf"
# twemproxy's ketama ring (nc_ketama.c): for each shard, with equal weights,
# 40 MD5 digests of "NAME-i", four points each (the digest's little-endian
# 32-bit words); deploy/gateway.js looks keys up in it.
ring=$(for i in "${!shards[@]}"; do
    for ((p = 0; p < 40; p++)); do
        d=$(printf '%s-%d' "${shards[$i]}" "$p" | md5sum)
        for ((w = 0; w < 4; w++)); do
            o=$((w * 8))
            echo "$((16#${d:o+6:2}${d:o+4:2}${d:o+2:2}${d:o:2})) $i"
        done
    done
done | sort -n -k1,1)
ring_at=$(cut -d' ' -f1 <<<"$ring" | paste -sd,)
ring_shard=$(cut -d' ' -f2 <<<"$ring" | paste -sd,)
sed -e "s/@SHARDS_JSON@/[$shards_json]/" -e "s/@RING_AT@/[$ring_at]/" -e "s/@RING_SHARD@/[$ring_shard]/" \
    "$here/gateway.js" >"$out/gateway.js.tmp.$$"
mv "$out/gateway.js.tmp.$$" "$out/gateway.js"

# twemproxy: ketama over the shards' names (the server's name after its
# address) with MD5, the ring deploy/gateway.js builds for HTTP, so a key's
# shard is the same over both protocols and does not change when another node
# of the shard becomes its primary. Hosts are never ejected: a shard's keys
# never move.
{
    echo "# Rendered by deploy/render-gateway.sh from $topology: do not edit."
    echo "kv:"
    echo "  listen: $TWEMPROXY_LISTEN"
    echo "  redis: true"
    echo "  hash: md5"
    echo "  distribution: ketama"
    echo "  auto_eject_hosts: false"
    echo "  timeout: ${TWEMPROXY_TIMEOUT_MS:-10000}"
    echo "  servers:"
    for s in "${shards[@]}"; do
        echo "    - ${resp_of[$s]}:1 $s"
    done
} >"$out/nutcracker.yml.tmp.$$"
mv "$out/nutcracker.yml.tmp.$$" "$out/nutcracker.yml"
