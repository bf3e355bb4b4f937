#!/usr/bin/env bash
# End-to-end latency of lanzar-campania-completa, version 1 (four steps in
# sequence) against version 2 (affiliates, then three steps in parallel),
# measured back to back on a broker that is already running (this script
# starts and provisions nothing but its own namespace, SQLite store and
# processes, and removes them at the end).
#
# For each round it starts a coordinator on version 1 (the JSON of
# ejemplos/definiciones in SAGAS_DEFINICIONES), runs the load tool at a low
# fixed rate (latency, not throughput), stops it, then does the same on the
# built-in version 2. Rounds alternate so that a neighbour's burst on a
# shared machine hits both versions alike. Prints p50/p99 per run and the
# ratio v2/v1 of the medians.
#
# Usage: scripts/latencia-paralelo.sh [-n SAGAS] [-t RATE] [-r ROUNDS]
#   (defaults 60 sagas at 4/s, 3 rounds); SAGAS_PULSAR_URL and
#   SAGAS_PULSAR_ADMIN_URL name the broker (default the shared test broker).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=latencia
cd "$SAGAS_ROOT"

N=60
TASA=4
RONDAS=3
while getopts "n:t:r:" o; do
    case $o in
    n) N=$OPTARG ;;
    t) TASA=$OPTARG ;;
    r) RONDAS=$OPTARG ;;
    *) die "usage: scripts/latencia-paralelo.sh [-n SAGAS] [-t RATE] [-r ROUNDS]" ;;
    esac
done

PURL=${SAGAS_PULSAR_URL:-pulsar://127.0.0.1:6652}
AURL=${SAGAS_PULSAR_ADMIN_URL:-http://127.0.0.1:8082}
NS="lat$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
DIR=$(mktemp -d)
PARTICIPANTES=(afiliados comisiones tracking notificaciones)
pids=()

limpiar() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    borrar_namespace || warn "namespace alpespartner/$NS left on the broker"
    rm -rf "$DIR"
}
# The shared broker refuses a forced namespace deletion: topics first.
borrar_namespace() {
    local t
    for t in $(curl -sf "$AURL/admin/v2/namespaces/alpespartner/$NS/topics" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)))'); do
        curl -sf -X DELETE "$AURL/admin/v2/persistent/${t#persistent://}?force=true" >/dev/null || true
    done
    curl -sf -X DELETE "$AURL/admin/v2/namespaces/alpespartner/$NS" >/dev/null 2>&1
}
trap limpiar EXIT INT TERM

log "building into $DIR/bin"
go build -o "$DIR/bin/" ./coordinador/cmd/coordinador ./carga \
    $(for p in "${PARTICIPANTES[@]}"; do echo "./participantes/$p"; done)
mkdir -p "$DIR/v1" "$DIR/v2" "$DIR/data"
cp ejemplos/definiciones/lanzar-campania-completa-v1.json "$DIR/v1/"

API_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SAGAS_PULSAR_URL=$PURL SAGAS_PULSAR_ADMIN_URL=$AURL SAGAS_PULSAR_NAMESPACE=$NS \
    SAGAS_STORAGE_TYPE=sqlite SAGAS_DATA_DIR="$DIR/data" SAGAS_LOG_DIR=off SAGAS_LOG_LEVEL=warn \
    SAGAS_PUENTE=off SAGAS_API_HOST=127.0.0.1 SAGAS_API_PORT=$API_PORT SAGAS_REPLICA_ID="c-$NS"

log "provisioning namespace alpespartner/$NS on $PURL"
"$DIR/bin/coordinador" -preparar >"$DIR/preparar.log" 2>&1 || { cat "$DIR/preparar.log" >&2; die "coordinador -preparar failed"; }
for p in "${PARTICIPANTES[@]}"; do
    SAGAS_METRICS_ADDR= "$DIR/bin/$p" >"$DIR/$p.log" 2>&1 &
    pids+=($!)
done

listo() { curl -sf "http://127.0.0.1:$API_PORT/readyz" >/dev/null; }
medir() { # medir VERSION ROUND
    local defs=""
    [[ $1 == 1 ]] && defs="$DIR/v1"
    SAGAS_DEFINICIONES=$defs "$DIR/bin/coordinador" >"$DIR/coordinador-v$1-$2.log" 2>&1 &
    local pid=$!
    wait_until 60 "the coordinator" listo || { tail -20 "$DIR/coordinador-v$1-$2.log" >&2; die "coordinator not ready"; }
    # A few sagas first, not measured: connections and caches warm up.
    "$DIR/bin/carga" -api "http://127.0.0.1:$API_PORT" -pulsar "$PURL" -admin "$AURL" -namespace "$NS" \
        -flujo lanzar-campania-completa -n 5 -tasa 5 -cotas=false -cpu=false -progreso 0 >/dev/null
    "$DIR/bin/carga" -api "http://127.0.0.1:$API_PORT" -pulsar "$PURL" -admin "$AURL" -namespace "$NS" \
        -flujo lanzar-campania-completa -n "$N" -tasa "$TASA" -cotas=false -progreso 0 \
        -json "$DIR/v$1-$2.json" >/dev/null
    kill -TERM "$pid"
    wait "$pid" || true
    log "v$1 round $2: $(campo "$DIR/v$1-$2.json" '"p50 %.1f ms, p99 %.1f ms, %d completed" % (d["latencia_ms"]["p50"], d["latencia_ms"]["p99"], d.get("completadas", 0))')"
}
campo() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

for r in $(seq 1 "$RONDAS"); do
    medir 1 "$r"
    medir 2 "$r"
done

mediana() { # mediana VERSION KEY
    for r in $(seq 1 "$RONDAS"); do campo "$DIR/v$1-$r.json" "d[\"latencia_ms\"][\"$2\"]"; done | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
echo
echo "=== lanzar-campania-completa, $N sagas at $TASA/s per run, $RONDAS rounds, $(nproc) cores ==="
for k in p50 p99; do
    v1=$(mediana 1 $k)
    v2=$(mediana 2 $k)
    printf '%s  v1 %7.1f ms  v2 %7.1f ms  v2/v1 %.2f   (runs v1: %s; v2: %s)\n' "$k" "$v1" "$v2" \
        "$(awk -v a="$v2" -v b="$v1" 'BEGIN { print a / b }')" \
        "$(for r in $(seq 1 "$RONDAS"); do campo "$DIR/v1-$r.json" "'%.1f' % d['latencia_ms']['$k']"; done | paste -sd, -)" \
        "$(for r in $(seq 1 "$RONDAS"); do campo "$DIR/v2-$r.json" "'%.1f' % d['latencia_ms']['$k']"; done | paste -sd, -)"
done
printf 'machine during the runs (v1 round 1, v2 round 1): %s / %s\n' \
    "$(campo "$DIR/v1-1.json" '"%.0f%% busy (%.0f%% stolen)" % (d["cpu"]["ocupada_pct"], d["cpu"]["robada_pct"]) if d.get("cpu") else "not measured"')" \
    "$(campo "$DIR/v2-1.json" '"%.0f%% busy (%.0f%% stolen)" % (d["cpu"]["ocupada_pct"], d["cpu"]["robada_pct"]) if d.get("cpu") else "not measured"')"
