#!/usr/bin/env bash
# Renders deploy/nginx.conf.template into an nginx configuration.
#
#   deploy/render-gateway.sh TEMPLATE OUTPUT LISTEN RUN_DIR ERROR_LOG ACCESS_LOG NAME=HOST:PORT...
#
#   LISTEN       what nginx listens on, e.g. 127.0.0.1:9000 or 9000
#   RUN_DIR      a directory nginx may write: pid file and temporary files
#   ERROR_LOG    file (or /dev/stderr) for nginx's error log
#   ACCESS_LOG   file, /dev/stdout or "off"
#   NAME=ADDR    one per volume, e.g. vol-1=127.0.0.1:9001 or vol-1=vol-1:9002
#
# Used by scripts/cluster.sh and by the gateway image (deploy/gateway-entrypoint.sh),
# so that both deployments run the same gateway.
set -euo pipefail

if [[ $# -lt 7 ]]; then
    sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
fi
template=$1 output=$2 listen=$3 run_dir=$4 error_log=$5 access_log=$6
shift 6

servers="" locations="" names=""
for vol in "$@"; do
    name=${vol%%=*} addr=${vol#*=}
    if [[ ! $name =~ ^[A-Za-z0-9._-]+$ || ! $addr =~ ^[A-Za-z0-9._:-]+:[0-9]+$ || $vol != *=* ]]; then
        echo "render-gateway: bad volume '$vol' (want NAME=HOST:PORT)" >&2
        exit 2
    fi
    # max_fails=0: never take a volume out of the hash ring (its keys would
    # move to the other volumes while it is down).
    servers+="        server $addr max_fails=0;"$'\n'
    locations+="        location /$name/ {"$'\n'
    locations+="            proxy_pass http://$addr/;"$'\n'
    locations+="        }"$'\n'
    names+="${names:+ }$name"
done
[[ $access_log == off ]] || access_log="$access_log combined"

tmp="$output.tmp.$$"
while IFS= read -r line || [[ -n $line ]]; do
    case "$line" in
    @UPSTREAM_SERVERS@) printf '%s' "$servers" ;;
    @VOLUME_LOCATIONS@) printf '%s' "$locations" ;;
    *)
        line=${line//@LISTEN@/$listen}
        line=${line//@RUN_DIR@/$run_dir}
        line=${line//@ERROR_LOG@/$error_log}
        line=${line//@ACCESS_LOG@/$access_log}
        line=${line//@VOLUME_NAMES@/$names}
        printf '%s\n' "$line"
        ;;
    esac
done <"$template" >"$tmp"
mv "$tmp" "$output"
