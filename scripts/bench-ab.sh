#!/usr/bin/env bash
# A/B benchmark of two commits in one sitting (what `scripts/bench.sh -base`
# runs). Builds the coordinator and participants of both commits (git archive
# into a temporary directory), then, round after round, runs the same
# scenarios on each build in turn (A, B, A, B, ...), every run on a fresh
# broker and database of its own, and prints each metric, the ratio of the
# head build to the base build and whether the targets of issue 23 hold:
#
#   idle p50, one saga in flight           head / base <= 0.5
#   idle p50, 2 sagas/s                    head / base <= 0.5
#   CPU per saga at 64 in flight           head / base <= 0.6   (every process
#                                          of the run: coordinator, participants,
#                                          broker, MariaDB; not the load tool)
#   p99 at a fixed 100 sagas/s             <= 3x the same build's idle p50 (2/s)
#
# for each store (mysql: MariaDB with innodb_flush_log_at_trx_commit=1;
# sqlite: the shipped default, WAL with synchronous=FULL) and each flow
# (campana, lanzar-campania-completa). The figures of a build are the median
# of its rounds; every run's figures, the machine's load average and the
# busy share of its cores are printed too, since this machine is shared.
# The load tool is this tree's carga for both builds; its CPU accounting
# counts only the processes started for the run (-cpu-marca), not other
# copies of the system on the machine.
#
# Usage: scripts/bench.sh -base COMMIT [-head COMMIT] [-rondas N]
#            [-almacenes "mysql sqlite"] [-flujos "campana lanzar-campania-completa"]
#            [-n SAGAS_AT_PEAK]
# Each build and flow is warmed up first: 200 sagas at 16 in flight, then
# BENCH_CALENTAMIENTO (5,000) at 64. The broker is a JVM: after the first 200
# alone, one saga in flight took 12 ms (p50) with the broker spending 14.5 ms
# of CPU per saga; after 4,500 more it took 7-8 ms and 2-4 ms, which is
# where a system that has been running stays.
# Ports (override if taken): BENCH_PULSAR_PORT 6667, BENCH_PULSAR_HTTP_PORT
# 8097, BENCH_DB_PORT 3351, BENCH_API_PORT 8057, participants' metrics
# BENCH_METRICS_BASE 9161..9166. State and results under
# $SAGAS_STATE_DIR/bench-ab (default .run/bench-ab); results/*.json are kept.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=bench-ab
cd "$SAGAS_ROOT"

BASE=""
HEAD=HEAD
RONDAS=2
ALMACENES="mysql sqlite"
FLUJOS="campana lanzar-campania-completa"
N_PICO=1000
N_CALENTAMIENTO=${BENCH_CALENTAMIENTO:-5000}
SOLO_INFORME=0
# Long spellings as in the usage line.
args=()
for a in "$@"; do
    case $a in
    -solo-informe) SOLO_INFORME=1 ;;
    -base) args+=(-b) ;; -head) args+=(-h) ;; -rondas) args+=(-r) ;; -almacenes) args+=(-a) ;; -flujos) args+=(-f) ;;
    *) args+=("$a") ;;
    esac
done
set -- "${args[@]}"
while getopts "b:h:r:a:f:n:" o; do
    case $o in
    b) BASE=$OPTARG ;;
    h) HEAD=$OPTARG ;;
    r) RONDAS=$OPTARG ;;
    a) ALMACENES=$OPTARG ;;
    f) FLUJOS=$OPTARG ;;
    n) N_PICO=$OPTARG ;;
    *) die "usage: scripts/bench.sh -base COMMIT [-head COMMIT] [-rondas N] [-almacenes LIST] [-flujos LIST] [-n SAGAS]" ;;
    esac
done
[[ -n $BASE ]] || die "-base COMMIT is required"

PPORT=${BENCH_PULSAR_PORT:-6667}
PHTTP=${BENCH_PULSAR_HTTP_PORT:-8097}
DBPORT=${BENCH_DB_PORT:-3351}
APIPORT=${BENCH_API_PORT:-8057}
MBASE=${BENCH_METRICS_BASE:-9161}
for p in "$PPORT" "$PHTTP" "$DBPORT" "$APIPORT" $(seq "$MBASE" $((MBASE + 5))); do
    port_open "$p" && die "port $p is in use: set the BENCH_*PORT variables (see the header of $0)"
done

RAIZ="${SAGAS_STATE_DIR:-$SAGAS_ROOT/.run}/bench-ab"
RES="$RAIZ/results"
PARTICIPANTES=(influencer marca tracking afiliados comisiones notificaciones)
declare -A COMMIT=()
COMMIT[base]=$(git rev-parse --short "$BASE^{commit}")
COMMIT[head]=$(git rev-parse --short "$HEAD^{commit}")
if ((!SOLO_INFORME)); then
rm -rf "$RAIZ/src" "$RAIZ/bin" "$RAIZ/estado" "$RES"
mkdir -p "$RAIZ/src" "$RAIZ/bin" "$RAIZ/estado" "$RES"
for b in base head; do
    src="$RAIZ/src/$b"
    mkdir -p "$src" "$RAIZ/bin/$b"
    git archive "${COMMIT[$b]}" | tar -x -C "$src"
    log "building $b (${COMMIT[$b]})"
    (cd "$src" && go build -o "$RAIZ/bin/$b/" ./coordinador/cmd/coordinador $(printf './participantes/%s ' "${PARTICIPANTES[@]}"))
done
go build -o "$RAIZ/bin/carga" ./carga
fi

PIDS=()
parar_servicios() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    PIDS=()
}
ESTADO=""
# The broker and MariaDB of a run are started by the build's own scripts, so
# each build runs with the settings it ships (thread pools, journal flush,
# MariaDB's configuration), not with this tree's.
SCRIPTS=""
parar_todo() {
    parar_servicios
    if [[ -n $ESTADO ]]; then
        SAGAS_STATE_DIR=$ESTADO PULSAR_PORT=$PPORT PULSAR_HTTP_PORT=$PHTTP "$SCRIPTS/pulsar.sh" stop >/dev/null 2>&1 || true
        SAGAS_STATE_DIR=$ESTADO SAGAS_DB_PORT=$DBPORT "$SCRIPTS/mariadb.sh" stop >/dev/null 2>&1 || true
        rm -rf "$ESTADO"
        ESTADO=""
    fi
}
trap parar_todo EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# arrancar BUILD STORE ROUND: a fresh broker and database, then the build's
# coordinator and participants.
arrancar() {
    local b=$1 almacen=$2 ronda=$3
    ESTADO="$RAIZ/estado/$b-$almacen-$ronda"
    rm -rf "$ESTADO"
    mkdir -p "$ESTADO/logs" "$ESTADO/data"
    export SAGAS_BENCH_MARCA="$b-$almacen-$ronda-$$"
    export SAGAS_STATE_DIR=$ESTADO
    export SAGAS_PULSAR_URL="pulsar://127.0.0.1:$PPORT" SAGAS_PULSAR_ADMIN_URL="http://127.0.0.1:$PHTTP"
    export SAGAS_STORAGE_TYPE=$almacen SAGAS_DB_PORT=$DBPORT SAGAS_DATA_DIR="$ESTADO/data"
    export SAGAS_API_PORT=$APIPORT SAGAS_LOG_LEVEL=${BENCH_LOG_LEVEL:-warn} SAGAS_LOG_DIR=off SAGAS_PUENTE=off
    # As scripts/run.sh runs the Go services (docs/performance.md).
    export GOMAXPROCS=1
    SCRIPTS="$RAIZ/src/$b/scripts"
    PULSAR_PORT=$PPORT PULSAR_HTTP_PORT=$PHTTP "$SCRIPTS/pulsar.sh" start >"$ESTADO/logs/pulsar-start.log" 2>&1 ||
        { tail -n 20 "$ESTADO/logs/pulsar-start.log" >&2; die "broker did not start"; }
    log "$b: broker journalFlushWhenQueueEmpty=$(sed -n 's/^journalFlushWhenQueueEmpty=//p' "$ESTADO/pulsar-$PPORT/conf/standalone.conf" 2>/dev/null | grep . || echo 'false (default)')"
    if [[ $almacen == mysql ]]; then
        "$SCRIPTS/mariadb.sh" start >"$ESTADO/logs/mariadb-start.log" 2>&1 ||
            { tail -n 20 "$ESTADO/logs/mariadb-start.log" >&2; die "MariaDB did not start"; }
    fi
    local bin="$RAIZ/bin/$b"
    # Not "coordinador -h | grep -q": under pipefail, grep's early exit can
    # kill the writer with SIGPIPE, fail the pipeline and skip -preparar.
    local ayuda
    ayuda=$("$bin/coordinador" -h 2>&1 || true)
    if grep -q -- '-preparar' <<<"$ayuda"; then
        "$bin/coordinador" -preparar >"$ESTADO/logs/preparar.log" 2>&1 ||
            { tail -n 20 "$ESTADO/logs/preparar.log" >&2; die "$b: coordinador -preparar failed"; }
    fi
    local n i=0
    for n in coordinador "${PARTICIPANTES[@]}"; do
        local extra=()
        [[ $n == coordinador ]] || extra=(SAGAS_METRICS_ADDR="127.0.0.1:$((MBASE + i))")
        [[ $n == coordinador ]] || i=$((i + 1))
        setsid env "${extra[@]}" "$bin/$n" </dev/null >>"$ESTADO/logs/$n.log" 2>&1 &
        PIDS+=($!)
    done
    listo() { curl -sf "http://127.0.0.1:$APIPORT/readyz" >/dev/null; }
    wait_until 180 "the $b coordinator" listo || { tail -n 30 "$ESTADO/logs/coordinador.log" >&2; die "$b did not become ready"; }
}

carga() {
    "$RAIZ/bin/carga" -api "http://127.0.0.1:$APIPORT" -pulsar "$SAGAS_PULSAR_URL" -admin "$SAGAS_PULSAR_ADMIN_URL" \
        -cotas=false -progreso 0 -cpu-marca "SAGAS_BENCH_MARCA=$SAGAS_BENCH_MARCA" "$@"
}
campo() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
carga_anotada() { # carga_anotada FILE ARGS...: one run; the load average goes into the JSON
    local f=$1
    shift
    local carga1
    carga1=$(cut -d' ' -f1 /proc/loadavg)
    carga -json "$f" "$@" >/dev/null 2>"$f.err" || { cat "$f.err" >&2; warn "run $f failed"; return 0; }
    python3 - "$f" "$carga1" "$(cut -d' ' -f1 /proc/loadavg)" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["loadavg"] = [float(sys.argv[2]), float(sys.argv[3])]
json.dump(d, open(sys.argv[1], "w"), indent=2)
EOF
}

for ronda in $( ((SOLO_INFORME)) || seq 1 "$RONDAS"); do
    for almacen in $ALMACENES; do
        for b in base head; do
            log "round $ronda/$RONDAS, $almacen, $b (${COMMIT[$b]}): fresh broker and database; load $(cut -d' ' -f1-3 /proc/loadavg)"
            arrancar "$b" "$almacen" "$ronda"
            # The latency floor of the idle runs: the same hops as bare
            # commits (a scratch database or file) and broker deliveries.
            if [[ $almacen == mysql ]]; then
                SUELO=(-suelo -almacen mysql -dsn "sagas:sagas123@tcp(127.0.0.1:$DBPORT)/sagas")
            else
                SUELO=(-suelo -almacen sqlite -sqlite "$ESTADO/data/suelo.db")
            fi
            for flujo in $FLUJOS; do
                pre="$RES/$almacen-$flujo-$b-$ronda"
                log "  $flujo: warm-up, idle at 1 in flight, idle at 2/s, 64 in flight, 100/s"
                carga -flujo "$flujo" -n 200 -concurrencia 16 -cpu=false >/dev/null 2>&1 || true
                carga -flujo "$flujo" -n "$N_CALENTAMIENTO" -concurrencia 64 -cpu=false -json "$pre-calentamiento.json" >/dev/null 2>&1 || true
                carga_anotada "$pre-uno.json" -flujo "$flujo" -n 100 -concurrencia 1 -linea "${SUELO[@]}"
                carga_anotada "$pre-reposo.json" -flujo "$flujo" -n 30 -tasa 2 "${SUELO[@]}"
                carga_anotada "$pre-pico.json" -flujo "$flujo" -n "$N_PICO" -concurrencia 64
                carga_anotada "$pre-cien.json" -flujo "$flujo" -n 600 -tasa 100 -concurrencia 512
            done
            parar_todo
        done
    done
done

# --- report ------------------------------------------------------------------
python3 - "$RES" "$RONDAS" "${COMMIT[base]}" "${COMMIT[head]}" "$ALMACENES" "$FLUJOS" <<'EOF'
import json, os, statistics, sys
res, rondas, cbase, chead = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
almacenes, flujos = sys.argv[5].split(), sys.argv[6].split()

def leer(almacen, flujo, b, r, esc):
    f = f"{res}/{almacen}-{flujo}-{b}-{r}-{esc}.json"
    return json.load(open(f)) if os.path.exists(f) else None

def cpu_sistema(d):  # CPU ms per saga of the run's own processes, the load tool left out
    c = d.get("cpu") if d else None
    return sum(g["ms_por_saga"] for g in c["grupos"] if g["nombre"] != "carga") if c else None

metricas = [
    ("idle p50, 1 in flight (ms)", "uno", lambda d: d["latencia_ms"]["p50"]),
    ("idle p50, 2 sagas/s (ms)", "reposo", lambda d: d["latencia_ms"]["p50"]),
    ("64 in flight: sagas/s", "pico", lambda d: d["sagas_por_s"]),
    ("64 in flight: CPU ms/saga", "pico", cpu_sistema),
    ("100 sagas/s: p99 (ms)", "cien", lambda d: d["latencia_ms"]["p99"]),
]
objetivo = {"uno": 0.5, "reposo": 0.5}
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def fmt(x): return "-" if x is None else f"{x:.1f}"

for almacen in almacenes:
    for flujo in flujos:
        print(f"\n=== {flujo} on {'MariaDB' if almacen == 'mysql' else 'SQLite'}: base {cbase} vs head {chead}, median of {rondas} rounds ===")
        print(f"{'metric':32} {'base':>8} {'head':>8} {'head/base':>9}  target   runs base | head")
        valores = {}
        for nombre, esc, f in metricas:
            runs = {b: [leer(almacen, flujo, b, r, esc) for r in range(1, rondas + 1)] for b in ("base", "head")}
            v = {b: [f(d) if d else None for d in runs[b]] for b in runs}
            m = {b: med(v[b]) for b in v}
            valores[nombre] = m
            ratio = m["head"] / m["base"] if m["base"] and m["head"] else None
            meta = ""
            if esc in objetivo and ratio is not None:
                meta = f"<= {objetivo[esc]} {'PASS' if ratio <= objetivo[esc] else 'FAIL'}"
            if "CPU" in nombre and ratio is not None:
                meta = f"<= 0.6 {'PASS' if ratio <= 0.6 else 'FAIL'}"
            print(f"{nombre:32} {fmt(m['base']):>8} {fmt(m['head']):>8} {('-' if ratio is None else f'{ratio:.2f}'):>9}  {meta:12} "
                  f"{' '.join(fmt(x) for x in v['base'])} | {' '.join(fmt(x) for x in v['head'])}")
        # The floor of the idle runs (carga -suelo): no build can go below
        # it on this machine, broker and database.
        for esc, nombre in (("uno", "1 in flight"), ("reposo", "2 sagas/s")):
            partes = []
            for b in ("base", "head"):
                ds = [leer(almacen, flujo, b, r, esc) for r in range(1, rondas + 1)]
                suelos = [d["suelo"] for d in ds if d and d.get("suelo")]
                if suelos:
                    partes.append(f"{b} {fmt(med([s['saga_p50_ms'] for s in suelos]))} ms "
                                  f"(p50 / floor {med([s['ratio_p50'] for s in suelos]):.2f}x)")
            if partes:
                print(f"floor p50, {nombre}: " + "; ".join(partes))
        p99, p50 = valores["100 sagas/s: p99 (ms)"], valores["idle p50, 2 sagas/s (ms)"]
        for b in ("base", "head"):
            if p99[b] and p50[b]:
                x = p99[b] / p50[b]
                print(f"{b}: p99 at 100/s / idle p50 = {x:.2f}x  (target <= 3: {'PASS' if x <= 3 else 'FAIL'})")
        # The machine while the runs ran: load average (1 min, before and
        # after) and the busy share of both cores, per run.
        for b in ("base", "head"):
            linea = []
            for r in range(1, rondas + 1):
                for esc in ("uno", "reposo", "pico", "cien"):
                    d = leer(almacen, flujo, b, r, esc)
                    if d and d.get("cpu"):
                        linea.append(f"{esc}{r} load {d['loadavg'][0]:.1f}-{d['loadavg'][1]:.1f} busy {d['cpu']['ocupada_pct']:.0f}%")
            print(f"  machine, {b}: " + "; ".join(linea))
        # The hops of one saga at one in flight, per build (each round).
        for b in ("base", "head"):
            for r in range(1, rondas + 1):
                d = leer(almacen, flujo, b, r, "uno")
                if d and d.get("linea"):
                    print(f"  timeline, {b} round {r} (median per hop, ms): " +
                          "; ".join(f"{t['hasta']} +{t['ms']:.1f}" for t in d["linea"]))
EOF
echo
echo "durability: MariaDB innodb_flush_log_at_trx_commit=$(grep -h innodb_flush_log_at_trx_commit "$SAGAS_ROOT/scripts/mariadb.sh" | head -1 | awk '{print $3}'); SQLite as the builds set it; Pulsar standalone as each build's scripts/pulsar.sh starts it (journalSyncData=false: the standalone bookie does not fsync its journal); base $(grep -ho 'JOURNAL_FLUSH_WHEN_QUEUE_EMPTY=[a-z]*' "$RAIZ/src/base/scripts/pulsar.sh" | head -1 || echo 'journalFlushWhenQueueEmpty default (false)'), head $(grep -ho 'JOURNAL_FLUSH_WHEN_QUEUE_EMPTY=[a-z]*' "$RAIZ/src/head/scripts/pulsar.sh" | head -1 || echo 'journalFlushWhenQueueEmpty default (false)')"
echo "results: $RES"
