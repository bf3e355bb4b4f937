#!/usr/bin/env bash
# One-shot initialisation for docker-compose-alpespartner.yml.
#
#   compose-init.sh mysql    (sagas-db, mounted in /docker-entrypoint-initdb.d)
#       creates the migration user sagas_migracion (DDL and data on sagas and
#       participante_*, used only by the preparar job) and the runtime user
#       sagas_app (SELECT, INSERT, UPDATE, DELETE there).
#       Without an argument the mode is COMPOSE_INIT_MODE: the MySQL
#       entrypoint runs init scripts without arguments (and sources them
#       when they are not executable).
#   compose-init.sh secretos (on the host, once, before `up`)
#       makes the secrets the compose file requires, with random values:
#       secretos/metrics_token (the token Prometheus sends to /metrics) and
#       an .env next to the compose file, which docker-compose reads, with
#       SAGAS_API_TOKEN, GRAFANA_ADMIN_PASSWORD and SAGAS_METRICS_TOKEN_FILE.
#       Keeps what already exists; prints where the values are, never the
#       values.
#
# Env (mysql): MYSQL_ROOT_PASSWORD (the image's), SAGAS_DB_PASSWORD
#   (sagas_app's) and SAGAS_DB_MIGRATION_PASSWORD (sagas_migracion's).
log() { printf '[compose-init %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

init_mysql() {
    local app=sagas_app mig=sagas_migracion
    # During initialisation mysqld listens on its socket only.
    mysql --protocol=socket -uroot -p"${MYSQL_ROOT_PASSWORD:?}" <<SQL
CREATE USER IF NOT EXISTS '${mig}'@'%' IDENTIFIED BY '${SAGAS_DB_MIGRATION_PASSWORD:?}';
GRANT ALL PRIVILEGES ON \`sagas\`.* TO '${mig}'@'%';
GRANT ALL PRIVILEGES ON \`participante\\_%\`.* TO '${mig}'@'%';
CREATE USER IF NOT EXISTS '${app}'@'%' IDENTIFIED BY '${SAGAS_DB_PASSWORD:?}';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`sagas\`.* TO '${app}'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`participante\\_%\`.* TO '${app}'@'%';
FLUSH PRIVILEGES;
SQL
    log "users: $mig (DDL and data) and $app (data only) on sagas and participante_*"
}

# aleatorio prints 32 random bytes in hex.
aleatorio() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

init_secretos() {
    local raiz dir env_file
    raiz=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    dir="$raiz/secretos" env_file="$raiz/.env"
    # The directory keeps the token from other users of this host; the file
    # itself must stay readable by the containers' users (compose mounts it
    # as it is), hence 0644 inside a 0700 directory.
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [[ -s $dir/metrics_token ]]; then
        log "$dir/metrics_token exists"
    else
        (umask 022 && aleatorio >"$dir/metrics_token")
        log "$dir/metrics_token created"
    fi
    chmod 644 "$dir/metrics_token"
    touch "$env_file"
    chmod 600 "$env_file"
    local var valor
    for var in SAGAS_API_TOKEN GRAFANA_ADMIN_PASSWORD SAGAS_METRICS_TOKEN_FILE \
        SAGAS_DB_ROOT_PASSWORD SAGAS_DB_PASSWORD SAGAS_DB_MIGRATION_PASSWORD; do
        if grep -q "^$var=" "$env_file"; then
            log "$var already in $env_file"
            continue
        fi
        case $var in
        SAGAS_METRICS_TOKEN_FILE) valor=./secretos/metrics_token ;;
        *) valor=$(aleatorio) ;;
        esac
        printf '%s=%s\n' "$var" "$valor" >>"$env_file"
        log "$var written to $env_file"
    done
    log "the API token, Grafana's admin password (user admin) and the database passwords are in $env_file"
}

main() {
    case "$1" in
    mysql) init_mysql ;;
    secretos) init_secretos ;;
    *)
        echo "usage: compose-init.sh mysql|secretos (or COMPOSE_INIT_MODE=mysql)" >&2
        return 2
        ;;
    esac
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
    # Sourced: keep the caller's shell options and positional parameters.
    (set -euo pipefail && main "${COMPOSE_INIT_MODE:-}")
else
    set -euo pipefail
    main "${1:-${COMPOSE_INIT_MODE:-}}"
fi
