#!/usr/bin/env bash
# Entry point of the gateway image: renders the nginx configuration from the
# shared template and runs nginx in the foreground as PID 1.
#   GATEWAY_PORT     port to listen on (default 9000)
#   GATEWAY_VOLUMES  "NAME=HOST:PORT ..." of the volumes
set -euo pipefail
here=$(dirname "$0")
run=/run/gateway
read -r -a volumes <<<"${GATEWAY_VOLUMES:?set GATEWAY_VOLUMES to NAME=HOST:PORT ...}"
"$here/render-gateway.sh" "$here/nginx.conf.template" "$run/nginx.conf" \
    "${GATEWAY_PORT:-9000}" "$run" /dev/stderr /dev/stdout "${volumes[@]}"
exec nginx -p "$run" -c "$run/nginx.conf" -e /dev/stderr -g 'daemon off;'
