#!/usr/bin/env bash
# What `make test` (and CI) runs: installs what is missing, starts a fresh TEST
# Pulsar broker (6651/8081), a fresh secured one (TLS, token and mTLS
# authentication, authorization: 6671/8471), a fresh TEST MariaDB (3307) and a
# fresh one that requires TLS with a migration and a runtime user (3327), runs go vet and
# go test against them, validates the compose file, stops everything it started.
#
#   scripts/test.sh                        all packages
#   scripts/test.sh -run TestX ./eventos/...  extra go test args replace ./...
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG="test"
T_START=$(now_s)
cd "$SAGAS_ROOT"

TEST_PULSAR_PORT=6651
TEST_PULSAR_HTTP_PORT=8081
TEST_DB_PORT=3307
TEST_DB_TLS_PORT=3327
TEST_PULSAR_TLS_PORT=6671
TEST_PULSAR_HTTPS_PORT=8471
COMPOSE_FILE=docker-compose-alpespartner.yml

# --- prerequisites: one function each, installing only what is missing ------
ensure_base_tools() {
    need_cmd curl
    need_cmd setsid util-linux
    need_cmd timeout coreutils
    need_cmd flock util-linux
    need_cmd gcc gcc # go test -race needs cgo
}
ensure_go() {
    command -v go >/dev/null 2>&1 || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
    command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH"
}
ensure_java() {
    need_cmd java default-jre-headless
    need_cmd mvn maven
}
ensure_mariadb() { "$SAGAS_ROOT/scripts/mariadb.sh" install; }
ensure_python_pulsar() {
    # For the test that plays a legacy (Python) producer.
    need_cmd python3 python3
    # AvroSchema needs fastavro, which only the [avro] extra installs.
    python3 -c 'import pulsar, fastavro' 2>/dev/null && return 0
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    log "pip install pulsar-client[avro]"
    python3 -m pip install --quiet 'pulsar-client[avro]' >&2 ||
        python3 -m pip install --quiet --break-system-packages 'pulsar-client[avro]' >&2
    python3 -c 'import pulsar, fastavro' || die "python3 cannot import pulsar and fastavro after pip install"
}
ensure_docker_compose() { need_cmd docker-compose docker-compose; }
ensure_prometheus() { need_cmd prometheus prometheus; }
ensure_chromium() { need_cmd chromium chromium; }
# Jaeger all-in-one (the trace end-to-end test's backend) is a go.mod tool of
# its own module, scripts/jaeger, built once per version into $STATE_DIR/bin
# (a cold build takes minutes: it runs in the background while the brokers
# start).
JAEGER_VERSION=$(awk '$1 == "github.com/jaegertracing/jaeger" {print $2}' "$SAGAS_ROOT/scripts/jaeger/go.mod")
JAEGER_BIN="$STATE_DIR/bin/jaeger-$JAEGER_VERSION"
build_jaeger() {
    [[ -x $JAEGER_BIN ]] && return 0
    mkdir -p "$STATE_DIR/bin"
    log "go build jaeger $JAEGER_VERSION (scripts/jaeger)"
    go build -C "$SAGAS_ROOT/scripts/jaeger" -o "$JAEGER_BIN.tmp" github.com/jaegertracing/jaeger/cmd/jaeger &&
        mv "$JAEGER_BIN.tmp" "$JAEGER_BIN"
}

# --- services ----------------------------------------------------------------
PULSAR_ENV=(env PULSAR_PORT="$TEST_PULSAR_PORT" PULSAR_HTTP_PORT="$TEST_PULSAR_HTTP_PORT")
# The broker re-checks credentials every 5 s (default 60), so the token
# rotation test sees an expired token challenged within seconds.
PULSAR_SEGURO_ENV=(env PULSAR_SEGURO=1 PULSAR_TLS_PORT="$TEST_PULSAR_TLS_PORT" PULSAR_HTTPS_PORT="$TEST_PULSAR_HTTPS_PORT"
    PULSAR_CONF_OVERRIDES="authenticationRefreshCheckSeconds=5")
DB_ENV=(env SAGAS_DB_PORT="$TEST_DB_PORT")
DB_TLS_ENV=(env MARIADB_TLS=1 SAGAS_DB_PORT="$TEST_DB_TLS_PORT")
STARTED_PULSAR=0
STARTED_PULSAR_SEGURO=0
STARTED_DB=0
STARTED_DB_TLS=0
PULSAR_JOB=
PULSAR_SEGURO_JOB=
JAEGER_JOB=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $PULSAR_JOB ]] && kill -0 "$PULSAR_JOB" 2>/dev/null; then
        kill "$PULSAR_JOB" 2>/dev/null
        wait "$PULSAR_JOB" 2>/dev/null
    fi
    if [[ -n $JAEGER_JOB ]] && kill -0 "$JAEGER_JOB" 2>/dev/null; then
        kill "$JAEGER_JOB" 2>/dev/null
        wait "$JAEGER_JOB" 2>/dev/null
    fi
    if [[ -n $PULSAR_SEGURO_JOB ]] && kill -0 "$PULSAR_SEGURO_JOB" 2>/dev/null; then
        kill "$PULSAR_SEGURO_JOB" 2>/dev/null
        wait "$PULSAR_SEGURO_JOB" 2>/dev/null
    fi
    [[ $STARTED_PULSAR -eq 1 ]] && "${PULSAR_ENV[@]}" "$SAGAS_ROOT/scripts/pulsar.sh" stop
    [[ $STARTED_PULSAR_SEGURO -eq 1 ]] && "${PULSAR_SEGURO_ENV[@]}" "$SAGAS_ROOT/scripts/pulsar.sh" stop
    [[ $STARTED_DB -eq 1 ]] && "${DB_ENV[@]}" "$SAGAS_ROOT/scripts/mariadb.sh" stop
    [[ $STARTED_DB_TLS -eq 1 ]] && "${DB_TLS_ENV[@]}" "$SAGAS_ROOT/scripts/mariadb.sh" stop
    if [[ $rc -eq 0 ]]; then
        log "PASSED in $(elapsed_since "$T_START")s"
    else
        log "FAILED (exit $rc) in $(elapsed_since "$T_START")s"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_base_tools
ensure_go
ensure_java
ensure_mariadb
ensure_python_pulsar
ensure_docker_compose
ensure_prometheus
ensure_chromium

"$SAGAS_ROOT/scripts/pulsar.sh" fetch
log "go mod download"
go mod download
build_jaeger &
JAEGER_JOB=$!

# Fresh data every run. The broker starts in the background (it takes tens
# of seconds) while MariaDB starts and go vet runs.
"${PULSAR_ENV[@]}" "$SAGAS_ROOT/scripts/pulsar.sh" clean
"${DB_ENV[@]}" "$SAGAS_ROOT/scripts/mariadb.sh" clean
STARTED_PULSAR=1
"${PULSAR_ENV[@]}" "$SAGAS_ROOT/scripts/pulsar.sh" start &
PULSAR_JOB=$!
"${PULSAR_SEGURO_ENV[@]}" "$SAGAS_ROOT/scripts/pulsar.sh" clean
STARTED_PULSAR_SEGURO=1
"${PULSAR_SEGURO_ENV[@]}" "$SAGAS_ROOT/scripts/pulsar.sh" start >/dev/null &
PULSAR_SEGURO_JOB=$!
STARTED_DB=1
"${DB_ENV[@]}" "$SAGAS_ROOT/scripts/mariadb.sh" start
"${DB_TLS_ENV[@]}" "$SAGAS_ROOT/scripts/mariadb.sh" clean
STARTED_DB_TLS=1
"${DB_TLS_ENV[@]}" "$SAGAS_ROOT/scripts/mariadb.sh" start >/dev/null

FAILED=()

# go vet the package patterns among the arguments (all packages if none).
VET_PKGS=()
for arg in "$@"; do
    [[ $arg == ./* || $arg == . || $arg == github.com/* ]] && VET_PKGS+=("$arg")
done
[[ ${#VET_PKGS[@]} -gt 0 ]] || VET_PKGS=(./...)
log "go vet ${VET_PKGS[*]}"
go vet "${VET_PKGS[@]}" || FAILED+=("go vet")

log "waiting for the test broker"
wait "$PULSAR_JOB" || die "test broker did not start"
PULSAR_JOB=
log "waiting for the secured test broker"
wait "$PULSAR_SEGURO_JOB" || die "secured test broker did not start"
PULSAR_SEGURO_JOB=
log "waiting for the jaeger build"
wait "$JAEGER_JOB" || die "go build jaeger $JAEGER_VERSION failed"
JAEGER_JOB=

export SAGAS_TEST_REQUIRED=1
export SAGAS_TEST_PULSAR_URL="pulsar://127.0.0.1:$TEST_PULSAR_PORT"
export SAGAS_TEST_PULSAR_ADMIN_URL="http://127.0.0.1:$TEST_PULSAR_HTTP_PORT"
export SAGAS_TEST_PULSAR_SEGURO_URL="pulsar+ssl://127.0.0.1:$TEST_PULSAR_TLS_PORT"
export SAGAS_TEST_PULSAR_SEGURO_ADMIN_URL="https://127.0.0.1:$TEST_PULSAR_HTTPS_PORT"
export SAGAS_TEST_PULSAR_SEGURO_DIR="$STATE_DIR/pulsar-seguro-$TEST_PULSAR_TLS_PORT/seguridad"
export SAGAS_TEST_MYSQL_DSN="sagas:sagas123@tcp(127.0.0.1:$TEST_DB_PORT)/sagas?parseTime=true&multiStatements=true"
export SAGAS_TEST_MYSQL_SEGURO_ADDR="127.0.0.1:$TEST_DB_TLS_PORT"
export SAGAS_TEST_MYSQL_SEGURO_DIR="$STATE_DIR/mariadb-tls-$TEST_DB_TLS_PORT/seguridad"
export SAGAS_TEST_JAEGER="$JAEGER_BIN"

TEST_ARGS=("$@")
[[ ${#TEST_ARGS[@]} -gt 0 ]] || TEST_ARGS=(./...)
# gotestsum (a go.mod tool) runs go test and prints one line per test as it
# ends, so a long run shows progress; failures are repeated at the end.
log "go test -race -count=1 -timeout 30m ${TEST_ARGS[*]} (through gotestsum)"
T_GO=$(now_s)
go tool gotestsum --format testname --format-hide-empty-pkg -- \
    -race -count=1 -timeout 30m "${TEST_ARGS[@]}" || FAILED+=("go test")
log "go test took $(elapsed_since "$T_GO")s"

if [[ -f $COMPOSE_FILE ]]; then
    # The secrets have no defaults: the file is checked with throwaway values
    # (the token file need not exist for `config`), and must be refused
    # without them. An .env next to the file would supply them: ignore it.
    COMPOSE_SECRETS=(SAGAS_API_TOKEN=validar GRAFANA_ADMIN_PASSWORD=validar SAGAS_METRICS_TOKEN_FILE=/nonexistent/metrics_token
        SAGAS_DB_ROOT_PASSWORD=validar SAGAS_DB_PASSWORD=validar SAGAS_DB_MIGRATION_PASSWORD=validar)
    SIN_ENV=$(mktemp)
    log "docker-compose config -q ($COMPOSE_FILE)"
    env "${COMPOSE_SECRETS[@]}" docker-compose -f "$COMPOSE_FILE" --env-file "$SIN_ENV" --profile alpespartner config -q ||
        FAILED+=("docker-compose config")
    for i in "${!COMPOSE_SECRETS[@]}"; do
        sin=("${COMPOSE_SECRETS[@]:0:i}" "${COMPOSE_SECRETS[@]:i+1}")
        if env -u "${COMPOSE_SECRETS[i]%%=*}" "${sin[@]}" docker-compose -f "$COMPOSE_FILE" --env-file "$SIN_ENV" \
            --profile alpespartner config -q 2>/dev/null; then
            log "docker-compose config accepted the file without ${COMPOSE_SECRETS[i]%%=*}"
            FAILED+=("docker-compose config without ${COMPOSE_SECRETS[i]%%=*}")
        fi
    done
    # The override for a production broker (per-role tokens, its CA).
    SEGURO_FILE=docker-compose-alpespartner.seguro.yml
    log "docker-compose config -q ($COMPOSE_FILE + $SEGURO_FILE)"
    env "${COMPOSE_SECRETS[@]}" PULSAR_SERVICE_URL=pulsar+ssl://broker:6651 PULSAR_ADMIN_URL=https://broker:8443 \
        PULSAR_CA_FILE=/nonexistent/ca.pem PULSAR_TOKENS_DIR=/nonexistent/tokens \
        docker-compose -f "$COMPOSE_FILE" -f "$SEGURO_FILE" --env-file "$SIN_ENV" --profile alpespartner config -q ||
        FAILED+=("docker-compose config with $SEGURO_FILE")
    rm -f "$SIN_ENV"
fi

if [[ ${#FAILED[@]} -gt 0 ]]; then
    log "failed steps: ${FAILED[*]}"
    exit 1
fi
