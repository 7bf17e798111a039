#!/usr/bin/env bash
# Promotes a replica of the compose cluster to its shard's primary:
#
#   deploy/compose-promote.sh NODE      e.g. vol-2b, after vol-2a was lost
#
# 1. the gateway (docker-compose exec): checks that the old primary no longer
#    answers, POST /admin/promote to NODE, writes the topology in the
#    gateway-state volume, reloads nginx: writes of the shard go to NODE;
# 2. restarts twemproxy with the new topology (RESP clients reconnect).
# Then start the old primary (docker-compose start vol-2a): it reads the
# topology and follows NODE as its replica. COMPOSE names the compose command
# (default: docker-compose, or docker compose).
set -euo pipefail
[[ $# -eq 1 ]] || {
    sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}
compose=${COMPOSE:-$(command -v docker-compose >/dev/null && echo docker-compose || echo "docker compose")}
cd "$(dirname "$0")/.."
$compose exec -T gateway /etc/gateway/gateway-entrypoint.sh promote "$1"
$compose restart twemproxy
