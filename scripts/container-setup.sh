#!/usr/bin/env bash
# Makes `docker build`, `docker run` and `docker-compose` work on a Debian 12
# machine without a Docker engine, through rootful podman (see
# ../shared/CONTAINERS.md): installs podman, runc, debootstrap and
# docker-compose, writes /etc/containers/containers.conf (runc, cgroupfs,
# file events, ulimits the machine allows), builds the debian:bookworm-slim
# base image locally with debootstrap when it is missing (no registry is
# reachable), and starts podman's API socket at /run/podman/podman.sock with
# /var/run/docker.sock pointing to it. Safe to run again.
#
#   scripts/container-setup.sh          set up (needs root)
#   scripts/container-setup.sh --check  exit 0 when set up, 1 when not
#
# A machine with a real Docker engine needs none of this: the script does
# nothing when `docker info` answers and podman is not installed.
# Exit status 77: containers cannot be set up here (no root); the reason is
# printed.
set -euo pipefail

say() { echo "container-setup: $*" >&2; }
sock=/run/podman/podman.sock
base=docker.io/library/debian:bookworm-slim

ready() {
    command -v docker-compose >/dev/null &&
        curl -fsS --max-time 5 --unix-socket /var/run/docker.sock http://d/_ping >/dev/null 2>&1 &&
        { ! command -v podman >/dev/null || podman image exists "$base"; }
}

if [[ ${1:-} == --check ]]; then
    ready
    exit
fi
if ready; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    say "needs root (rootful podman, /etc/containers, /run/podman): run as root or with sudo"
    exit 77
fi


missing=()
for p in podman runc debootstrap docker-compose curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi


# The two settings without which every container fails ("OCI permission denied").
nofile=$(ulimit -Hn)
[[ $nofile == unlimited ]] && nofile=1048576
conf=/etc/containers/containers.conf
want="[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=32768:32768\"]
[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\""
if [[ ! -f $conf ]] || [[ "$(cat "$conf")" != "$want" ]]; then
    mkdir -p /etc/containers
    [[ -f $conf ]] && cp "$conf" "$conf.bak.$(date +%s)"
    printf '%s\n' "$want" >"$conf"
    say "wrote $conf"
fi

# The base image, built locally (no registry is reachable).
if ! podman image exists "$base"; then
    # the first Debian archive apt uses (deb822 "URIs:" or one-line "deb" entries)
    mirror=$(sed -n -E 's|^(URIs:[[:space:]]*\|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)(https?://[^[:space:]]*/debian)/?([[:space:]].*)?$|\3|p' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
        head -n1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    root=$(mktemp -d /var/tmp/bookworm-slim.XXXXXX)
    say "building $base with debootstrap from $mirror (about a minute)"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
        { tail -n 20 "$root.log" >&2; exit 1; }
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
    tar -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$base" >/dev/null
    rm -rf "$root"
fi

# Podman's Docker-compatible API socket, for docker-compose and `docker`.
if ! curl -fsS --max-time 5 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
    mkdir -p /run/podman /var/log
    # BUILDAH_FORMAT=docker: builds through the socket keep HEALTHCHECK.
    # Started from /: the service outlives this script, and containers fail
    # to start ("write child: broken pipe") once its working directory, say a
    # clone that was removed, is gone.
    (cd / && BUILDAH_FORMAT=docker nohup podman system service --time=0 "unix://$sock" \
        </dev/null >>/var/log/podman-service.log 2>&1 &)
    for _ in $(seq 100); do
        curl -fsS --max-time 2 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && break
        sleep 0.2
    done
fi
ln -sfn "$sock" /var/run/docker.sock
# `docker` client: podman's own CLI under that name when no docker client exists.
if ! command -v docker >/dev/null; then
    ln -sfn "$(command -v podman)" /usr/local/bin/docker
fi
ready || {
    say "set up, but the API socket does not answer (see /var/log/podman-service.log)"
    exit 1
}
say "ready: podman $(podman version --format '{{.Client.Version}}'), socket $sock"
