#!/usr/bin/env bash
# make test-docker: the container image and the compose cluster, for real.
#
#  1. sets up the container runtime (scripts/container-setup.sh: rootful podman
#     with its Docker-compatible socket on machines without a Docker engine),
#  2. builds the images (docker-compose build),
#  3. starts the cluster on private 127.0.0.1 ports under its own project name,
#     with a self-signed certificate made for the run,
#  4. runs the cluster test (tests/e2e/test_cluster.py) against the gateway
#     (HTTPS and RESP over TLS, the certificate verified): kill -9 of a
#     primary (docker-compose kill), its replica promoted
#     (deploy/compose-promote.sh), the old primary started again as a replica,
#  5. checks that `docker stop` of a volume exits 0 and that its index
#     snapshot is on the named volume, and that the data survives down and up,
#  6. tears everything down (containers, network, volumes), also on failure.
#
# Prints the time of each step. Exit status 77 (and a SKIPPED line) when the
# container runtime cannot be set up here; never a silent pass.
set -euo pipefail
cd "$(dirname "$0")/.."

project=${KV_TEST_PROJECT:-kvtest$$}
export COMPOSE_PROJECT_NAME=$project
export KV_PUBLISH=127.0.0.1
export KV_SUBNET_PREFIX=${KV_SUBNET_PREFIX:-172.28.91}
export BUILDAH_FORMAT=docker  # podman keeps HEALTHCHECK only in the docker format
compose=${COMPOSE:-docker-compose}
if ! command -v "${compose%% *}" >/dev/null && docker compose version >/dev/null 2>&1; then
    compose="docker compose"
fi

say() { echo "test-docker: $*" >&2; }
step_start=$SECONDS
timings=()
step() {
    local now=$SECONDS
    [[ ${#timings[@]} -eq 0 && -z ${current:-} ]] || timings+=("$(printf '%-44s %4d s' "$current" $((now - step_start)))")
    current=$1
    step_start=$now
    say "== $1"
}
report() {
    step ""
    say "timings:"
    printf '  %s\n' "${timings[@]}" >&2
}

step "set up the container runtime"
rc=0
scripts/container-setup.sh || rc=$?
if [[ $rc -eq 77 ]]; then
    say "SKIPPED: the container runtime cannot be set up on this machine (see above)"
    exit 77
elif [[ $rc -ne 0 ]]; then
    say "FAILED: container runtime set-up (exit $rc)"
    exit 1
fi

read -r KV_GATEWAY_PORT KV_GATEWAY_RESP_PORT KV_VOL1_PORT KV_VOL2_PORT KV_VOL3_PORT \
    KV_VOL1B_PORT KV_VOL2B_PORT KV_VOL3B_PORT <<<"$(scripts/free_ports.py 8)"
export KV_GATEWAY_PORT KV_GATEWAY_RESP_PORT KV_VOL1_PORT KV_VOL2_PORT KV_VOL3_PORT \
    KV_VOL1B_PORT KV_VOL2B_PORT KV_VOL3B_PORT
# The gateway's certificate, made for this run; its key readable by the
# gateway's user in the container.
KV_TLS_DIR=$(mktemp -d)
export KV_TLS_DIR
scripts/tls-cert.sh "$KV_TLS_DIR"
chmod 755 "$KV_TLS_DIR"
chmod 644 "$KV_TLS_DIR/gateway.key"
ca=$KV_TLS_DIR/gateway.crt
gw=https://127.0.0.1:$KV_GATEWAY_PORT

teardown() {
    local rc=$?
    trap - EXIT
    if [[ $rc -ne 0 ]]; then
        say "FAILED (exit $rc); the containers' logs:"
        $compose logs --no-color --tail=30 >&2 || true
    fi
    step "tear down (down -v)"
    $compose down -v --remove-orphans >/dev/null || say "docker-compose down failed"
    rm -rf "$KV_TLS_DIR"
    report
    exit $rc
}
trap teardown EXIT

wait_health() {  # url, seconds
    local deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null --max-time 3 --cacert "$ca" "$1"; do
        ((SECONDS < deadline)) || {
            say "$1 did not answer within $2 s"
            return 1
        }
        sleep 0.5
    done
}
# every shard and node healthy, through the gateway (200 only then, or
# degraded: deploy/README.md), and each node's published port
wait_cluster() {
    local p
    wait_health "$gw/health" 60
    for p in "$KV_VOL1_PORT" "$KV_VOL2_PORT" "$KV_VOL3_PORT" "$KV_VOL1B_PORT" "$KV_VOL2B_PORT" "$KV_VOL3B_PORT"; do
        wait_health "http://127.0.0.1:$p/health" 60
    done
}
# a node's key count, through the gateway
keys_of() {
    curl -fsS --cacert "$ca" "$gw/$1/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"])'
}
container_of() { $compose ps -q "$1"; }

step "build the images (docker-compose build)"
$compose build

step "start the cluster (docker-compose up -d)"
$compose up -d
wait_cluster
# podman without systemd runs no healthchecks by itself: run the image's once.
if command -v podman >/dev/null; then
    for s in vol-1a vol-1b vol-2a vol-2b vol-3a vol-3b twemproxy gateway; do
        podman healthcheck run "$(container_of "$s")" || {
            say "HEALTHCHECK of $s failed"
            exit 1
        }
    done
    say "the images' HEALTHCHECKs pass"
fi

step "cluster test through the gateway"
KV_GATEWAY_URL=$gw KV_GATEWAY_RESP=127.0.0.1:$KV_GATEWAY_RESP_PORT KV_TLS_CA=$ca \
    KV_START_NODE="$compose start" \
    KV_KILL_NODE="$compose kill -s SIGKILL" \
    KV_PROMOTE_NODE="COMPOSE='$compose' deploy/compose-promote.sh" \
    KV_STOP_SAMPLE=${KV_STOP_SAMPLE:-12} KV_CLUSTER_BUDGET=600 \
    /usr/bin/python3 tests/e2e/test_cluster.py
# the test restarted a node: wait until its published port answers again
wait_cluster

step "docker stop of a volume: exit 0, snapshot saved"
keys_before=$(keys_of vol-3a)
c3=$(container_of vol-3a)
docker stop "$c3" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$c3")
[[ $code == 0 ]] || {
    say "vol-3a exited with $code after docker stop"
    exit 1
}
docker logs "$c3" 2>&1 | grep -q "snapshot saved" || {
    say "vol-3a's log does not say the snapshot was saved"
    exit 1
}
ls_data=$(docker run --rm --entrypoint ls -v "${project}_vol-3a-data:/data" mini-kvstore:latest -l /data/store)
grep -q index.snapshot <<<"$ls_data" || {
    say "no index.snapshot on vol-3a's volume: $ls_data"
    exit 1
}
say "vol-3a: exit 0, snapshot on its volume ($keys_before keys)"

step "down, up: the data is still there"
sums_before=$(for n in vol-1a vol-2a; do keys_of "$n"; done)
$compose down
$compose up -d
wait_cluster
sums_after=$(for n in vol-1a vol-2a; do keys_of "$n"; done)
keys_after=$(keys_of vol-3a)
[[ $sums_before == "$sums_after" && $keys_before == "$keys_after" ]] || {
    say "keys before down: $sums_before $keys_before, after up: $sums_after $keys_after"
    exit 1
}
# one blob read through the gateway after the restart
body=$(curl -fsS --cacert "$ca" "$gw/blobs/cluster/user:7/photo%207.jpg")
[[ $body == "blob 7 "* ]] || {
    say "a blob read after down/up differs: $body"
    exit 1
}
say "keys after down/up: $(echo "$sums_after" | tr '\n' ' ')$keys_after (unchanged)"
say "PASSED"
