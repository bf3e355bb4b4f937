#!/usr/bin/env bash
# Runs an Apache Pulsar standalone broker as a plain JVM process (no Docker).
#
#   scripts/pulsar.sh fetch    download (via Maven) and unpack the pinned distribution
#   scripts/pulsar.sh home     fetch if needed, print the distribution directory
#   scripts/pulsar.sh start    start a broker on 127.0.0.1 and wait until it works
#   scripts/pulsar.sh stop     stop it (TERM the process group, then KILL)
#   scripts/pulsar.sh status   exit 0 if it runs and answers
#   scripts/pulsar.sh logs     tail -f its log (LINES=N to only print N lines)
#   scripts/pulsar.sh clean    stop it and remove its data
#   scripts/pulsar.sh admin|client|perf ARGS
#                              run bin/pulsar-admin|pulsar-client|pulsar-perf against it
#   scripts/pulsar.sh settings (secured mode only) print the client settings
#
# Env: PULSAR_PORT (6650), PULSAR_HTTP_PORT (8080), PULSAR_START_TIMEOUT (180 s),
#      PULSAR_HEARTBEAT (5 s between progress lines while downloading/starting),
#      PULSAR_MEM (-Xms512m -Xmx1g -XX:MaxDirectMemorySize=1g), PULSAR_GC,
#      PULSAR_CONF_OVERRIDES ("key=value ..." extra standalone.conf settings),
#      PULSAR_CLIENT_CONF (a client.conf for admin|client|perf instead of the
#      generated one); secured mode: PULSAR_SEGURO, PULSAR_TLS_PORT (6671),
#      PULSAR_HTTPS_PORT (8471), PULSAR_ROLES, PULSAR_ROLE, PULSAR_AUTH (below).
# Each broker port gets its own directory $STATE_DIR/pulsar-$PULSAR_PORT, so a
# test broker (6651/8081) and a run broker (6650/8080) can run side by side.
#
# Secured mode, for trying production settings (every command above, with the
# same variables, acts on the secured broker):
#   PULSAR_SEGURO=1 scripts/pulsar.sh start      TLS + token/mTLS auth + authorization
#   PULSAR_SEGURO=1 scripts/pulsar.sh settings   print the settings clients need
#   PULSAR_SEGURO=1 scripts/pulsar-admin tenants list           as super-user admin
#   PULSAR_SEGURO=1 PULSAR_ROLE=marca [PULSAR_AUTH=tls] scripts/pulsar.sh client ...
# The plaintext ports are off: only pulsar+ssl://127.0.0.1:$PULSAR_TLS_PORT
# (6671) and https://127.0.0.1:$PULSAR_HTTPS_PORT (8471) listen. Clients
# authenticate with a JWT (AuthenticationProviderToken) or a client
# certificate whose CN is the role (AuthenticationProviderTls); authorization
# is on; topics are never created on use (allowAutoTopicCreation=false);
# `admin` is the super-user for provisioning (and `broker` for the
# broker's own client). Roles: admin and $PULSAR_ROLES (coordinador, the six
# participants, carga, caos). State in $STATE_DIR/pulsar-seguro-$PULSAR_TLS_PORT;
# its seguridad/ directory (mode 700), made once and reused, holds a throwaway
# CA (ca.pem), the server certificate (server.pem/.key, SAN 127.0.0.1 and
# localhost), the token signing key (token-secret.key), and per role
# <role>.token and <role>.pem/<role>.key (client certificate, CN = role); keys
# and tokens are mode 600. client.conf there is the admin's (token)
# configuration for bin/pulsar-admin and bin/pulsar-client. PULSAR_ROLE
# (admin) and PULSAR_AUTH (token or tls) choose whom admin|client|perf act as;
# PULSAR_CLIENT_CONF, when set, is used as is in either mode.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=pulsar

# The one place the Pulsar version is pinned.
PULSAR_VERSION=4.0.8
PULSAR_ARTIFACT="org.apache.pulsar:pulsar-server-distribution:${PULSAR_VERSION}:tar.gz:bin"
PULSAR_CACHE="$CACHE_DIR/pulsar"
PULSAR_TARBALL="$PULSAR_CACHE/pulsar-server-distribution-${PULSAR_VERSION}-bin.tar.gz"
PULSAR_HOME_DIR="$PULSAR_CACHE/apache-pulsar-${PULSAR_VERSION}"

PULSAR_PORT=${PULSAR_PORT:-6650}
PULSAR_HTTP_PORT=${PULSAR_HTTP_PORT:-8080}
PULSAR_START_TIMEOUT=${PULSAR_START_TIMEOUT:-180}
ADMIN_URL="http://127.0.0.1:${PULSAR_HTTP_PORT}"
SERVICE_URL="pulsar://127.0.0.1:${PULSAR_PORT}"
PORTS="$PULSAR_PORT/$PULSAR_HTTP_PORT"
INSTANCE_DIR="$STATE_DIR/pulsar-${PULSAR_PORT}"

SEGURO=${PULSAR_SEGURO:-0}
[[ $SEGURO == 0 || $SEGURO == 1 ]] || { echo "PULSAR_SEGURO must be 0 or 1, not '$SEGURO'" >&2; exit 2; }
# Every role that gets a token and a client certificate, besides admin.
PULSAR_ROLES=${PULSAR_ROLES:-coordinador influencer marca tracking afiliados comisiones notificaciones carga caos}
if [[ $SEGURO == 1 ]]; then
    PULSAR_TLS_PORT=${PULSAR_TLS_PORT:-6671}
    PULSAR_HTTPS_PORT=${PULSAR_HTTPS_PORT:-8471}
    ADMIN_URL="https://127.0.0.1:${PULSAR_HTTPS_PORT}"
    SERVICE_URL="pulsar+ssl://127.0.0.1:${PULSAR_TLS_PORT}"
    PORTS="$PULSAR_TLS_PORT/$PULSAR_HTTPS_PORT (TLS)"
    INSTANCE_DIR="$STATE_DIR/pulsar-seguro-${PULSAR_TLS_PORT}"
fi
SEG_DIR="$INSTANCE_DIR/seguridad"
# The binary protocol port the readiness probe waits for.
PROBE_PORT=$PULSAR_PORT
[[ $SEGURO == 0 ]] || PROBE_PORT=$PULSAR_TLS_PORT
CONF_FILE="$INSTANCE_DIR/conf/standalone.conf"
PID_FILE="$INSTANCE_DIR/pulsar.pid"
LOG_FILE="$INSTANCE_DIR/pulsar.log"
DATA_DIR="$INSTANCE_DIR/data"

# --- progress ----------------------------------------------------------------
# Every HEARTBEAT seconds (PULSAR_HEARTBEAT, default 5) a long wait says it is
# alive. heartbeat_start CMD... runs CMD (which prints one line of status)
# that often in the background until heartbeat_stop, or until this script
# exits ($$ is this script's pid, also inside the subshell).
HEARTBEAT=${PULSAR_HEARTBEAT:-5}
HEARTBEAT_PID=
heartbeat_start() {
    # The sleep holds no descriptor of ours and dies with the loop, so that a
    # caller reading this script's output is not kept waiting for it.
    (
        trap 'kill "$nap" 2>/dev/null; exit 0' TERM
        while kill -0 $$ 2>/dev/null; do
            sleep "$HEARTBEAT" </dev/null >/dev/null 2>&1 &
            nap=$!
            wait "$nap" || true
            kill -0 $$ 2>/dev/null && { "$@" || true; }
        done
    ) >&2 &
    HEARTBEAT_PID=$!
}
heartbeat_stop() {
    [[ -n $HEARTBEAT_PID ]] || return 0
    kill "$HEARTBEAT_PID" 2>/dev/null || true
    wait "$HEARTBEAT_PID" 2>/dev/null || true
    HEARTBEAT_PID=
}

# The Maven artifact's directory in the local repository, where the download
# grows (MAVEN_REPO when ~/.m2/repository is not where mvn keeps it).
M2_ARTIFACT_DIR="${MAVEN_REPO:-$HOME/.m2/repository}/org/apache/pulsar/pulsar-server-distribution/${PULSAR_VERSION}"
PULSAR_TARBALL_MB=245
# download_progress T0: one line with the MB fetched so far and the time spent.
download_progress() {
    local mb=0
    [[ -d $M2_ARTIFACT_DIR ]] && mb=$(du -sm "$M2_ARTIFACT_DIR" 2>/dev/null | cut -f1)
    log "downloading: ${mb} of about ${PULSAR_TARBALL_MB} MB ($((mb * 100 / PULSAR_TARBALL_MB))%), $(elapsed_since "$1")s"
}
# start_progress T0: elapsed time and the broker log's last line.
start_progress() {
    local last=""
    [[ -s $LOG_FILE ]] && last=$(tail -n 1 "$LOG_FILE" | cut -c1-160)
    log "starting, $(elapsed_since "$1")s: ${last:-(no log line yet)}"
}

# --- fetch -------------------------------------------------------------------
fetch() {
    if [[ -x $PULSAR_HOME_DIR/bin/pulsar && -f $PULSAR_HOME_DIR/.unpacked ]]; then
        return 0
    fi
    mkdir -p "$PULSAR_CACHE"
    # Serialise concurrent fetches (e.g. two brokers started at once).
    exec 9>"$PULSAR_CACHE/.fetch.lock"
    flock 9
    if [[ -x $PULSAR_HOME_DIR/bin/pulsar && -f $PULSAR_HOME_DIR/.unpacked ]]; then
        exec 9>&-
        return 0
    fi
    need_cmd java default-jre-headless
    need_cmd mvn maven
    if [[ ! -s $PULSAR_TARBALL ]]; then
        local t0 tmp
        t0=$(now_s)
        tmp=$(mktemp -d "$PULSAR_CACHE/.download.XXXXXX")
        log "downloading Pulsar $PULSAR_VERSION distribution with Maven (about 245 MB)"
        # Maven's output is only shown when it fails; the heartbeat shows
        # the download growing in the local repository meanwhile.
        heartbeat_start download_progress "$t0"
        if ! mvn -B -q dependency:copy -Dartifact="$PULSAR_ARTIFACT" -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
            heartbeat_stop
            cat "$tmp.log" >&2
            rm -rf "$tmp" "$tmp.log"
            die "mvn dependency:copy of $PULSAR_ARTIFACT failed"
        fi
        heartbeat_stop
        rm -f "$tmp.log"
        mv "$tmp/$(basename "$PULSAR_TARBALL")" "$PULSAR_TARBALL"
        rm -rf "$tmp"
        log "downloaded $(du -h "$PULSAR_TARBALL" | cut -f1) in $(elapsed_since "$t0")s"
    fi
    local t0 tmp
    t0=$(now_s)
    tmp=$(mktemp -d "$PULSAR_CACHE/.unpack.XXXXXX")
    log "unpacking $(basename "$PULSAR_TARBALL")"
    if ! tar -xzf "$PULSAR_TARBALL" -C "$tmp"; then
        rm -rf "$tmp"
        die "cannot unpack $PULSAR_TARBALL; delete it and retry"
    fi
    if [[ ! -x $tmp/apache-pulsar-${PULSAR_VERSION}/bin/pulsar ]]; then
        rm -rf "$tmp"
        die "unpacked distribution has no bin/pulsar; delete $PULSAR_TARBALL and retry"
    fi
    rm -rf "$PULSAR_HOME_DIR"
    mv "$tmp/apache-pulsar-${PULSAR_VERSION}" "$PULSAR_HOME_DIR"
    rm -rf "$tmp"
    touch "$PULSAR_HOME_DIR/.unpacked"
    log "Pulsar $PULSAR_VERSION ready in $PULSAR_HOME_DIR (unpacked in $(elapsed_since "$t0")s)"
    exec 9>&-
}

# --- configuration -----------------------------------------------------------
# set_prop FILE KEY VALUE: sets KEY=VALUE in a Java properties file.
set_prop() {
    local file=$1 key=$2 value=$3
    if grep -q "^${key}=" "$file"; then
        # '|' as sed delimiter; values here never contain it.
        sed -i "s|^${key}=.*|${key}=${value}|" "$file"
    else
        # The distribution's file may not end in a newline.
        [[ -z $(tail -c 1 "$file") ]] || echo >>"$file"
        printf '%s=%s\n' "$key" "$value" >>"$file"
    fi
}

# Thread pools sized for the machine. Pulsar's defaults assume a broker with
# the host to itself (2 IO threads per core, 8 ordered executors, ...); here
# the broker, its bookie, MariaDB and seven Go processes share the cores, and
# every hand-off between pools is a context switch. At one thread per pool
# per two cores, on 2 cores, the broker's CPU per saga at 60 sagas/s fell by
# about a third (7.4 -> 4.9 ms) and the whole system's warm peak rose by
# about a third (238 -> 323 sagas/s) (docs/performance.md).
# PULSAR_CONF_OVERRIDES still wins.
POOL_THREADS=$(($(nproc 2>/dev/null || echo 2) / 2))
((POOL_THREADS >= 1)) || POOL_THREADS=1

# A subscription's cursor that has caught up waits this long before looking
# for new entries (default 10 ms), so a message that arrives within 10 ms of
# the previous dispatch waits for the next look. A saga is a chain of such
# messages: at 0 a keyed produce -> consume round trip at concurrency 1 went
# from 10.7 to 2.0 ms (docs/performance.md). PULSAR_CONF_OVERRIDES still wins.
NEW_ENTRIES_CHECK_DELAY_MS=0

# The bookie's journal flushes (and, where journalSyncData=true, fsyncs) a
# group of entries as soon as its queue is empty instead of waiting up to
# journalMaxGroupWaitMSec (1 ms) for more. An entry is acknowledged after the
# same flush either way, so durability is unchanged; under load the queue is
# rarely empty and groups still form. At one message in flight a produce ->
# consume round trip fell from ~2.4 to ~1.2 ms here, and a saga is a chain of
# seven of them (docs/performance.md). PULSAR_CONF_OVERRIDES still wins.
JOURNAL_FLUSH_WHEN_QUEUE_EMPTY=true

write_conf() {
    mkdir -p "$(dirname "$CONF_FILE")"
    cp "$PULSAR_HOME_DIR/conf/standalone.conf" "$CONF_FILE.tmp"
    local kv
    for kv in \
        "brokerServicePort=$PULSAR_PORT" \
        "webServicePort=$PULSAR_HTTP_PORT" \
        "advertisedAddress=127.0.0.1" \
        "bindAddress=127.0.0.1" \
        "brokerDeduplicationEnabled=true" \
        "brokerDeleteInactiveTopicsEnabled=false" \
        "systemTopicEnabled=true" \
        "topicLevelPoliciesEnabled=true" \
        "allowAutoTopicCreation=true" \
        "numIOThreads=$POOL_THREADS" \
        "numOrderedExecutorThreads=$POOL_THREADS" \
        "topicOrderedExecutorThreadNum=$POOL_THREADS" \
        "managedLedgerNumSchedulerThreads=$POOL_THREADS" \
        "bookkeeperClientNumIoThreads=$POOL_THREADS" \
        "bookkeeperClientNumWorkerThreads=$POOL_THREADS" \
        "serverNumIOThreads=$POOL_THREADS" \
        "numReadWorkerThreads=$POOL_THREADS" \
        "numJournalCallbackThreads=$POOL_THREADS" \
        "numAddWorkerThreads=0" \
        "managedLedgerNewEntriesCheckDelayInMillis=$NEW_ENTRIES_CHECK_DELAY_MS" \
        "journalFlushWhenQueueEmpty=$JOURNAL_FLUSH_WHEN_QUEUE_EMPTY" \
        "${SECURE_CONF[@]}" \
        ${PULSAR_CONF_OVERRIDES:-}; do
        set_prop "$CONF_FILE.tmp" "${kv%%=*}" "${kv#*=}"
    done
    mv "$CONF_FILE.tmp" "$CONF_FILE"
}

# --- secured mode ------------------------------------------------------------
# Settings written only when PULSAR_SEGURO=1 (before PULSAR_CONF_OVERRIDES).
SECURE_CONF=()
if [[ $SEGURO == 1 ]]; then
    SECURE_CONF=(
        # No plaintext listener: an empty port is "off" for the broker.
        "brokerServicePort=" "webServicePort="
        "brokerServicePortTls=$PULSAR_TLS_PORT" "webServicePortTls=$PULSAR_HTTPS_PORT"
        "tlsCertificateFilePath=$SEG_DIR/server.pem" "tlsKeyFilePath=$SEG_DIR/server.key"
        "tlsTrustCertsFilePath=$SEG_DIR/ca.pem"
        "tlsAllowInsecureConnection=false"
        # Token clients present no certificate; mTLS clients do.
        "tlsRequireTrustedClientCertOnConnect=false"
        "authenticationEnabled=true"
        "authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderToken,org.apache.pulsar.broker.authentication.AuthenticationProviderTls"
        "tokenSecretKey=file://$SEG_DIR/token-secret.key"
        "authorizationEnabled=true"
        "superUserRoles=admin,broker"
        # As in production, topics exist because an operator provisioned them
        # (coordinador -preparar), never because a client named them.
        "allowAutoTopicCreation=false"
        # The broker's own clients (system topics, lookups, standalone's set-up)
        # reach it through the TLS ports only, as role broker.
        "brokerClientTlsEnabled=true"
        "brokerClientTrustCertsFilePath=$SEG_DIR/ca.pem"
        "brokerClientAuthenticationPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken"
        "brokerClientAuthenticationParameters=file://$SEG_DIR/broker.token"
    )
fi

# pulsar_tool TOOL ARGS...: runs bin/TOOL with the small CLI JVM.
pulsar_tool() { (cli_env && exec "$PULSAR_HOME_DIR/bin/$1" "${@:2}"); }

# make_security: the CA, certificates, signing key and tokens of the secured
# broker, each made once (kept across restarts; `clean` removes them).
make_security() {
    need_cmd openssl
    mkdir -p "$SEG_DIR"
    chmod 700 "$SEG_DIR"
    tls_ca "$SEG_DIR" "alpespartner local test CA (pulsar)"
    tls_cert "$SEG_DIR" server 127.0.0.1 server
    local role made=0
    for role in admin $PULSAR_ROLES; do
        [[ -s $SEG_DIR/$role.pem ]] || made=$((made + 1))
        tls_cert "$SEG_DIR" "$role" "$role" client
    done
    ((made == 0)) || log "made client certificates for $made roles in $SEG_DIR"
    if [[ ! -s $SEG_DIR/token-secret.key ]]; then
        log "making the token signing key (bin/pulsar tokens create-secret-key)"
        (umask 077 && pulsar_tool pulsar tokens create-secret-key --output "$SEG_DIR/token-secret.key.tmp") >/dev/null ||
            die "bin/pulsar tokens create-secret-key failed"
        mv "$SEG_DIR/token-secret.key.tmp" "$SEG_DIR/token-secret.key"
        # Tokens signed by a previous key are worthless now.
        rm -f "$SEG_DIR"/*.token
    fi
    for role in broker admin $PULSAR_ROLES; do
        [[ -s $SEG_DIR/$role.token ]] && continue
        log "making the token of role $role (bin/pulsar tokens create --subject $role)"
        (umask 077 && pulsar_tool pulsar tokens create --secret-key "file://$SEG_DIR/token-secret.key" \
            --subject "$role" >"$SEG_DIR/$role.token.tmp") || die "bin/pulsar tokens create for $role failed"
        mv "$SEG_DIR/$role.token.tmp" "$SEG_DIR/$role.token"
    done
    chmod 600 "$SEG_DIR"/*.key "$SEG_DIR"/*.token
    secure_client_conf admin token >/dev/null
}

# secure_client_conf ROLE token|tls: writes a client.conf for the secured
# broker acting as ROLE (the admin's token one is seguridad/client.conf) and
# prints its path.
secure_client_conf() {
    local role=$1 auth=$2 file plugin params
    case $auth in
    token)
        plugin=org.apache.pulsar.client.impl.auth.AuthenticationToken
        params="file://$SEG_DIR/$role.token"
        [[ -s $SEG_DIR/$role.token ]] || die "no token for role $role in $SEG_DIR (start the secured broker first)"
        ;;
    tls)
        plugin=org.apache.pulsar.client.impl.auth.AuthenticationTls
        params="tlsCertFile:$SEG_DIR/$role.pem,tlsKeyFile:$SEG_DIR/$role.key"
        [[ -s $SEG_DIR/$role.pem ]] || die "no client certificate for role $role in $SEG_DIR"
        ;;
    *) die "PULSAR_AUTH must be token or tls, not $auth" ;;
    esac
    if [[ $role == admin && $auth == token ]]; then file="$SEG_DIR/client.conf"; else file="$SEG_DIR/client-$role-$auth.conf"; fi
    cp "$PULSAR_HOME_DIR/conf/client.conf" "$file.$$"
    local kv
    for kv in "webServiceUrl=$ADMIN_URL" "brokerServiceUrl=$SERVICE_URL" \
        "authPlugin=$plugin" "authParams=$params" \
        "tlsTrustCertsFilePath=$SEG_DIR/ca.pem" "tlsAllowInsecureConnection=false" \
        "tlsEnableHostnameVerification=true"; do
        set_prop "$file.$$" "${kv%%=*}" "${kv#*=}"
    done
    mv "$file.$$" "$file"
    echo "$file"
}

# settings: what a client of the secured broker needs, one line each.
settings() {
    [[ -s $SEG_DIR/admin.token ]] || die "no secured broker state in $SEG_DIR (PULSAR_SEGURO=1 scripts/pulsar.sh start)"
    cat <<EOF
Secured broker settings (PULSAR_SEGURO=1, state $INSTANCE_DIR):
  service URL        $SERVICE_URL
  admin URL          $ADMIN_URL
  trust store (CA)   $SEG_DIR/ca.pem
  hostname check     on (server certificate SAN: IP 127.0.0.1, DNS localhost)
  super-user role    admin (provisioning); broker (the broker's own client)
  admin client.conf  $SEG_DIR/client.conf   (PULSAR_CLIENT_CONF=... bin/pulsar-admin|pulsar-client)
  per role: token file / client certificate / client key (CN = role)
EOF
    local role
    for role in admin $PULSAR_ROLES; do
        printf '  %-15s %s  %s  %s\n' "$role" "$SEG_DIR/$role.token" "$SEG_DIR/$role.pem" "$SEG_DIR/$role.key"
    done
}

# curl_admin ARGS...: curl against the admin API; in secured mode with the CA
# and the admin's token (passed on stdin, never on a command line).
curl_admin() {
    if [[ $SEGURO == 1 ]]; then
        printf 'header = "Authorization: Bearer %s"\n' "$(cat "$SEG_DIR/admin.token")" |
            curl --cacert "$SEG_DIR/ca.pem" -K - "$@"
    else
        curl "$@"
    fi
}

# --- health ------------------------------------------------------------------
# The metadata dir is on the command line of both bin/pulsar and the JVM it execs.
running() { pidfile_alive "$PID_FILE" "$DATA_DIR/metadata"; }

# cluster_ready: the admin API answers and lists the standalone cluster.
cluster_ready() {
    curl_admin -sf --max-time 5 "$ADMIN_URL/admin/v2/clusters" 2>/dev/null | grep -q '"standalone"'
}

# produce_ready: a topic can be created and one message produced through the
# binary protocol port with the distribution's own client (a real round trip
# through broker and bookie). The probe topic is then deleted again.
produce_ready() {
    port_open "$PROBE_PORT" || return 1
    local topic="persistent://public/default/sagas-readiness-probe"
    # In secured mode as the admin (token), through TLS; topics are not
    # created on use there, so the probe's is created first.
    if [[ $SEGURO == 1 ]]; then
        export PULSAR_CLIENT_CONF="$SEG_DIR/client.conf"
        curl_admin -s -o /dev/null --max-time 10 -X PUT \
            "$ADMIN_URL/admin/v2/persistent/public/default/sagas-readiness-probe" || return 1
    fi
    if ! (cli_env && exec timeout 60 "$PULSAR_HOME_DIR/bin/pulsar-client" \
        --url "$SERVICE_URL" produce "$topic" -m ready -n 1 \
        >"$INSTANCE_DIR/readiness.log" 2>&1); then
        return 1
    fi
    curl_admin -s -o /dev/null --max-time 10 -X DELETE \
        "$ADMIN_URL/admin/v2/persistent/public/default/sagas-readiness-probe?force=true" || true
}

# probe: readiness check for wait_until; 100 = the broker process died.
probe() {
    running || return 100
    cluster_ready && produce_ready
}

# --- command line tools ------------------------------------------------------
# cli_env: small, fast-starting JVM for the CLI tools, whatever the broker uses.
cli_env() {
    export PULSAR_MEM=${PULSAR_CLI_MEM:--Xmx256m -XX:MaxDirectMemorySize=256m}
    export PULSAR_GC=${PULSAR_CLI_GC:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}
    export PULSAR_GC_LOG=" " PULSAR_EXTRA_OPTS=${PULSAR_CLI_EXTRA_OPTS:-}
    export PULSAR_LOG_DIR="$STATE_DIR/cli-logs"
}

# client_conf: writes a client.conf pointing at this broker (or at
# PULSAR_ADMIN_URL / PULSAR_SERVICE_URL when set) and prints its path.
client_conf() {
    if [[ $SEGURO == 1 ]]; then
        secure_client_conf "${PULSAR_ROLE:-admin}" "${PULSAR_AUTH:-token}"
        return
    fi
    local web=${PULSAR_ADMIN_URL:-$ADMIN_URL} svc=${PULSAR_SERVICE_URL:-pulsar://127.0.0.1:$PULSAR_PORT}
    local file="$STATE_DIR/cli/client-${PULSAR_PORT}-${PULSAR_HTTP_PORT}.conf"
    mkdir -p "$(dirname "$file")"
    cp "$PULSAR_HOME_DIR/conf/client.conf" "$file.$$"
    set_prop "$file.$$" webServiceUrl "$web"
    set_prop "$file.$$" brokerServiceUrl "$svc"
    mv "$file.$$" "$file"
    echo "$file"
}

# run_tool TOOL ARGS...: runs bin/TOOL (pulsar-admin, pulsar-client, pulsar-perf)
# of the cached distribution against this broker.
run_tool() {
    local tool=$1
    shift
    fetch
    local conf
    # A client.conf of the caller's (e.g. another role's) wins.
    conf=${PULSAR_CLIENT_CONF:-$(client_conf)}
    cli_env
    if [[ $tool == pulsar-perf ]]; then
        # Load generation wants the optimising JIT and a bit more memory.
        export PULSAR_EXTRA_OPTS="${PULSAR_PERF_MEM:--Xms256m -Xmx1g -XX:MaxDirectMemorySize=512m} ${PULSAR_EXTRA_OPTS}"
        export PULSAR_PERFTEST_CONF="$conf"
    else
        export PULSAR_CLIENT_CONF="$conf"
    fi
    exec "$PULSAR_HOME_DIR/bin/$tool" "$@"
}

# --- commands ----------------------------------------------------------------
start() {
    need_cmd curl
    need_cmd setsid util-linux
    need_cmd timeout coreutils
    fetch
    if running; then
        if cluster_ready; then
            log "already running and healthy on $PORTS (pid $(pid_from_file "$PID_FILE"))"
            return 0
        fi
        log "process $(pid_from_file "$PID_FILE") exists but does not answer yet; waiting"
    else
        local p
        local listen=("$PULSAR_PORT" "$PULSAR_HTTP_PORT")
        [[ $SEGURO == 0 ]] || listen=("$PULSAR_TLS_PORT" "$PULSAR_HTTPS_PORT")
        for p in "${listen[@]}"; do
            port_open "$p" && die "port $p is already in use by another process"
        done
        [[ $SEGURO == 0 ]] || make_security
        write_conf
        mkdir -p "$DATA_DIR" "$INSTANCE_DIR/logs"
        : >"$LOG_FILE"
        rm -f "$INSTANCE_DIR/readiness.log"
        log "starting standalone broker: $SERVICE_URL $ADMIN_URL (state $INSTANCE_DIR)"
        # The RocksDB metadata store (the 4.x default) runs in-process: no
        # ZooKeeper port. Its bookie then picks a free port itself (kept in its
        # cookie, bound to 0.0.0.0) and ignores --bookkeeper-port; the derived
        # port below only matters if metadataStoreUrl pointed at ZooKeeper.
        local bk_port=$((3181 + (PROBE_PORT - 6650) * 10))
        ((bk_port > 1024 && bk_port < 60000)) || bk_port=3181
        PULSAR_STANDALONE_CONF="$CONF_FILE" \
            PULSAR_LOG_DIR="$INSTANCE_DIR/logs" \
            PULSAR_MEM="${PULSAR_MEM:--Xms512m -Xmx1g -XX:MaxDirectMemorySize=1g}" \
            spawn_detached "$PID_FILE" "$LOG_FILE" \
            "$PULSAR_HOME_DIR/bin/pulsar" standalone -nfw -nss \
            --advertised-address 127.0.0.1 \
            --bookkeeper-dir "$DATA_DIR/bookkeeper" \
            --metadata-dir "$DATA_DIR/metadata" \
            --bookkeeper-port "$bk_port"
    fi
    local t0 rc=0
    t0=$(now_s)
    heartbeat_start start_progress "$t0"
    wait_until "$PULSAR_START_TIMEOUT" "Pulsar on $PORTS" probe || rc=$?
    heartbeat_stop
    if [[ $rc -ne 0 ]]; then
        tail_log "$LOG_FILE" 60 "Pulsar log $LOG_FILE"
        [[ -s $INSTANCE_DIR/readiness.log ]] && tail_log "$INSTANCE_DIR/readiness.log" 15 "readiness probe output"
        stop_pidfile "$PID_FILE" "Pulsar" 30 "$DATA_DIR/metadata" || true
        die "Pulsar did not become ready (see $LOG_FILE)"
    fi
    log "ready in $(elapsed_since "$t0")s: $SERVICE_URL $ADMIN_URL (pid $(pid_from_file "$PID_FILE"), log $LOG_FILE)"
    [[ $SEGURO == 0 ]] || settings
}

stop() {
    stop_pidfile "$PID_FILE" "Pulsar on port $PROBE_PORT" "${PULSAR_STOP_TIMEOUT:-60}" "$DATA_DIR/metadata"
}

status() {
    if ! running; then
        echo "Pulsar on $PORTS: not running"
        return 1
    fi
    if cluster_ready; then
        echo "Pulsar on $PORTS: running and answering (pid $(pid_from_file "$PID_FILE"))"
    else
        echo "Pulsar on $PORTS: process $(pid_from_file "$PID_FILE") runs but the admin API does not answer"
        return 1
    fi
}

logs() {
    [[ -f $LOG_FILE ]] || die "no log file $LOG_FILE"
    if [[ -n ${LINES:-} ]]; then tail -n "$LINES" "$LOG_FILE"; else tail -n 100 -f "$LOG_FILE"; fi
}

clean() {
    stop
    rm -rf "$INSTANCE_DIR"
    log "removed $INSTANCE_DIR"
}

case "${1:-}" in
fetch) fetch ;;
home) fetch && echo "$PULSAR_HOME_DIR" ;;
start) start ;;
stop) stop ;;
status) status ;;
logs) logs ;;
clean) clean ;;
admin) shift && run_tool pulsar-admin "$@" ;;
client) shift && run_tool pulsar-client "$@" ;;
perf) shift && run_tool pulsar-perf "$@" ;;
settings) [[ $SEGURO == 1 ]] || die "settings: only for the secured broker (PULSAR_SEGURO=1)"; settings ;;
*)
    echo "usage: $0 {fetch|home|start|stop|status|logs|clean|admin ARGS|client ARGS|perf ARGS|settings}" >&2
    exit 2
    ;;
esac
