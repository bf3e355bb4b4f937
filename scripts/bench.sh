#!/usr/bin/env bash
# Benchmark of the campana flow on MariaDB, everything on this machine:
# starts broker, MariaDB, coordinator and participants with their own ports
# and state (.run/bench), warms them up (a few sagas slowly, then at least six
# rounds of N/2 at the peak concurrency until one is within 5 % of the previous,
# then the bounds once; not measured: the broker's JIT and the database's
# buffer pool start cold),
# then runs the load tool:
#   1. idle:  50 sagas at 2/s                -> idle p50 (3 runs, median)
#   2. peak:  closed loop, fixed concurrency  -> sagas/s and the ratios to the
#             broker and database bounds measured in the same run (3 runs,
#             the one with the median ratio counts)
#   3. half:  N sagas at half that peak rate  -> p99 under load (3 runs, median)
#   4. the same closed loop at a quarter and half the concurrency (one run
#      each): the broker bound is measured with as many round trips in
#      flight as sagas, so the ratio depends on the concurrency until the
#      broker saturates
#   5. rates of 0.1 to 0.4 of the peak (one run each, at least 15 s) -> the
#      highest of them, and of half the peak, at which p99 is still within
#      3x the idle p50: the load the latency target holds at on this machine
# and prints how busy the machine's cores were in each run. These are a
# build's absolute figures, which move up to 2x between days here; the
# targets (issue 23) are ratios to a base commit measured in the same
# sitting: -base below.
# JSON results go to .run/bench/*.json.
#
# Usage: scripts/bench.sh [-n SAGAS] [-c CONCURRENCY]   (defaults 2000, 64)
#        scripts/bench.sh -base COMMIT [...]   A/B of two builds in one
#        sitting, with the ratios and targets of issue 23 (scripts/bench-ab.sh)
set -euo pipefail
if [[ ${1:-} == -base ]]; then
    shift
    exec "$(dirname "${BASH_SOURCE[0]}")/bench-ab.sh" -b "$@"
fi
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=bench
cd "$SAGAS_ROOT"

N=2000
C=64
while getopts "n:c:" o; do
    case $o in
    n) N=$OPTARG ;;
    c) C=$OPTARG ;;
    *) die "usage: scripts/bench.sh [-n SAGAS] [-c CONCURRENCY]" ;;
    esac
done

export SAGAS_STATE_DIR="$SAGAS_ROOT/.run/bench"
export PULSAR_PORT=6670 PULSAR_HTTP_PORT=8070 SAGAS_DB_PORT=3330 SAGAS_API_PORT=8033
export SAGAS_STORAGE_TYPE=mysql SAGAS_LOG_LEVEL=warn SAGAS_LOG_DIR=off SAGAS_PUENTE=off
OUT="$SAGAS_STATE_DIR"
mkdir -p "$OUT"

# A clean broker and database for every run.
"$SAGAS_ROOT/scripts/pulsar.sh" clean >/dev/null 2>&1 || true
"$SAGAS_ROOT/scripts/mariadb.sh" clean >/dev/null 2>&1 || true

setsid "$SAGAS_ROOT/scripts/run.sh" >"$OUT/run.log" 2>&1 &
RUN_PID=$!
parar() {
    kill -TERM -- "-$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
}
trap parar EXIT INT TERM

listo() { curl -sf "http://127.0.0.1:$SAGAS_API_PORT/readyz" >/dev/null; }
if ! wait_until 300 "the coordinator" listo; then
    tail -n 40 "$OUT/run.log" >&2
    die "the system did not become ready within 300 s"
fi
go build -o "$OUT/carga" ./carga

carga() {
    "$OUT/carga" -api "http://127.0.0.1:$SAGAS_API_PORT" -pulsar "pulsar://127.0.0.1:$PULSAR_PORT" \
        -admin "http://127.0.0.1:$PULSAR_HTTP_PORT" -dsn "sagas:sagas123@tcp(127.0.0.1:$SAGAS_DB_PORT)/sagas" "$@"
}
campo() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

log "warm-up: 20 sagas at 5/s, then rounds of $((N / 2)) at concurrency $C until steady (not measured)"
carga -n 20 -tasa 5 -cotas=false -json "$OUT/arranque.json"
# The broker's JIT keeps compiling for thousands of sagas after a start
# (measured: 185, 230, 273, 286, ... then 300-330 sagas/s from the 5,000th
# on), so at least six rounds; then a round within 5 % of the previous one
# is taken as the steady state.
previo=0
for ronda in 1 2 3 4 5 6 7 8 9 10; do
    carga -n "$((N / 2))" -concurrencia "$C" -cotas=false -json "$OUT/calentamiento.json" >/dev/null
    tasa=$(campo "$OUT/calentamiento.json" 'd["sagas_por_s"]')
    log "warm-up round $ronda: $tasa sagas/s"
    if ((ronda >= 6)) && awk -v a="$tasa" -v b="$previo" 'BEGIN { exit !(a < b * 1.05 && a > b * 0.95) }'; then
        break
    fi
    previo=$tasa
done
# The bounds run other code paths of the broker (one topic, thousands of
# messages a second) that the rounds above leave cold: without this, the
# first peak run's broker bound came out at 6,059 msgs/s and the next two at
# 9,142 and 10,673.
log "warm-up: the broker and database bounds once (not measured)"
carga -n "$((N / 4))" -concurrencia "$C" -almacen mysql -cpu=false -json "$OUT/calentamiento-cotas.json" >/dev/null
# Runs on this shared 2-core machine vary by 10-30 % from one to the next
# (an idle run once measured p50 74.6 ms where the others measure 34-37), so
# the idle, peak and half-peak runs are done three times each and the median
# is reported (all three are printed and kept as JSON).
mediana() { # mediana FILE... EXPR: the file whose EXPR is the median
    local expr=${*: -1}
    for f in "${@:1:$#-1}"; do echo "$(campo "$f" "$expr") $f"; done | sort -g | sed -n 2p | cut -d' ' -f2
}
for i in 1 2 3; do
    log "idle latency $i/3: 50 sagas at 2/s"
    carga -n 50 -tasa 2 -cotas=false -json "$OUT/reposo-$i.json"
done
cp "$(mediana "$OUT"/reposo-{1,2,3}.json 'd["latencia_ms"]["p50"]')" "$OUT/reposo.json"
for i in 1 2 3; do
    log "peak $i/3: $N sagas, concurrency $C, with the broker and database bounds"
    carga -n "$N" -concurrencia "$C" -almacen mysql -json "$OUT/pico-$i.json"
done
cp "$(mediana "$OUT"/pico-{1,2,3}.json 'd["cotas"]["ratio_cota_inferior"]')" "$OUT/pico.json"
pico=$(campo "$OUT/pico.json" 'd["sagas_por_s"]')
mitad=$(awk -v p="$pico" 'BEGIN { printf "%.1f", p / 2 }')
for i in 1 2 3; do
    log "half the peak rate $i/3: $mitad sagas/s"
    carga -n "$N" -tasa "$mitad" -concurrencia 512 -cotas=false -json "$OUT/mitad-$i.json"
done
cp "$(mediana "$OUT"/mitad-{1,2,3}.json 'd["latencia_ms"]["p99"]')" "$OUT/mitad.json"
concurrencias=()
for c in $((C / 4)) $((C / 2)); do
    ((c >= 1)) || continue
    concurrencias+=("$c")
    log "ratio at concurrency $c: $N sagas, with the bounds"
    carga -n "$N" -concurrencia "$c" -almacen mysql -json "$OUT/concurrencia-$c.json"
done

p50=$(campo "$OUT/reposo.json" 'd["latencia_ms"]["p50"]')
fracciones=(0.1 0.2 0.3 0.4)
for f in "${fracciones[@]}"; do
    tasa=$(awk -v p="$pico" -v f="$f" 'BEGIN { printf "%.1f", p * f }')
    n=$(awk -v t="$tasa" 'BEGIN { n = int(t * 15); print (n < 200 ? 200 : n) }')
    log "latency at $f of the peak: $n sagas at $tasa/s"
    carga -n "$n" -tasa "$tasa" -concurrencia 512 -cotas=false -json "$OUT/fraccion-$f.json"
done

p99=$(campo "$OUT/mitad.json" 'd["latencia_ms"]["p99"]')
ratio=$(campo "$OUT/pico.json" 'd["cotas"]["ratio_cota_inferior"]')
echo
echo "peak runs (sagas/s, ratio):   $(for i in 1 2 3; do campo "$OUT/pico-$i.json" '"%.1f %.2f" % (d["sagas_por_s"], d["cotas"]["ratio_cota_inferior"])'; done | paste -sd, -)"
echo "half-peak runs (p99 ms):      $(for i in 1 2 3; do campo "$OUT/mitad-$i.json" '"%.1f" % d["latencia_ms"]["p99"]'; done | paste -sd, -)"
echo "idle runs (p50 ms):           $(for i in 1 2 3; do campo "$OUT/reposo-$i.json" '"%.1f" % d["latencia_ms"]["p50"]'; done | paste -sd, -)"
echo "by concurrency (sagas/s, broker bound msgs/s, ratio):"
for c in "${concurrencias[@]}"; do
    printf '  %4s  %s\n' "$c" "$(campo "$OUT/concurrencia-$c.json" '"%.1f %.0f %.2f" % (d["sagas_por_s"], d["cotas"]["broker_msgs_por_s"], d["cotas"]["ratio_cota_inferior"])')"
done
printf '  %4s  %s  (median peak run)\n' "$C" "$(campo "$OUT/pico.json" '"%.1f %.0f %.2f" % (d["sagas_por_s"], d["cotas"]["broker_msgs_por_s"], d["cotas"]["ratio_cota_inferior"])')"
# Whether the machine was saturated when each figure was taken (the load
# tool's /proc accounting; absent off Linux), and how much of it the
# hypervisor gave to other guests: a run with much stolen time measured the
# neighbours, not this system.
cpu() { campo "$1" '"%.0f%% busy (%.0f%% stolen), %.1f ms CPU/saga" % (d["cpu"]["ocupada_pct"], d["cpu"]["robada_pct"], d["cpu"]["ms_por_saga"]) if d.get("cpu") else "not measured"'; }
echo "latency by load (share of the peak, sagas/s, p50 ms, p99 ms, p99 / idle p50, machine):"
sostenible=""
for f in "${fracciones[@]}" 0.5; do
    archivo="$OUT/fraccion-$f.json"
    [[ $f == 0.5 ]] && archivo="$OUT/mitad.json"
    veces=$(campo "$archivo" '"%.2f" % (d["latencia_ms"]["p99"] / '"$p50"')')
    printf '  %s  %s  %s\n' "$f" "$(campo "$archivo" '"%6.1f %6.1f %6.1f" % (d["sagas_por_s"], d["latencia_ms"]["p50"], d["latencia_ms"]["p99"])')" "${veces}x  $(cpu "$archivo")"
    if awk -v v="$veces" 'BEGIN { exit !(v <= 3) }'; then sostenible=$f; fi
done
echo
echo "=== campana on MariaDB, $(nproc) cores ==="
printf 'peak throughput     %.1f sagas/s; ratio to the lower bound %.2f (median of 3)\n' "$pico" "$ratio"
printf 'idle p50            %.1f ms (median of 3)\n' "$p50"
printf 'p99 at half peak    %.1f ms = %.2fx idle p50 (median of 3)\n' "$p99" "$(awk -v a="$p99" -v b="$p50" 'BEGIN { print a / b }')"
if [[ -n $sostenible ]]; then
    printf 'p99 <= 3x idle p50  at %s of the peak (the highest share at which it held)\n' "$sostenible"
else
    printf 'p99 <= 3x idle p50  not at any share measured (from %s of the peak)\n' "${fracciones[0]}"
fi
printf 'machine CPU         idle %s; peak %s; half peak %s\n' "$(cpu "$OUT/reposo.json")" "$(cpu "$OUT/pico.json")" "$(cpu "$OUT/mitad.json")"
echo "results: $OUT/reposo.json $OUT/pico.json $OUT/mitad.json"
