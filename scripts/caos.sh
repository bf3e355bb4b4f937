#!/usr/bin/env bash
# The fault-injection ("chaos") run: installs what is missing (Java, the
# Pulsar distribution, MariaDB), builds the caos command and runs it. Every
# argument goes to it:
#
#   scripts/caos.sh               2,000 sagas, full fault plan (~6-8 minutes)
#   scripts/caos.sh -corto        ~200 sagas, one fault of each kind (~4 minutes)
#   scripts/caos.sh -plan zombie  another fault plan (zombie, partition, crash, skew, overlap)
#   scripts/caos.sh -h            every option
#
# caos starts its own broker (6661/8061) and MariaDB (3317) through
# scripts/pulsar.sh and scripts/mariadb.sh with state in .run/caos, two
# coordinator replicas (API 18063, 18064) and the six participants, and stops
# all of them at the end, on failure and on Ctrl-C. Exit status 1 means a
# violation (or a run that could not complete); the summary says which.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=caos
cd "$SAGAS_ROOT"

need_cmd curl
need_cmd setsid util-linux
need_cmd timeout coreutils
command -v go >/dev/null 2>&1 || [[ ! -x /usr/local/go/bin/go ]] || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || die "no Go toolchain on PATH"
"$SAGAS_ROOT/scripts/pulsar.sh" fetch
"$SAGAS_ROOT/scripts/mariadb.sh" install

BIN="$STATE_DIR/caos-bin/caos"
mkdir -p "$(dirname "$BIN")"
log "go build -o $BIN ./caos"
go build -o "$BIN" ./caos
# exec: Ctrl-C reaches caos itself, which stops everything it started.
exec "$BIN" "$@"
