#!/usr/bin/env bash
# Entry point of the gateway image: renders the configuration from the shared
# template (deploy/render-gateway.sh) and runs nginx, or twemproxy, in the
# foreground as PID 1.
#
#   gateway-entrypoint.sh [gateway]     nginx: HTTPS on 9000, RESP over TLS on 6379
#   gateway-entrypoint.sh twemproxy     twemproxy on TWEMPROXY_ADDR's port
#
# Environment:
#   GATEWAY_TOPOLOGY   the first topology: "NODE SHARD ROLE HTTP_ADDR RESP_ADDR; ..."
#   TWEMPROXY_ADDR     twemproxy's HOST:PORT (the gateway's RESP upstream)
#   GATEWAY_PORT, GATEWAY_RESP_PORT   what nginx listens on (default 9000, 6379)
#   GATEWAY_TLS_CERT, GATEWAY_TLS_KEY (default /etc/gateway/tls/gateway.crt, .key)
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
    echo "gateway-entrypoint: unknown mode $mode (gateway, twemproxy)" >&2
    exit 2
    ;;
esac
