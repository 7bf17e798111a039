#!/usr/bin/env bash
# Entry point of a cluster node in the compose file (the volume image's
# /usr/local/bin/kv-cluster-node): takes the node's role from the gateway's
# topology, so that a node restarted after a promotion comes back in the role
# the gateway gives it (an old primary as the new primary's replica), then
# runs volume-server.
#
#   KV_TOPOLOGY  the gateway's topology, NODE SHARD ROLE HTTP_ADDR RESP_ADDR a line
#                (default /var/lib/gateway/topology, the gateway-state volume)
#   VOLUME_ID    this node's name in it
#   PRIMARY_MIN_REPLICA_ACKS  MIN_REPLICA_ACKS when the topology makes it a primary
#                (default 1); as a replica it is 0
# Before the gateway has written the topology (the cluster's first start),
# the environment's REPLICA_OF stands.
set -euo pipefail
topology=${KV_TOPOLOGY:-/var/lib/gateway/topology}
if [[ -s $topology ]] && line=$(grep -E "^${VOLUME_ID:?} " "$topology"); then
    read -r _ shard role _ <<<"$line"
    if [[ $role == replica ]]; then
        REPLICA_OF=$(awk -v s="$shard" '$2 == s && $3 == "primary" { print $4 }' "$topology")
        # a replica acknowledges nothing itself; promoted, it takes writes at once
        export REPLICA_OF MIN_REPLICA_ACKS=0
    else
        unset REPLICA_OF
        export MIN_REPLICA_ACKS=${PRIMARY_MIN_REPLICA_ACKS:-1}
    fi
fi
exec volume-server "$@"
