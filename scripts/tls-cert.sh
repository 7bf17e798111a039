#!/usr/bin/env bash
# Makes a self-signed certificate for the gateway, for tests and local use:
#
#   scripts/tls-cert.sh DIR     writes DIR/gateway.crt and DIR/gateway.key
#
# The certificate names localhost and 127.0.0.1 (and GATEWAY_TLS_NAMES, e.g.
# "DNS:kv.example IP:10.0.0.5"), is its own authority (clients verify the
# gateway with it as their CA file) and is valid for 825 days. Nothing is
# done when both files exist. An operator provides a certificate of their own
# instead (GATEWAY_TLS_CERT, GATEWAY_TLS_KEY): see deploy/README.md.
set -euo pipefail
[[ $# -eq 1 ]] || {
    sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}
dir=$1
[[ -s $dir/gateway.crt && -s $dir/gateway.key ]] && exit 0
mkdir -p "$dir"
san="DNS:localhost,IP:127.0.0.1"
for n in ${GATEWAY_TLS_NAMES:-}; do san+=",$n"; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
    -subj "/CN=mini-kvstore gateway" -addext "subjectAltName=$san" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$dir/gateway.key.tmp" -out "$dir/gateway.crt.tmp" 2>/dev/null
mv "$dir/gateway.key.tmp" "$dir/gateway.key"
mv "$dir/gateway.crt.tmp" "$dir/gateway.crt"
echo "tls-cert: self-signed certificate $dir/gateway.crt (localhost, 127.0.0.1)" >&2
