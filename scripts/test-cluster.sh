#!/usr/bin/env bash
# What `make test-cluster` runs: the failover tests on the multi-broker
# cluster (scripts/cluster.sh), each a caos run (two coordinator replicas on
# MariaDB, the six participants, topics with 4 partitions) checked from the
# stores:
#   1. -plan broker-cluster: kill -9 of broker 1 during the load, restarted
#      45 s later (past the 30 s metadata session: its bundles move);
#   2. -plan unload: the namespace's bundles unloaded during the load, then
#      every bundle moved to the broker that did not own it.
# The cluster is started if it is down and then stopped again; a cluster
# already running is used and left running. Each run's output goes to
# .run/test-cluster/<plan>-<i>.log; the summary lines are printed.
#
# Usage: scripts/test-cluster.sh [-n SAGAS] [-r RUNS]   (defaults 1000, 1)
# Env: TEST_CLUSTER_DB_PORT [3343], TEST_CLUSTER_API_PORTS [18283,18284],
#      TEST_CLUSTER_METRICS_PORT [18271]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=test-cluster
cd "$SAGAS_ROOT"
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"

N=1000
RUNS=1
while getopts "n:r:" o; do
    case $o in
    n) N=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    *) die "usage: scripts/test-cluster.sh [-n SAGAS] [-r RUNS]" ;;
    esac
done
OUT="$STATE_DIR/test-cluster"
mkdir -p "$OUT"

OWN_CLUSTER=0
parar() { [[ $OWN_CLUSTER == 1 ]] && "$SAGAS_ROOT/scripts/cluster.sh" stop || true; }
trap parar EXIT INT TERM
if ! "$SAGAS_ROOT/scripts/cluster.sh" status >/dev/null 2>&1; then
    OWN_CLUSTER=1
    "$SAGAS_ROOT/scripts/cluster.sh" start
fi
go build -o "$OUT/caos" ./caos

rc=0
for ((i = 1; i <= RUNS; i++)); do
    for plan in broker-cluster unload; do
        log "run $i/$RUNS: caos -plan $plan -n $N"
        inicio=$(date +%s)
        if "$OUT/caos" -plan "$plan" -n "$N" -estado "$OUT/estado" -estado-cluster "$STATE_DIR" \
            -puerto-db "${TEST_CLUSTER_DB_PORT:-3343}" -puertos-api "${TEST_CLUSTER_API_PORTS:-18283,18284}" \
            -puerto-metricas "${TEST_CLUSTER_METRICS_PORT:-18271}" >"$OUT/$plan-$i.log" 2>&1; then
            log "run $i/$RUNS: $plan passed in $(($(date +%s) - inicio)) s"
        else
            rc=1
            warn "run $i/$RUNS: $plan FAILED in $(($(date +%s) - inicio)) s (log: $OUT/$plan-$i.log)"
        fi
        grep -E "FALLA|reparado|pasaron al broker|recuperación de|detención por|POST:|extremo a extremo|fin: |total: |RESULTADO" "$OUT/$plan-$i.log" | sed 's/^/    /' || true
    done
done
exit $rc
