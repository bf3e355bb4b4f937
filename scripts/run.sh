#!/usr/bin/env bash
# What `make run` runs: builds the coordinator and participant binaries,
# validates their configuration (nothing is started if it is invalid), then
# starts Pulsar (6650/8080), MariaDB when SAGAS_STORAGE_TYPE=mysql, runs the
# operator's provisioning step (coordinador -preparar), starts the
# coordinator and every participant, and waits. Ctrl-C stops what it started,
# in reverse order; if a process dies, everything is stopped and it exits 1.
#
# PULSAR_SEGURO=1 runs the same system on the secured broker of
# scripts/pulsar.sh (TLS 6671/8471, token authentication, authorization,
# topics never created on use): the provisioning step as role admin, the
# coordinator and each participant with its own role's token. The broker is
# started first there, since it makes the credentials the check reads.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=run
cd "$SAGAS_ROOT"
need_cmd curl curl

BIN_DIR="$STATE_DIR/bin"
LOG_DIR="$STATE_DIR/logs"
PID_DIR="$STATE_DIR/pids"
# Participants in the order their metrics ports are assigned (9101, 9102, ...).
PARTICIPANTS=(influencer marca tracking afiliados comisiones notificaciones)

export PULSAR_PORT=${PULSAR_PORT:-6650}
export PULSAR_HTTP_PORT=${PULSAR_HTTP_PORT:-8080}
SEGURO=${PULSAR_SEGURO:-0}
[[ $SEGURO == 0 || $SEGURO == 1 ]] || die "PULSAR_SEGURO must be 0 or 1, not '$SEGURO'"
if [[ $SEGURO == 1 ]]; then
    export PULSAR_SEGURO PULSAR_TLS_PORT=${PULSAR_TLS_PORT:-6671} PULSAR_HTTPS_PORT=${PULSAR_HTTPS_PORT:-8471}
    SEG_DIR="$STATE_DIR/pulsar-seguro-$PULSAR_TLS_PORT/seguridad"
    PULSAR_LOG="$STATE_DIR/pulsar-seguro-$PULSAR_TLS_PORT/pulsar.log"
    export SAGAS_PULSAR_URL=${SAGAS_PULSAR_URL:-pulsar+ssl://127.0.0.1:$PULSAR_TLS_PORT}
    export SAGAS_PULSAR_ADMIN_URL=${SAGAS_PULSAR_ADMIN_URL:-https://127.0.0.1:$PULSAR_HTTPS_PORT}
    export SAGAS_PULSAR_AUTH=token SAGAS_PULSAR_TLS_TRUST_CERTS_FILE="$SEG_DIR/ca.pem"
else
    PULSAR_LOG="$STATE_DIR/pulsar-$PULSAR_PORT/pulsar.log"
    export SAGAS_PULSAR_URL=${SAGAS_PULSAR_URL:-pulsar://127.0.0.1:$PULSAR_PORT}
    export SAGAS_PULSAR_ADMIN_URL=${SAGAS_PULSAR_ADMIN_URL:-http://127.0.0.1:$PULSAR_HTTP_PORT}
fi
export SAGAS_API_PORT=${SAGAS_API_PORT:-8003}
STORAGE=$(tr '[:upper:]' '[:lower:]' <<<"${SAGAS_STORAGE_TYPE:-}")

# --- build -------------------------------------------------------------------
command -v go >/dev/null 2>&1 || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
mkdir -p "$LOG_DIR" "$PID_DIR"
rm -rf "$BIN_DIR"
mkdir -p "$BIN_DIR"
mapfile -t MAIN_PKGS < <(go list -e -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' \
    ./coordinador/... ./participantes/... 2>/dev/null | sed '/^$/d')
if [[ ${#MAIN_PKGS[@]} -eq 0 ]]; then
    warn "no main packages under coordinador/ or participantes/ yet"
else
    # One binary per main package, named after its directory
    # (coordinador/cmd/coordinador -> coordinador, participantes/marca -> marca).
    log "go build -o $BIN_DIR/ ${MAIN_PKGS[*]#github.com/alpespartner/sagas/}"
    go build -o "$BIN_DIR/" "${MAIN_PKGS[@]}"
fi

# Services to run: the coordinator first, then the participants in port order,
# then any other binary.
SERVICES=()
[[ -x $BIN_DIR/coordinador ]] && SERVICES+=(coordinador)
for p in "${PARTICIPANTS[@]}"; do [[ -x $BIN_DIR/$p ]] && SERVICES+=("$p"); done
for f in "$BIN_DIR"/*; do
    [[ -x $f ]] || continue
    n=$(basename "$f")
    [[ " ${SERVICES[*]} " == *" $n "* ]] || SERVICES+=("$n")
done

# Each participant has a fixed metrics port (influencer 9101 ... notificaciones
# 9106), any other binary the next ones; the coordinator serves its metrics on
# SAGAS_API_PORT.
declare -A METRICS_ADDR=()
port=9101
for n in "${PARTICIPANTS[@]}"; do
    METRICS_ADDR[$n]="127.0.0.1:$port"
    port=$((port + 1))
done
for n in "${SERVICES[@]}"; do
    [[ $n == coordinador || -n ${METRICS_ADDR[$n]:-} ]] && continue
    METRICS_ADDR[$n]="127.0.0.1:$port"
    port=$((port + 1))
done

# SAGAS_PPROF_PORT=P serves net/http/pprof on loopback: the coordinator on
# P, the participants on P+1, P+2, ... in the order above.
declare -A PPROF_ADDR=()
if [[ -n ${SAGAS_PPROF_PORT:-} ]]; then
    [[ $SAGAS_PPROF_PORT =~ ^[0-9]+$ ]] || die "SAGAS_PPROF_PORT must be a port number, not '$SAGAS_PPROF_PORT'"
    port=$SAGAS_PPROF_PORT
    for n in "${SERVICES[@]}"; do
        PPROF_ADDR[$n]="127.0.0.1:$port"
        port=$((port + 1))
    done
fi

# service_env NAME [ROLE]: the per-service environment, as NAME=VALUE lines
# (its metrics and pprof addresses; on the secured broker its role's token,
# by default the role named like the service).
service_env() {
    local n=$1 role=${2:-$1}
    [[ -n ${METRICS_ADDR[$n]:-} ]] && echo "SAGAS_METRICS_ADDR=${METRICS_ADDR[$n]}"
    [[ -n ${PPROF_ADDR[$n]:-} ]] && echo "SAGAS_PPROF_ADDR=${PPROF_ADDR[$n]}"
    [[ $SEGURO == 1 ]] && echo "SAGAS_PULSAR_TOKEN_FILE=$SEG_DIR/$role.token"
    return 0
}

# run_service NAME ARGS...: runs the binary with its per-service environment.
run_service() {
    local n=$1
    shift
    local env_lines
    mapfile -t env_lines < <(service_env "$n")
    exec env "${env_lines[@]}" "$BIN_DIR/$n" "$@"
}

# --- stop what was started, on any exit -------------------------------------
STARTED=()      # names in start order, for the reverse-order stop
declare -A PIDS=()
OWN_PULSAR=0
OWN_DB=0
STOPPING=0

stop_all() {
    local rc=$?
    [[ $STOPPING -eq 1 ]] && return
    STOPPING=1
    # Nothing interrupts the stop: a second Ctrl-C or SIGTERM (a process
    # group signal reaches this shell again) would otherwise kill it halfway
    # and leave the broker and the services running.
    trap '' INT TERM HUP
    trap - EXIT
    set +e
    local i n
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        n=${STARTED[i]}
        stop_group "${PIDS[$n]}" "$n" 20
        rm -f "$PID_DIR/$n.pid"
    done
    [[ $OWN_DB -eq 1 ]] && "$SAGAS_ROOT/scripts/mariadb.sh" stop
    [[ $OWN_PULSAR -eq 1 ]] && "$SAGAS_ROOT/scripts/pulsar.sh" stop
    log "stopped"
    exit "$rc"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- validate configuration before starting anything --------------------------
# (The secured broker first: it makes the tokens and CA the check reads.)
if [[ $SEGURO == 1 ]]; then
    if ! "$SAGAS_ROOT/scripts/pulsar.sh" status >/dev/null 2>&1; then OWN_PULSAR=1; fi
    "$SAGAS_ROOT/scripts/pulsar.sh" start
fi
for n in "${SERVICES[@]}"; do
    out=$(run_service "$n" -check-config 2>&1) || {
        printf '%s\n' "$out" >&2
        die "$n: invalid configuration (see above); nothing was started"
    }
done
[[ ${#SERVICES[@]} -gt 0 ]] && log "configuration valid for: ${SERVICES[*]}"

# --- start -------------------------------------------------------------------
if [[ $SEGURO == 0 ]]; then
    if ! "$SAGAS_ROOT/scripts/pulsar.sh" status >/dev/null 2>&1; then OWN_PULSAR=1; fi
    "$SAGAS_ROOT/scripts/pulsar.sh" start
fi

if [[ $STORAGE == mysql ]]; then
    export SAGAS_DB_PORT=${SAGAS_DB_PORT:-3306}
    case "${SAGAS_DB_HOST:-127.0.0.1}" in
    127.0.0.1 | localhost)
        if ! "$SAGAS_ROOT/scripts/mariadb.sh" status >/dev/null 2>&1; then OWN_DB=1; fi
        "$SAGAS_ROOT/scripts/mariadb.sh" start
        ;;
    *) log "SAGAS_DB_HOST=$SAGAS_DB_HOST: using that MySQL server" ;;
    esac
fi

# Seven Go processes share this machine's cores with the broker and the
# database. Each is mostly waiting on I/O; with one P per process a goroutine
# woken by the network runs on the thread that woke it instead of waking a
# second OS thread, which on 2 cores cut the Go processes' CPU per saga by
# about a fifth (docs/performance.md). Set GOMAXPROCS to override.
export GOMAXPROCS=${GOMAXPROCS:-1}

# The operator's provisioning step: database schema, topics, schemas and
# each role's permissions (idempotent; on the secured broker as role admin).
if [[ -x $BIN_DIR/coordinador ]]; then
    log "provisioning: coordinador -preparar"
    mapfile -t env_lines < <(service_env coordinador admin)
    env "${env_lines[@]}" "$BIN_DIR/coordinador" -preparar >>"$LOG_DIR/preparar.log" 2>&1 || {
        tail_log "$LOG_DIR/preparar.log" 40 "coordinador -preparar"
        die "provisioning failed (see above); nothing else was started"
    }
fi

for n in "${SERVICES[@]}"; do
    pidfile="$PID_DIR/$n.pid"
    # A process left over from an earlier run would hold the ports.
    if pidfile_alive "$pidfile" "$BIN_DIR/$n"; then
        warn "$n from an earlier run is still running; stopping it"
        stop_pidfile "$pidfile" "$n" 20 "$BIN_DIR/$n"
    fi
    log "starting $n (log $LOG_DIR/$n.log)"
    printf '\n===== %s start %s =====\n' "$n" "$(date -Is)" >>"$LOG_DIR/$n.log"
    mapfile -t env_lines < <(service_env "$n")
    spawn_detached "$pidfile" "$LOG_DIR/$n.log" env "${env_lines[@]}" "$BIN_DIR/$n"
    PIDS[$n]=$(pid_from_file "$pidfile")
    STARTED+=("$n")
done

# --- wait until ready ----------------------------------------------------------
# The coordinator's /readyz (database and broker) and each participant's
# (store, and subscribed to its commands). A POST made before then is not
# lost (the outbox and the subscription hold it); it only waits.
METRICS_TOKEN=${SAGAS_METRICS_TOKEN:-}
if [[ -z $METRICS_TOKEN && -n ${SAGAS_METRICS_TOKEN_FILE:-} && -r $SAGAS_METRICS_TOKEN_FILE ]]; then
    METRICS_TOKEN=$(<"$SAGAS_METRICS_TOKEN_FILE")
fi
service_ready() {
    local n=$1 url
    kill -0 "${PIDS[$n]}" 2>/dev/null || return 100
    if [[ $n == coordinador ]]; then
        url="http://127.0.0.1:$SAGAS_API_PORT/readyz"
    else
        url="http://${METRICS_ADDR[$n]}/readyz"
    fi
    curl -fsS -o /dev/null --max-time 3 ${METRICS_TOKEN:+-H "Authorization: Bearer $METRICS_TOKEN"} "$url" 2>/dev/null
}
T_READY=$(now_s)
for n in "${STARTED[@]}"; do
    [[ $n == coordinador || " ${PARTICIPANTS[*]} " == *" $n "* ]] || continue
    wait_until 90 "$n to be ready (its /readyz)" service_ready "$n" || true
done
log "ready in $(elapsed_since "$T_READY")s"

# --- report and wait ---------------------------------------------------------
{
    echo
    echo "=== sagas running ==="
    if [[ -n ${PIDS[coordinador]:-} ]]; then
        echo "API:            http://127.0.0.1:$SAGAS_API_PORT"
        echo "metrics:        http://127.0.0.1:$SAGAS_API_PORT/metrics"
    else
        echo "coordinator:    not built yet (no coordinador binary)"
    fi
    for n in "${SERVICES[@]}"; do
        [[ $n == coordinador ]] && continue
        printf '%-15s http://%s/metrics\n' "$n:" "${METRICS_ADDR[$n]}"
    done
    for n in "${SERVICES[@]}"; do
        [[ -n ${PPROF_ADDR[$n]:-} ]] && printf '%-15s http://%s/debug/pprof/\n' "pprof $n:" "${PPROF_ADDR[$n]}"
    done
    echo "Pulsar admin:   $SAGAS_PULSAR_ADMIN_URL  (broker $SAGAS_PULSAR_URL)"
    [[ $SEGURO == 1 ]] && echo "Pulsar security: TLS (CA $SEG_DIR/ca.pem), a token per role in $SEG_DIR; PULSAR_SEGURO=1 scripts/pulsar-admin ..."
    [[ $STORAGE == mysql ]] && echo "MySQL:          sagas:sagas123@tcp(${SAGAS_DB_HOST:-127.0.0.1}:$SAGAS_DB_PORT)/sagas"
    echo "logs:           $LOG_DIR/<name>.log, Pulsar: $PULSAR_LOG"
    echo "stop:           Ctrl-C (or kill $$)"
    echo
} >&2

while :; do
    for n in "${STARTED[@]}"; do
        if ! kill -0 "${PIDS[$n]}" 2>/dev/null; then
            rc=0
            wait "${PIDS[$n]}" 2>/dev/null || rc=$?
            warn "$n (pid ${PIDS[$n]}) exited with status $rc"
            tail_log "$LOG_DIR/$n.log" 40 "$n log"
            exit 1
        fi
    done
    if [[ $OWN_PULSAR -eq 1 ]] && ! "$SAGAS_ROOT/scripts/pulsar.sh" status >/dev/null 2>&1; then
        tail_log "$PULSAR_LOG" 40 "Pulsar log"
        die "the Pulsar broker stopped"
    fi
    sleep 2
done
