#!/usr/bin/env bash
# Entry point of the gateway image: renders the configuration from the shared
# template (deploy/render-gateway.sh) and runs nginx, or twemproxy, in the
# foreground as PID 1.
#
#   gateway-entrypoint.sh [gateway]     nginx: HTTPS on 9000, RESP over TLS on 6379
#   gateway-entrypoint.sh twemproxy     twemproxy on TWEMPROXY_ADDR's port
#   gateway-entrypoint.sh promote NODE  in the running gateway (docker-compose exec):
#                                       replica NODE becomes its shard's primary
#                                       (POST /admin/promote, the topology, nginx
#                                       reloaded); deploy/compose-promote.sh runs it
#
# Environment:
#   GATEWAY_TOPOLOGY   the first topology: "NODE SHARD ROLE HTTP_ADDR RESP_ADDR; ..."
#   TWEMPROXY_ADDR     twemproxy's HOST:PORT (the gateway's RESP upstream)
#   GATEWAY_PORT, GATEWAY_RESP_PORT   what nginx listens on (default 9000, 6379)
#   GATEWAY_TLS_CERT, GATEWAY_TLS_KEY (default /etc/gateway/tls/gateway.crt, .key)
#   AUTH_TOKEN         the volumes' token, for POST /admin/promote
# The topology is kept in /var/lib/gateway/topology (a volume the gateway and
# twemproxy share): written from GATEWAY_TOPOLOGY when it is not there yet.
set -euo pipefail
here=$(dirname "$0")
run=/run/gateway
state=/var/lib/gateway/topology
mode=${1:-gateway}

if [[ ! -s $state ]]; then
    : "${GATEWAY_TOPOLOGY:?set GATEWAY_TOPOLOGY to NODE SHARD ROLE HTTP_ADDR RESP_ADDR; ...}"
    tr ';' '\n' <<<"$GATEWAY_TOPOLOGY" | sed 's/^ *//; /^$/d' >"$state.tmp.$$"
    mv "$state.tmp.$$" "$state"
fi
export GATEWAY_LISTEN=${GATEWAY_PORT:-9000} GATEWAY_RESP_LISTEN=${GATEWAY_RESP_PORT:-6379}
export TWEMPROXY_LISTEN=${TWEMPROXY_ADDR:?set TWEMPROXY_ADDR to HOST:PORT}
export TLS_CERT=${GATEWAY_TLS_CERT:-/etc/gateway/tls/gateway.crt}
export TLS_KEY=${GATEWAY_TLS_KEY:-/etc/gateway/tls/gateway.key}
export ERROR_LOG=/dev/stderr ACCESS_LOG=/dev/stdout
fail() {
    echo "gateway: $*" >&2
    exit 1
}

# Replica $1 becomes the primary of its shard. The old primary must be
# stopped first (it would go on taking writes sent to it directly); started
# again, it follows the new one (deploy/node-entrypoint.sh reads the topology).
promote() {
    local node shard role http old old_http deadline=$((SECONDS + 30))
    read -r node shard role http _ < <(grep -E "^$1 " "$state") || fail "no node $1 in $state"
    [[ $role == replica ]] || fail "$node is already the primary of $shard"
    read -r old _ _ old_http _ < <(awk -v s="$shard" '$2 == s && $3 == "primary"' "$state")
    if curl -fsS -o /dev/null --max-time 2 "http://$old_http/health" 2>/dev/null; then
        fail "$old, the primary of $shard, still answers: stop it first (docker-compose stop $old)"
    fi
    curl -fsS -o /dev/null --max-time 10 -X POST ${AUTH_TOKEN:+-H "Authorization: Bearer $AUTH_TOKEN"} \
        "http://$http/admin/promote" || fail "$node did not accept POST /admin/promote"
    awk -v s="$shard" -v n="$node" '$2 == s { $3 = ($1 == n) ? "primary" : "replica" } { print }' \
        "$state" >"$state.tmp.$$"
    mv "$state.tmp.$$" "$state"
    "$here/render-gateway.sh" "$state" "$run"
    nginx -p "$run" -c "$run/nginx.conf" -e /dev/stderr -s reload
    # returns once the gateway answers with the new configuration
    until curl -sS --max-time 5 --cacert "$TLS_CERT" "https://127.0.0.1:$GATEWAY_LISTEN/health" 2>/dev/null |
        grep -q "\"name\":\"$node\",\"shard\":\"$shard\",\"role\":\"primary\""; do
        ((SECONDS < deadline)) || fail "nginx did not take the new configuration"
        sleep 0.2
    done
    echo "gateway: $node is the primary of $shard; restart twemproxy, then start $old to rejoin as its replica" >&2
}

if [[ $mode == promote ]]; then
    promote "${2:?promote NODE}"
    exit 0
fi
"$here/render-gateway.sh" "$state" "$run"

case $mode in
gateway)
    exec nginx -p "$run" -c "$run/nginx.conf" -e /dev/stderr -g 'daemon off;'
    ;;
twemproxy)
    # twemproxy listens on every interface of its container, at TWEMPROXY_ADDR's port
    sed -i "s/^  listen: .*/  listen: 0.0.0.0:${TWEMPROXY_LISTEN##*:}/" "$run/nutcracker.yml"
    exec nutcracker -c "$run/nutcracker.yml" -o /dev/stderr -a 127.0.0.1 -s 22222
    ;;
*)
    echo "gateway-entrypoint: unknown mode $mode (gateway, twemproxy, promote NODE)" >&2
    exit 2
    ;;
esac
