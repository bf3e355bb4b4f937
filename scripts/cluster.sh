#!/usr/bin/env bash
# A real multi-node Apache Pulsar cluster on loopback, as plain JVM processes
# (no Docker), from the distribution scripts/pulsar.sh pins and fetches:
# one ZooKeeper (metadata store), three bookies, two brokers.
#
#   scripts/cluster.sh start              start what is not running, wait until it all works
#   scripts/cluster.sh stop               stop brokers, bookies, ZooKeeper (in that order)
#   scripts/cluster.sh status             each component up/down with pid and ports
#   scripts/cluster.sh kill-broker N      kill -9 broker N (1 or 2)
#   scripts/cluster.sh restart-broker N   start broker N again and wait until it serves
#   scripts/cluster.sh logs [COMPONENT]   tail -f a component's log (zk, bookie1..3,
#                                         broker1..2; all without one; LINES=N prints N lines)
#   scripts/cluster.sh clean              stop it and remove .run/cluster
#   scripts/cluster.sh admin|client|perf ARGS
#                                         bin/pulsar-admin|pulsar-client|pulsar-perf against it
#   scripts/cluster.sh urls               print the service and admin URLs
#
# Clients use the multi-host URLs pulsar://127.0.0.1:6680,127.0.0.1:6681 and
# http://127.0.0.1:8090,127.0.0.1:8091. scripts/pulsar-admin reaches the
# cluster with PULSAR_ADMIN_URL=http://127.0.0.1:8090 (or use `admin` here).
#
# Env (defaults in brackets):
#   CLUSTER_NAME [sagas-cluster]
#   CLUSTER_ZK_PORT [2181]  CLUSTER_ZK_STATS_PORT [8100]
#   CLUSTER_BOOKIE_PORTS ["3181 3182 3183"]  CLUSTER_BOOKIE_STATS_PORTS ["8101 8102 8103"]
#   CLUSTER_BROKER_PORTS ["6680 6681"]  CLUSTER_BROKER_HTTP_PORTS ["8090 8091"]
#   CLUSTER_ZK_MEM [-Xms128m -Xmx256m]
#   CLUSTER_BOOKIE_MEM [-Xms256m -Xmx256m -XX:MaxDirectMemorySize=256m]
#   CLUSTER_BROKER_MEM [-Xms512m -Xmx512m -XX:MaxDirectMemorySize=512m]
#   CLUSTER_GC [-XX:+UseG1GC -XX:MaxGCPauseMillis=10 -XX:+PerfDisableSharedMem]
#   CLUSTER_ENSEMBLE / CLUSTER_WRITE_QUORUM / CLUSTER_ACK_QUORUM [2 / 2 / 2]
#   CLUSTER_SESSION_TIMEOUT_MS [30000] metadata session of brokers and bookies:
#                              how long a kill -9'd broker keeps its bundles
#   CLUSTER_AUTORECOVERY [false] run BookKeeper's auto-recovery in each bookie
#   CLUSTER_START_TIMEOUT [240 s per step]
#   CLUSTER_BROKER_CONF_OVERRIDES, CLUSTER_BOOKIE_CONF_OVERRIDES ("key=value ...")
# Each process has its own config copy (generated from the distribution's
# conf/*.conf), data, log and pid file under $STATE_DIR/cluster/<component>/.
set -euo pipefail
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
source "$SCRIPTS_DIR/lib.sh"
LOG_TAG=cluster

CLUSTER_DIR="$STATE_DIR/cluster"
CLUSTER_NAME=${CLUSTER_NAME:-sagas-cluster}
ZK_PORT=${CLUSTER_ZK_PORT:-2181}
ZK_STATS_PORT=${CLUSTER_ZK_STATS_PORT:-8100}
read -r -a BOOKIE_PORTS <<<"${CLUSTER_BOOKIE_PORTS:-3181 3182 3183}"
read -r -a BOOKIE_STATS_PORTS <<<"${CLUSTER_BOOKIE_STATS_PORTS:-8101 8102 8103}"
read -r -a BROKER_PORTS <<<"${CLUSTER_BROKER_PORTS:-6680 6681}"
read -r -a BROKER_HTTP_PORTS <<<"${CLUSTER_BROKER_HTTP_PORTS:-8090 8091}"
((${#BOOKIE_PORTS[@]} == 3 && ${#BOOKIE_STATS_PORTS[@]} == 3)) || die "CLUSTER_BOOKIE_PORTS and CLUSTER_BOOKIE_STATS_PORTS need three ports each"
((${#BROKER_PORTS[@]} == 2 && ${#BROKER_HTTP_PORTS[@]} == 2)) || die "CLUSTER_BROKER_PORTS and CLUSTER_BROKER_HTTP_PORTS need two ports each"
ZK_MEM=${CLUSTER_ZK_MEM:--Xms128m -Xmx256m}
BOOKIE_HEAP=${CLUSTER_BOOKIE_MEM:--Xms256m -Xmx256m -XX:MaxDirectMemorySize=256m}
BROKER_HEAP=${CLUSTER_BROKER_MEM:--Xms512m -Xmx512m -XX:MaxDirectMemorySize=512m}
# G1 rather than the distribution's ZGC: with heaps this small it pauses
# little, and ZGC's multi-mapped heap triples what RSS reports.
JVM_GC=${CLUSTER_GC:--XX:+UseG1GC -XX:MaxGCPauseMillis=10 -XX:+PerfDisableSharedMem}
ENSEMBLE=${CLUSTER_ENSEMBLE:-2}
WRITE_QUORUM=${CLUSTER_WRITE_QUORUM:-2}
ACK_QUORUM=${CLUSTER_ACK_QUORUM:-2}
SESSION_TIMEOUT_MS=${CLUSTER_SESSION_TIMEOUT_MS:-30000}
# Off by default: only brokers are killed here, and with it on each bookie's
# shutdown waits ~10 s for its recovery worker while the others start
# re-replicating the stopping bookie's ledgers.
AUTORECOVERY=${CLUSTER_AUTORECOVERY:-false}
START_TIMEOUT=${CLUSTER_START_TIMEOUT:-240}

ZK_URL="127.0.0.1:$ZK_PORT"
SERVICE_URL="pulsar://127.0.0.1:${BROKER_PORTS[0]},127.0.0.1:${BROKER_PORTS[1]}"
WEB_URL="http://127.0.0.1:${BROKER_HTTP_PORTS[0]},127.0.0.1:${BROKER_HTTP_PORTS[1]}"

BOOKIES=(bookie1 bookie2 bookie3)
BROKERS=(broker1 broker2)
COMPONENTS=(zk "${BOOKIES[@]}" "${BROKERS[@]}")

# Same reasoning as scripts/pulsar.sh: one thread per pool per two cores,
# since every process here shares the machine's cores with the others.
POOL_THREADS=$(($(nproc 2>/dev/null || echo 2) / 2))
((POOL_THREADS >= 1)) || POOL_THREADS=1

PULSAR_HOME_DIR=

# --- components --------------------------------------------------------------
comp_dir() { echo "$CLUSTER_DIR/$1"; }
comp_pidfile() { echo "$CLUSTER_DIR/$1/pid"; }
comp_log() { echo "$CLUSTER_DIR/$1/$1.log"; }
# comp_index NAME: 0-based index of bookieN / brokerN.
comp_index() { echo $((${1: -1} - 1)); }
# comp_ports NAME: the ports it listens on, service port first.
comp_ports() {
    local i
    case $1 in
    zk) echo "$ZK_PORT $ZK_STATS_PORT" ;;
    bookie*) i=$(comp_index "$1") && echo "${BOOKIE_PORTS[$i]} ${BOOKIE_STATS_PORTS[$i]}" ;;
    broker*) i=$(comp_index "$1") && echo "${BROKER_PORTS[$i]} ${BROKER_HTTP_PORTS[$i]}" ;;
    esac
}
valid_comp() {
    local c
    for c in "${COMPONENTS[@]}"; do [[ $c == "$1" ]] && return 0; done
    return 1
}

# comp_pid NAME: the pid of NAME if it runs. Each process is started with
# SAGAS_CLUSTER_COMPONENT=<its dir> in its environment, which survives the
# exec from bin/pulsar into java; a stale pid file pointing at a reused pid
# does not match.
comp_pid() {
    local pid _
    pid=$(pid_from_file "$(comp_pidfile "$1")")
    [[ -n $pid ]] || return 1
    # Just after the start the pid is still the wrapper shell's, not yet
    # exec'ed into the component with its environment: give it two seconds.
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || return 1
        if tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "SAGAS_CLUSTER_COMPONENT=$(comp_dir "$1")"; then
            echo "$pid"
            return 0
        fi
        sleep 0.1
    done
    return 1
}
comp_running() { comp_pid "$1" >/dev/null; }

# --- configuration -----------------------------------------------------------
# set_prop FILE KEY VALUE: sets KEY=VALUE in a Java properties file.
set_prop() {
    local file=$1 key=$2 value=$3
    if grep -q "^${key}=" "$file"; then
        sed -i "s|^${key}=.*|${key}=${value}|" "$file"
    else
        [[ -z $(tail -c 1 "$file") ]] || echo >>"$file"
        printf '%s=%s\n' "$key" "$value" >>"$file"
    fi
}
# write_conf SOURCE DEST KEY=VALUE...: DEST is SOURCE with the settings applied.
write_conf() {
    local src=$1 dest=$2 kv
    shift 2
    mkdir -p "$(dirname "$dest")"
    cp "$src" "$dest.tmp"
    for kv in "$@"; do set_prop "$dest.tmp" "${kv%%=*}" "${kv#*=}"; done
    mv "$dest.tmp" "$dest"
}

zk_conf() {
    local d
    d=$(comp_dir zk)
    write_conf "$PULSAR_HOME_DIR/conf/zookeeper.conf" "$d/conf/zookeeper.conf" \
        "dataDir=$d/data" \
        "clientPort=$ZK_PORT" \
        "clientPortAddress=127.0.0.1" \
        "admin.enableServer=false" \
        "metricsProvider.httpHost=127.0.0.1" \
        "metricsProvider.httpPort=$ZK_STATS_PORT" \
        "maxSessionTimeout=$((SESSION_TIMEOUT_MS > 40000 ? SESSION_TIMEOUT_MS : 40000))"
}

bookie_conf() {
    local name=$1 d i kv
    d=$(comp_dir "$name")
    i=$(comp_index "$name")
    # shellcheck disable=SC2086 # the overrides are a word list
    write_conf "$PULSAR_HOME_DIR/conf/bookkeeper.conf" "$d/conf/bookkeeper.conf" \
        "bookiePort=${BOOKIE_PORTS[$i]}" \
        "advertisedAddress=127.0.0.1" \
        "listeningInterface=lo" \
        "allowLoopback=true" \
        "useHostNameAsBookieID=false" \
        "journalDirectory=$d/data/journal" \
        "ledgerDirectories=$d/data/ledgers" \
        "metadataServiceUri=zk://$ZK_URL/ledgers" \
        "zkServers=$ZK_URL" \
        "zkTimeout=$SESSION_TIMEOUT_MS" \
        "prometheusStatsHttpAddress=127.0.0.1" \
        "prometheusStatsHttpPort=${BOOKIE_STATS_PORTS[$i]}" \
        "httpServerEnabled=false" \
        "serverNumIOThreads=$POOL_THREADS" \
        "numReadWorkerThreads=$POOL_THREADS" \
        "numHighPriorityWorkerThreads=$POOL_THREADS" \
        "numJournalCallbackThreads=$POOL_THREADS" \
        "journalFlushWhenQueueEmpty=true" \
        "autoRecoveryDaemonEnabled=$AUTORECOVERY" \
        ${CLUSTER_BOOKIE_CONF_OVERRIDES:-}
}

broker_conf() {
    local name=$1 d i
    d=$(comp_dir "$name")
    i=$(comp_index "$name")
    # The broker settings of scripts/pulsar.sh's standalone that matter to the
    # product (de-duplication, topics kept, system topics, no 10 ms cursor
    # poll, thread pools for a shared 2-core machine), plus the cluster's own.
    # shellcheck disable=SC2086 # the overrides are a word list
    write_conf "$PULSAR_HOME_DIR/conf/broker.conf" "$d/conf/broker.conf" \
        "clusterName=$CLUSTER_NAME" \
        "metadataStoreUrl=zk:$ZK_URL" \
        "configurationMetadataStoreUrl=zk:$ZK_URL" \
        "metadataStoreSessionTimeoutMillis=$SESSION_TIMEOUT_MS" \
        "brokerServicePort=${BROKER_PORTS[$i]}" \
        "webServicePort=${BROKER_HTTP_PORTS[$i]}" \
        "advertisedAddress=127.0.0.1" \
        "bindAddress=127.0.0.1" \
        "managedLedgerDefaultEnsembleSize=$ENSEMBLE" \
        "managedLedgerDefaultWriteQuorum=$WRITE_QUORUM" \
        "managedLedgerDefaultAckQuorum=$ACK_QUORUM" \
        "bookkeeperClientMinNumRacksPerWriteQuorum=1" \
        "functionsWorkerEnabled=false" \
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
        "managedLedgerNewEntriesCheckDelayInMillis=0" \
        ${CLUSTER_BROKER_CONF_OVERRIDES:-}
}

# --- processes ---------------------------------------------------------------
# spawn NAME: starts NAME (its config already written) in its own process group.
spawn() {
    local name=$1 d cmd mem
    d=$(comp_dir "$name")
    mkdir -p "$d/data" "$d/logs"
    : >"$(comp_log "$name")"
    local env=(
        "SAGAS_CLUSTER_COMPONENT=$d"
        "PULSAR_LOG_DIR=$d/logs"
        "PULSAR_GC=$JVM_GC"
    )
    case $name in
    zk) cmd=zookeeper mem=$ZK_MEM env+=("PULSAR_ZK_CONF=$d/conf/zookeeper.conf") ;;
    bookie*)
        cmd=bookie mem=$BOOKIE_HEAP
        env+=("PULSAR_BOOKKEEPER_CONF=$d/conf/bookkeeper.conf" "BOOKIE_MEM=$mem" "BOOKIE_GC=$JVM_GC" "BOOKIE_LOG_DIR=$d/logs")
        ;;
    broker*) cmd=broker mem=$BROKER_HEAP env+=("PULSAR_BROKER_CONF=$d/conf/broker.conf") ;;
    esac
    env+=("PULSAR_MEM=$mem")
    log "starting $name (ports $(comp_ports "$name"), $mem)"
    (
        export "${env[@]}"
        spawn_detached "$(comp_pidfile "$name")" "$(comp_log "$name")" "$PULSAR_HOME_DIR/bin/pulsar" "$cmd"
    ) || exit 1
}

# stop_comp NAME [TIMEOUT_S]
stop_comp() {
    local name=$1 pid
    if pid=$(comp_pid "$name"); then
        stop_group "$pid" "$name" "${2:-60}" || return 1
    fi
    rm -f "$(comp_pidfile "$name")"
}

# check_ports NAME: dies if one of NAME's ports is taken by something else.
check_ports() {
    local p
    for p in $(comp_ports "$1"); do
        port_open "$p" && die "port $p (for $1) is already in use by another process"
    done
    return 0
}

# --- command line tools ------------------------------------------------------
# cli_env: small, fast-starting JVM for one-shot tools (as scripts/pulsar.sh).
cli_env() {
    export PULSAR_MEM="-Xmx256m -XX:MaxDirectMemorySize=256m" BOOKIE_MEM="-Xmx256m -XX:MaxDirectMemorySize=256m"
    export PULSAR_GC="-XX:+UseSerialGC -XX:TieredStopAtLevel=1" BOOKIE_GC="-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
    export PULSAR_GC_LOG=" " BOOKIE_GC_LOG=" " PULSAR_EXTRA_OPTS=" " BOOKIE_EXTRA_OPTS=" "
    export PULSAR_LOG_DIR="$CLUSTER_DIR/cli-logs" BOOKIE_LOG_DIR="$CLUSTER_DIR/cli-logs"
}

# tool TOOL ARGS...: scripts/pulsar.sh's admin|client|perf against the cluster.
tool() {
    local t=$1
    shift
    # The cluster is not secured: a client.conf or secured mode set for the
    # standalone broker does not apply to it.
    env -u PULSAR_CLIENT_CONF -u PULSAR_SEGURO \
        PULSAR_ADMIN_URL="$WEB_URL" PULSAR_SERVICE_URL="$SERVICE_URL" \
        PULSAR_PORT="${BROKER_PORTS[0]}" PULSAR_HTTP_PORT="${BROKER_HTTP_PORTS[0]}" \
        "$SCRIPTS_DIR/pulsar.sh" "$t" "$@"
}

# --- readiness ---------------------------------------------------------------
PROBE_OUT="$CLUSTER_DIR/readiness.log"
# zk_ok: ZooKeeper answers srvr (four-letter words are enabled by bin/pulsar).
zk_ok() {
    # shellcheck disable=SC2016
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"; printf srvr >&3; cat <&3' "$ZK_PORT" 2>/dev/null |
        grep -q '^Mode: standalone'
}

# initialized: the cluster's metadata is in ZooKeeper (a marker kept in
# ZooKeeper's own data dir, so removing the data removes the marker).
INIT_MARKER="$CLUSTER_DIR/zk/data/.sagas-initialized-$CLUSTER_NAME"
initialize() {
    [[ -f $INIT_MARKER ]] && return 0
    log "initialize-cluster-metadata --cluster $CLUSTER_NAME"
    if ! (cli_env && exec timeout 120 "$PULSAR_HOME_DIR/bin/pulsar" initialize-cluster-metadata \
        --cluster "$CLUSTER_NAME" \
        --metadata-store "zk:$ZK_URL" \
        --configuration-metadata-store "zk:$ZK_URL" \
        --web-service-url "$WEB_URL" \
        --broker-service-url "$SERVICE_URL" >"$PROBE_OUT" 2>&1); then
        tail_log "$PROBE_OUT" 40 "initialize-cluster-metadata output"
        die "initialize-cluster-metadata failed"
    fi
    touch "$INIT_MARKER"
}

# bookie_up NAME: its bookie and stats ports accept connections.
bookie_up() {
    local p
    for p in $(comp_ports "$1"); do port_open "$p" || return 1; done
}

# bookies_write: a ledger written and read across all three bookies.
bookies_write() {
    (cli_env && BOOKIE_CONF="$(comp_dir bookie1)/conf/bookkeeper.conf" exec timeout 90 \
        "$PULSAR_HOME_DIR/bin/bookkeeper" shell simpletest \
        --ensemble 3 --writeQuorum 3 --ackQuorum 3 --numEntries 10 >"$PROBE_OUT" 2>&1)
}

# broker_http NAME: that broker's web address.
broker_http() { echo "http://127.0.0.1:${BROKER_HTTP_PORTS[$(comp_index "$1")]}"; }
# broker_ok NAME: the broker lists itself in the cluster and its health check
# (a produce/consume round trip on its heartbeat topic) passes.
broker_ok() {
    local url
    url=$(broker_http "$1")
    curl -sf --max-time 10 "$url/admin/v2/brokers/$CLUSTER_NAME" 2>/dev/null |
        grep -qF "\"127.0.0.1:${BROKER_HTTP_PORTS[$(comp_index "$1")]}\"" || return 1
    curl -sf --max-time 30 "$url/admin/v2/brokers/health" 2>/dev/null | grep -q ok
}

# roundtrip: one message produced and consumed through the multi-host URL.
roundtrip() {
    local topic="persistent://public/default/sagas-cluster-readiness-$RANDOM"
    {
        tool client produce "$topic" -m ready -n 1 &&
            tool client consume "$topic" -s readiness -p Earliest -n 1
    } >"$PROBE_OUT" 2>&1 || return 1
    grep -q 'content:ready' "$PROBE_OUT" || return 1
    curl -s -o /dev/null --max-time 10 -X DELETE \
        "$(broker_http broker1)/admin/v2/persistent/${topic#persistent://}?force=true" || true
}

# await DESCRIPTION COMPONENTS CHECK...: waits until CHECK passes; gives up when
# one of COMPONENTS (comma-separated) dies; on failure prints the logs of the
# components involved and exits.
await() {
    local desc=$1 comps=$2 rc=0 c t0
    shift 2
    t0=$(now_s)
    rm -f "$PROBE_OUT"
    _AWAIT_NEXT=$((SECONDS + 15))
    wait_until "$START_TIMEOUT" "$desc" _await_probe "$comps" "$desc" "$t0" "$@" || rc=$?
    if [[ $rc -ne 0 ]]; then
        IFS=, read -r -a _cs <<<"$comps"
        for c in "${_cs[@]}"; do
            comp_running "$c" || warn "$c is not running"
            tail_log "$(comp_log "$c")" 40 "$c log $(comp_log "$c")"
        done
        [[ -s $PROBE_OUT ]] && tail_log "$PROBE_OUT" 20 "readiness probe output"
        die "$desc: not ready"
    fi
    log "$desc: ready in $(elapsed_since "$t0")s"
}
_await_probe() {
    local comps=$1 desc=$2 t0=$3 c
    shift 3
    IFS=, read -r -a _cs <<<"$comps"
    for c in "${_cs[@]}"; do comp_running "$c" || return 100; done
    if ((SECONDS >= _AWAIT_NEXT)); then
        log "waiting for $desc, $(elapsed_since "$t0")s"
        _AWAIT_NEXT=$((SECONDS + 15))
    fi
    "$@"
}
all_of() {
    local check=$1 c
    shift
    for c in "$@"; do "$check" "$c" || return 1; done
}

# --- commands ----------------------------------------------------------------
prepare() {
    need_cmd curl
    need_cmd setsid util-linux
    need_cmd timeout coreutils
    PULSAR_HOME_DIR=$("$SCRIPTS_DIR/pulsar.sh" home)
    mkdir -p "$CLUSTER_DIR"
}

# start_comps NAME...: writes the config of and starts those not running.
start_comps() {
    local c
    for c in "$@"; do
        comp_running "$c" && continue
        check_ports "$c"
        case $c in
        zk) zk_conf ;;
        bookie*) bookie_conf "$c" ;;
        broker*) broker_conf "$c" ;;
        esac
        spawn "$c"
    done
}

start() {
    prepare
    local t0 csv_b csv_k
    t0=$(now_s)
    start_comps zk
    await "ZooKeeper on $ZK_PORT" zk zk_ok
    initialize
    start_comps "${BOOKIES[@]}"
    csv_k=$(IFS=,; echo "${BOOKIES[*]}")
    await "bookies on ${BOOKIE_PORTS[*]}" "$csv_k" all_of bookie_up "${BOOKIES[@]}"
    await "a ledger on all three bookies (simpletest 3/3/3)" "$csv_k" bookies_write
    start_comps "${BROKERS[@]}"
    csv_b=$(IFS=,; echo "${BROKERS[*]}")
    await "brokers on ${BROKER_PORTS[*]}" "$csv_b" all_of broker_ok "${BROKERS[@]}"
    await "a message through $SERVICE_URL" "$csv_b" roundtrip
    log "cluster $CLUSTER_NAME ready in $(elapsed_since "$t0")s: $SERVICE_URL $WEB_URL"
}

stop() {
    local c rc=0
    for c in broker2 broker1 bookie3 bookie2 bookie1 zk; do
        stop_comp "$c" "${CLUSTER_STOP_TIMEOUT:-60}" || rc=1
    done
    return $rc
}

status() {
    local c pid rc=0 state ports
    for c in "${COMPONENTS[@]}"; do
        ports=$(comp_ports "$c")
        if pid=$(comp_pid "$c"); then
            state=up
            if [[ $c == broker* ]] && ! broker_ok "$c"; then state="up, not serving"; rc=1; fi
            [[ $c == zk ]] && ! zk_ok && { state="up, not answering"; rc=1; }
            printf '%-8s %-16s pid %-8s ports %s\n' "$c" "$state" "$pid" "$ports"
        else
            printf '%-8s %-16s %-12s ports %s\n' "$c" down "" "$ports"
            rc=1
        fi
    done
    return $rc
}

broker_arg() {
    [[ ${1:-} == 1 || ${1:-} == 2 ]] || die "broker number must be 1 or 2"
    echo "broker$1"
}

kill_broker() {
    local name pid
    name=$(broker_arg "${1:-}")
    pid=$(comp_pid "$name") || die "$name is not running"
    log "kill -9 $name (pid $pid)"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

restart_broker() {
    local name t0
    name=$(broker_arg "${1:-}")
    prepare
    comp_running zk || die "ZooKeeper is not running; use start"
    comp_running "$name" && stop_comp "$name"
    t0=$(now_s)
    start_comps "$name"
    await "$name" "$name" broker_ok "$name"
    log "$name back in $(elapsed_since "$t0")s"
}

logs() {
    local files=() c
    if [[ -n ${1:-} ]]; then
        valid_comp "$1" || die "unknown component $1 (one of: ${COMPONENTS[*]})"
        files=("$(comp_log "$1")")
    else
        for c in "${COMPONENTS[@]}"; do [[ -f $(comp_log "$c") ]] && files+=("$(comp_log "$c")"); done
    fi
    if ((${#files[@]} == 0)) || [[ ! -f ${files[0]} ]]; then die "no log files under $CLUSTER_DIR"; fi
    if [[ -n ${LINES:-} ]]; then tail -n "$LINES" "${files[@]}"; else tail -n 100 -f "${files[@]}"; fi
}

clean() {
    stop
    rm -rf "$CLUSTER_DIR"
    log "removed $CLUSTER_DIR"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
kill-broker) kill_broker "${2:-}" ;;
restart-broker) restart_broker "${2:-}" ;;
logs) logs "${2:-}" ;;
clean) clean ;;
urls) printf 'service %s\nadmin   %s\n' "$SERVICE_URL" "$WEB_URL" ;;
admin) shift && tool admin "$@" ;;
client) shift && tool client "$@" ;;
perf) shift && tool perf "$@" ;;
*)
    echo "usage: $0 {start|stop|status|kill-broker N|restart-broker N|logs [COMPONENT]|clean|urls|admin ARGS|client ARGS|perf ARGS}" >&2
    exit 2
    ;;
esac
