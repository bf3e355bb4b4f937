#!/usr/bin/env bash
# Scaling on the multi-broker cluster, measured: for each configuration
# RxM (R coordinator replicas, M instances of each of the six participants)
# starts a fresh MariaDB and the system on scripts/cluster.sh's cluster with
# partitioned topics, warms it up (not measured), then runs the load tool
# (carga, closed loop, POSTs in turn over the replicas) and records:
#   - sagas/s and latency, CPU ms per saga per component (carga's /proc
#     accounting, only this worktree's processes: -cpu-solo $SAGAS_ROOT/.run);
#   - broker messages in/out and bookie journal writes per saga (the
#     brokers' and bookies' /metrics before and after the load);
#   - MariaDB statements and commits per saga (SHOW GLOBAL STATUS deltas)
#     and bytes stored per saga (information_schema.TABLES after ANALYZE);
#   - `uptime` before and after: this machine is shared, the load average
#     says how much else ran.
# Results: $OUT/<RxM>.json (carga's), $OUT/<RxM>.extra.json, and a table on
# stdout. The cluster is started if it is down (and then stopped again).
#
# Usage: scripts/escala.sh [-n SAGAS] [-c CONCURRENCY] [-w WARMUP] [CONFIG...]
#   defaults: -n 1500 -c 32 -w 300, configurations 1x1 2x1 3x1 1x2 2x2
# Env: ESCALA_DB_PORT [3342], ESCALA_PARTITIONS [4], ESCALA_COTAS [none]
#      (a configuration whose run also measures carga's broker and database
#      bounds, 10-20 s more; that run's broker, bookie and MariaDB counters
#      then include the bounds' own traffic),
#      ESCALA_API_PORT [18401] (replica i on +i-1),
#      ESCALA_METRICS_PORT [18411] (participant instances from there on).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=escala
cd "$SAGAS_ROOT"

N=1500
C=32
W=300
while getopts "n:c:w:" o; do
    case $o in
    n) N=$OPTARG ;;
    c) C=$OPTARG ;;
    w) W=$OPTARG ;;
    *) die "usage: scripts/escala.sh [-n SAGAS] [-c CONCURRENCY] [-w WARMUP] [RxM...]" ;;
    esac
done
shift $((OPTIND - 1))
CONFIGS=("$@")
[[ ${#CONFIGS[@]} -gt 0 ]] || CONFIGS=(1x1 2x1 3x1 1x2 2x2)
for cfg in "${CONFIGS[@]}"; do
    [[ $cfg =~ ^[1-9]x[1-9]$ ]] || die "configuration '$cfg': want RxM, e.g. 2x1 (2 coordinator replicas, 1 instance of each participant)"
done

CLUSTER_STATE="$STATE_DIR"
ESCALA_DIR="$STATE_DIR/escala"
OUT="$ESCALA_DIR/resultados"
BIN="$ESCALA_DIR/bin"
LOGS="$ESCALA_DIR/logs"
DB_PORT=${ESCALA_DB_PORT:-3342}
PARTS=${ESCALA_PARTITIONS:-4}
API0=${ESCALA_API_PORT:-18401}
MET0=${ESCALA_METRICS_PORT:-18411}
PULSAR_URL=pulsar://127.0.0.1:6680,127.0.0.1:6681
ADMIN_URL=http://127.0.0.1:8090
BROKER_METRICS=(http://127.0.0.1:8090/metrics/ http://127.0.0.1:8091/metrics/)
BOOKIE_METRICS=(http://127.0.0.1:8101/metrics http://127.0.0.1:8102/metrics http://127.0.0.1:8103/metrics)
PARTICIPANTS=(influencer marca tracking afiliados comisiones notificaciones)
DSN_ROOT="sagas:sagas123@tcp(127.0.0.1:$DB_PORT)/"
mkdir -p "$OUT" "$BIN" "$LOGS"

PIDS=()
OWN_CLUSTER=0
# parar_sistema: TERM to every process started, KILL to those still alive
# 20 s later (a process still starting may not act on TERM yet).
parar_sistema() {
    local p vivos _
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 1 40); do
        vivos=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && vivos=1; done
        [[ $vivos == 0 ]] && break
        sleep 0.5
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    PIDS=()
}
salir() {
    parar_sistema
    SAGAS_STATE_DIR="$ESCALA_DIR" SAGAS_DB_PORT=$DB_PORT "$SAGAS_ROOT/scripts/mariadb.sh" stop >/dev/null 2>&1 || true
    if [[ $OWN_CLUSTER == 1 ]]; then
        SAGAS_STATE_DIR="$CLUSTER_STATE" "$SAGAS_ROOT/scripts/cluster.sh" stop >/dev/null 2>&1 || true
    fi
}
trap salir EXIT INT TERM

if ! SAGAS_STATE_DIR="$CLUSTER_STATE" "$SAGAS_ROOT/scripts/cluster.sh" status >/dev/null 2>&1; then
    log "starting the cluster (scripts/cluster.sh start)"
    OWN_CLUSTER=1
    SAGAS_STATE_DIR="$CLUSTER_STATE" "$SAGAS_ROOT/scripts/cluster.sh" start
fi

log "building the coordinator, the participants and carga into $BIN"
go build -o "$BIN/" ./coordinador/cmd/coordinador ./participantes/... ./carga

# The environment every process of the system gets (nothing of the caller's).
# lanzar runs a command with it in the background and records its pid: the
# subshell execs into env, which execs the binary, so the pid is the binary's.
lanzar() {
    (exec env -i PATH="$PATH:/usr/sbin:/sbin" HOME="$HOME" GOMAXPROCS=1 \
        SAGAS_PULSAR_URL="$PULSAR_URL" SAGAS_PULSAR_ADMIN_URL="$ADMIN_URL" \
        SAGAS_PULSAR_TENANT=alpespartner SAGAS_PULSAR_NAMESPACE="$NS" SAGAS_PULSAR_PARTITIONS="$PARTS" \
        SAGAS_STORAGE_TYPE=mysql SAGAS_DB_HOST=127.0.0.1 SAGAS_DB_PORT="$DB_PORT" \
        SAGAS_DB_USER=sagas SAGAS_DB_PASSWORD=sagas123 SAGAS_LOG_LEVEL=warn \
        SAGAS_LOG_DIR=off SAGAS_PUENTE=off SAGAS_DATA_DIR="$ESCALA_DIR/data" "$@") &
    PIDS+=($!)
}
base_env() {
    env -i PATH="$PATH:/usr/sbin:/sbin" HOME="$HOME" GOMAXPROCS=1 \
        SAGAS_PULSAR_URL="$PULSAR_URL" SAGAS_PULSAR_ADMIN_URL="$ADMIN_URL" \
        SAGAS_PULSAR_TENANT=alpespartner SAGAS_PULSAR_NAMESPACE="$NS" SAGAS_PULSAR_PARTITIONS="$PARTS" \
        SAGAS_STORAGE_TYPE=mysql SAGAS_DB_HOST=127.0.0.1 SAGAS_DB_PORT="$DB_PORT" \
        SAGAS_DB_USER=sagas SAGAS_DB_PASSWORD=sagas123 SAGAS_LOG_LEVEL=warn \
        SAGAS_LOG_DIR=off SAGAS_PUENTE=off SAGAS_DATA_DIR="$ESCALA_DIR/data" "$@"
}

# metricas: one JSON object with the counters this run compares.
metricas() {
    local u
    {
        for u in "${BROKER_METRICS[@]}"; do echo "### broker $u"; curl -sf --max-time 20 "$u" || true; done
        for u in "${BOOKIE_METRICS[@]}"; do echo "### bookie $u"; curl -sf --max-time 20 "$u" || true; done
        echo "### mariadb"
        mysql -h127.0.0.1 -P"$DB_PORT" -usagas -psagas123 -N -e "SHOW GLOBAL STATUS" 2>/dev/null || true
    } | python3 "$SAGAS_ROOT/scripts/escala_metricas.py" "alpespartner/$NS"
}

# bytes_guardados: data + index bytes of the coordinator's and participants' tables.
bytes_guardados() {
    local dbs
    dbs=$(mysql -h127.0.0.1 -P"$DB_PORT" -usagas -psagas123 -N -e \
        "SELECT GROUP_CONCAT(CONCAT(table_schema,'.',table_name)) FROM information_schema.TABLES WHERE table_schema='sagas' OR table_schema LIKE 'participante\\_%'")
    [[ -n $dbs && $dbs != NULL ]] && mysql -h127.0.0.1 -P"$DB_PORT" -usagas -psagas123 -N -e "ANALYZE TABLE $dbs" >/dev/null
    mysql -h127.0.0.1 -P"$DB_PORT" -usagas -psagas123 -N -e \
        "SELECT COALESCE(SUM(data_length+index_length),0) FROM information_schema.TABLES WHERE table_schema='sagas' OR table_schema LIKE 'participante\\_%'"
}

filas_sagas() { mysql -h127.0.0.1 -P"$DB_PORT" -usagas -psagas123 -N -e "SELECT COUNT(*) FROM sagas.sagas" 2>/dev/null || echo 0; }

for cfg in "${CONFIGS[@]}"; do
    R=${cfg%x*}
    M=${cfg#*x}
    NS="escala-$(date +%s)-$cfg"
    log "== $cfg: $R coordinator replicas, $M instance(s) of each participant, namespace $NS, $PARTS partitions"
    SAGAS_STATE_DIR="$ESCALA_DIR" SAGAS_DB_PORT=$DB_PORT "$SAGAS_ROOT/scripts/mariadb.sh" clean >/dev/null 2>&1 || true
    SAGAS_STATE_DIR="$ESCALA_DIR" SAGAS_DB_PORT=$DB_PORT "$SAGAS_ROOT/scripts/mariadb.sh" start >"$LOGS/mariadb-$cfg.log" 2>&1 ||
        { tail -20 "$LOGS/mariadb-$cfg.log" >&2; die "MariaDB on $DB_PORT did not start"; }
    base_env SAGAS_DB_NAME=sagas "$BIN/coordinador" -preparar >"$LOGS/preparar-$cfg.log" 2>&1 ||
        { tail -20 "$LOGS/preparar-$cfg.log" >&2; die "coordinador -preparar failed"; }
    APIS=()
    for ((i = 0; i < R; i++)); do
        port=$((API0 + i))
        lanzar SAGAS_DB_NAME=sagas SAGAS_API_HOST=127.0.0.1 SAGAS_API_PORT=$port SAGAS_REPLICA_ID="escala-$((i + 1))" \
            "$BIN/coordinador" >"$LOGS/coordinador-$((i + 1))-$cfg.log" 2>&1
        APIS+=("http://127.0.0.1:$port")
    done
    # indice SERVICE INSTANCE: the instance's offset from ESCALA_METRICS_PORT.
    indice() {
        local k=0 x j
        for x in "${PARTICIPANTS[@]}"; do
            for ((j = 1; j <= M; j++)); do
                [[ $x == "$1" && $j == "$2" ]] && { echo $k; return; }
                k=$((k + 1))
            done
        done
    }
    k=0
    for s in "${PARTICIPANTS[@]}"; do
        for ((j = 1; j <= M; j++)); do
            lanzar SAGAS_METRICS_ADDR=127.0.0.1:$((MET0 + k)) "$BIN/$s" >"$LOGS/$s-$j-$cfg.log" 2>&1
            k=$((k + 1))
        done
    done
    for a in "${APIS[@]}"; do
        listo() { curl -sf "$a/readyz" >/dev/null; }
        wait_until 180 "coordinator $a" listo || { tail -20 "$LOGS"/coordinador-*-"$cfg".log >&2; die "a coordinator did not become ready"; }
    done
    for s in "${PARTICIPANTS[@]}"; do
        for ((j = 1; j <= M; j++)); do
            # Started: its consumer of the command topic is open (the
            # Pulsar client's metrics; at log level warn it logs nothing).
            iniciado() {
                curl -sf --max-time 5 "http://127.0.0.1:$((MET0 + $(indice "$s" "$j")))/metrics" |
                    grep -E "^pulsar_client_consumers_opened\{.*topic=\"[^\"]*/comandos-$s\"\} [1-9]" >/dev/null
            }
            wait_until 180 "$s #$j" iniciado || { tail -20 "$LOGS/$s-$j-$cfg.log" >&2; die "$s #$j did not start"; }
        done
    done
    API_LIST=$(
        IFS=,
        echo "${APIS[*]}"
    )
    carga() {
        "$BIN/carga" -api "$API_LIST" -pulsar "$PULSAR_URL" -admin "$ADMIN_URL" -tenant alpespartner -namespace "$NS" \
            -dsn "${DSN_ROOT}sagas" -progreso 0 "$@"
    }
    log "$cfg: warm-up, $W sagas at concurrency $C (not measured)"
    carga -n "$W" -concurrencia "$C" -cotas=false -cpu=false >"$LOGS/arranque-$cfg.txt" 2>&1 ||
        { tail -20 "$LOGS/arranque-$cfg.txt" >&2; die "warm-up failed"; }
    carga_antes=$(uptime)
    sagas_antes=$(filas_sagas)
    bytes_antes=$(bytes_guardados)
    m_antes=$(metricas)
    log "$cfg: measured, $N sagas at concurrency $C (load: $carga_antes)"
    cotas=false
    [[ $cfg == "${ESCALA_COTAS:-none}" ]] && cotas=true
    carga -n "$N" -concurrencia "$C" -cotas=$cotas -almacen mysql -cpu-solo "$SAGAS_ROOT/.run" -json "$OUT/$cfg.json" >"$OUT/$cfg.txt" 2>&1 ||
        { cat "$OUT/$cfg.txt" >&2; die "measured load failed"; }
    m_despues=$(metricas)
    carga_despues=$(uptime)
    sagas_despues=$(filas_sagas)
    bytes_despues=$(bytes_guardados)
    python3 - "$OUT/$cfg.extra.json" "$cfg" "$N" "$m_antes" "$m_despues" "$bytes_antes" "$bytes_despues" \
        "$sagas_antes" "$sagas_despues" "$carga_antes" "$carga_despues" <<'EOF'
import json, sys
out, cfg, n, a, b, ba, bd, sa, sd, ua, ud = sys.argv[1:]
a, b, n = json.loads(a), json.loads(b), int(n)
delta = {k: b.get(k, 0) - a.get(k, 0) for k in b}
extra = {"config": cfg, "sagas": n, "por_saga": {k: v / n for k, v in sorted(delta.items())},
         "bytes_guardados_por_saga": (int(bd) - int(ba)) / max(int(sd) - int(sa), 1),
         "filas_sagas": int(sd), "uptime_antes": ua.strip(), "uptime_despues": ud.strip()}
json.dump(extra, open(out, "w"), indent=2)
EOF
    grep -E "sagas/s|machine cpu|ms/saga" "$OUT/$cfg.txt" | sed "s/^/[$cfg] /"
    log "$cfg: load after: $carga_despues"
    parar_sistema
    SAGAS_STATE_DIR="$ESCALA_DIR" SAGAS_DB_PORT=$DB_PORT "$SAGAS_ROOT/scripts/mariadb.sh" stop >/dev/null 2>&1 || true
done

python3 - "$OUT" "${CONFIGS[@]}" <<'EOF'
import json, sys, os
out = sys.argv[1]
grupos = ["coordinador", "participantes", "broker", "bookie", "zookeeper", "mariadb", "carga"]
print("\nconfig  sagas/s  p50ms  p99ms  busy%  " + "  ".join(f"{g[:7]:>7}" for g in grupos) + "  total  msgs_in  msgs_out  bk_adds  stmts  commits  bytes   load(1m) before/after")
for cfg in sys.argv[2:]:
    r = json.load(open(os.path.join(out, cfg + ".json")))
    e = json.load(open(os.path.join(out, cfg + ".extra.json")))
    cpu = {g["nombre"]: g["ms_por_saga"] for g in (r.get("cpu") or {}).get("grupos", [])}
    p = e["por_saga"]
    carga = lambda u: u.split("load average:")[1].split(",")[0].strip()
    stm = sum(v for k, v in p.items() if k in ("Com_insert", "Com_update", "Com_delete", "Com_select", "Com_insert_select", "Com_replace"))
    print(f"{cfg:6} {r['sagas_por_s']:8.1f} {r['latencia_ms']['p50']:6.0f} {r['latencia_ms']['p99']:6.0f} {r['cpu']['ocupada_pct']:6.0f}  "
          + "  ".join(f"{cpu.get(g, 0):7.2f}" for g in grupos)
          + f" {r['cpu']['ms_por_saga']:6.1f} {p.get('broker_in_msgs', 0):8.1f} {p.get('broker_out_msgs', 0):9.1f} {p.get('bookie_adds', 0):8.1f}"
          + f" {stm:6.1f} {p.get('Com_commit', 0):8.1f} {e['bytes_guardados_por_saga']:6.0f}   {carga(e['uptime_antes'])}/{carga(e['uptime_despues'])}")
EOF
