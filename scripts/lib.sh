# shellcheck shell=bash
# Shared helpers for the scripts in this directory. Source it, do not run it.

# Repository root, resolved from this file's location so callers work from any cwd.
SAGAS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Runtime state (data dirs, pid files, logs, binaries); removed by `make clean`.
# shellcheck disable=SC2034 # used by the scripts that source this file
STATE_DIR=${SAGAS_STATE_DIR:-$SAGAS_ROOT/.run}
# Downloads kept across runs and clones (Pulsar distribution).
# shellcheck disable=SC2034
CACHE_DIR=${SAGAS_CACHE_DIR:-$HOME/.cache/alpespartner}

# --- logging -----------------------------------------------------------------
_log_prefix() { printf '[%s %s]' "${LOG_TAG:-sagas}" "$(date +%H:%M:%S)"; }
log() { printf '%s %s\n' "$(_log_prefix)" "$*" >&2; }
warn() { printf '%s WARNING: %s\n' "$(_log_prefix)" "$*" >&2; }
die() { printf '%s ERROR: %s\n' "$(_log_prefix)" "$*" >&2; exit 1; }

# now_s: seconds since the epoch with millisecond precision.
now_s() { date +%s.%3N; }
# elapsed_since START: seconds elapsed since START (from now_s), one decimal.
elapsed_since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# --- waiting -----------------------------------------------------------------
# wait_until TIMEOUT_S DESCRIPTION CMD...
# Runs CMD every WAIT_INTERVAL seconds (default 1) until it succeeds (returns 0).
# Returns 1 on timeout, 2 at once if CMD returns 100 (meaning: give up, e.g. the
# process being waited for died).
wait_until() {
    local timeout=$1 desc=$2 rc deadline
    shift 2
    deadline=$((SECONDS + timeout))
    while :; do
        rc=0
        "$@" || rc=$?
        [[ $rc -eq 0 ]] && return 0
        if [[ $rc -eq 100 ]]; then
            warn "gave up waiting for $desc"
            return 2
        fi
        if ((SECONDS >= deadline)); then
            warn "timed out after ${timeout}s waiting for $desc"
            return 1
        fi
        sleep "${WAIT_INTERVAL:-1}"
    done
}

# --- ports -------------------------------------------------------------------
# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- processes ---------------------------------------------------------------
# spawn_detached PIDFILE LOGFILE CMD...
# Starts CMD in the background in its own session and process group (so a
# Ctrl-C in the terminal does not reach it and it can be stopped as a group),
# stdout+stderr appended to LOGFILE, its pid written to PIDFILE.
spawn_detached() {
    local pidfile=$1 logfile=$2
    shift 2
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    rm -f "$pidfile"
    # The inner shell writes its own pid ($$) and execs CMD, so the pid is the
    # group leader's whether or not setsid had to fork.
    # shellcheck disable=SC2016
    setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
    local job=$! _
    # A loaded machine can take seconds to fork and exec.
    for _ in $(seq 1 300); do
        [[ -s $pidfile ]] && return 0
        sleep 0.1
    done
    # Never leave it running unseen: the caller cannot stop what it has no
    # pid of.
    local pid
    pid=$(pid_from_file "$pidfile")
    [[ -n $pid ]] && kill -KILL -- "-$pid" 2>/dev/null
    kill -KILL "$job" 2>/dev/null
    die "could not start: $* (no pid file $pidfile after 30 s)"
}

# pid_from_file PIDFILE: prints the pid stored in PIDFILE (empty if none).
pid_from_file() { if [[ -s $1 ]]; then tr -dc '0-9' <"$1"; fi; }

# pid_matches PID PATTERN: true if PID is alive and its command line contains
# PATTERN (guards against a stale pid file pointing at a reused pid).
# A process in the middle of an exec shows an empty command line for a
# moment (the kernel sets the new one after switching to the new memory
# map), as does a zombie: an empty one is read again for up to a second
# before it counts as no match. Without that, a server just spawned
# (spawn_detached returns once the pid file is written, before or during
# the exec) was taken for dead at its first probe, on a loaded machine.
pid_matches() {
    local pid=$1 pattern=$2 cmd _
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ -z $pattern ]] && return 0
    for _ in $(seq 1 20); do
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
        [[ -n $cmd ]] && break
        sleep 0.05
    done
    grep -qF -- "$pattern" <<<"$cmd"
}

# pidfile_alive PIDFILE [PATTERN]: true if the process in PIDFILE runs.
pidfile_alive() { pid_matches "$(pid_from_file "$1")" "${2:-}"; }

# stop_group PID NAME [TIMEOUT_S]: TERM the process group of PID, wait up to
# TIMEOUT_S (default 30), then KILL it. Returns 0 once the leader is gone.
stop_group() {
    local pid=$1 name=$2 timeout=${3:-30}
    kill -0 "$pid" 2>/dev/null || return 0
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$name did not stop within ${timeout}s; sending KILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    fi
    # Reap it if it is our own child, so it does not linger as a zombie.
    wait "$pid" 2>/dev/null || true
    ! kill -0 "$pid" 2>/dev/null
}

# stop_pidfile PIDFILE NAME [TIMEOUT_S] [PATTERN]: stop_group for the process
# recorded in PIDFILE (if it still runs and matches PATTERN), then remove PIDFILE.
stop_pidfile() {
    local pidfile=$1 name=$2 timeout=${3:-30} pattern=${4:-} pid
    pid=$(pid_from_file "$pidfile")
    if pid_matches "$pid" "$pattern"; then
        stop_group "$pid" "$name" "$timeout" || return 1
    else
        log "$name is not running"
    fi
    rm -f "$pidfile"
}

# tail_log FILE [N] [TITLE]: prints the last N (default 60) lines of FILE to stderr.
tail_log() {
    local file=$1 n=${2:-60} title=${3:-}
    {
        echo "----- last $n lines of ${title:-$file} -----"
        if [[ -f $file ]]; then tail -n "$n" "$file"; else echo "(no log file $file)"; fi
        echo "----- end of ${title:-$file} -----"
    } >&2
}

# --- installing --------------------------------------------------------------
_APT_UPDATED=0
# apt_install PKG...: installs Debian packages non-interactively (apt-get update once).
apt_install() {
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    if [[ $_APT_UPDATED -eq 0 ]]; then
        log "apt-get update"
        "${sudo[@]}" apt-get update -qq >&2
        _APT_UPDATED=1
    fi
    log "apt-get install $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends "$@" >&2
}

# need_cmd CMD [PKG]: installs PKG (default CMD) with apt-get if CMD is missing.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 && return 0
    apt_install "${2:-$1}"
    command -v "$1" >/dev/null 2>&1 || die "$1 still missing after installing ${2:-$1}"
}

# --- throwaway TLS material (openssl) ----------------------------------------
# Local test PKI for the secured modes of pulsar.sh and mariadb.sh: made once,
# reused, keys mode 600. Keys are PKCS#8 PEM ("BEGIN PRIVATE KEY"), which the
# Java (Pulsar), Go and MariaDB TLS stacks all read.

# tls_ca DIR NAME: makes DIR/ca.key and DIR/ca.pem (a self-signed CA called
# NAME, valid 10 years) unless ca.pem already exists.
tls_ca() {
    local dir=$1 name=$2
    [[ -s $dir/ca.pem && -s $dir/ca.key ]] && return 0
    need_cmd openssl
    mkdir -p "$dir"
    chmod 700 "$dir"
    (
        umask 077
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/ca.key" 2>/dev/null
        openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=$name" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -out "$dir/ca.pem"
    ) || die "openssl could not make the CA in $dir"
    chmod 644 "$dir/ca.pem"
}

# tls_cert DIR BASE CN server|client: makes DIR/BASE.key and DIR/BASE.pem, a
# certificate for CN signed by DIR's CA (valid 2 years), unless it exists. A
# server certificate names 127.0.0.1 and localhost (SAN); a client
# certificate's CN is the role it authenticates as.
tls_cert() {
    local dir=$1 base=$2 cn=$3 kind=$4 ext
    [[ -s $dir/$base.pem && -s $dir/$base.key ]] && return 0
    case $kind in
    server) ext="subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment" ;;
    client) ext="extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment" ;;
    *) die "tls_cert: kind must be server or client, not $kind" ;;
    esac
    (
        umask 077
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/$base.key" 2>/dev/null
        openssl req -new -key "$dir/$base.key" -subj "/CN=$cn" -out "$dir/$base.csr"
        openssl x509 -req -in "$dir/$base.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
            -CAcreateserial -CAserial "$dir/ca.srl" -sha256 -days 730 \
            -extfile <(printf '%s\n' "$ext") -out "$dir/$base.pem" 2>/dev/null
    ) || die "openssl could not make the certificate $dir/$base.pem"
    rm -f "$dir/$base.csr"
    chmod 644 "$dir/$base.pem"
}
