#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on localhost, as Orbt and its tests
# need: starts them when installed but stopped; installs them with apt-get
# when absent and running as root; otherwise says exactly what to install.
# With --with-test-tools (make test) it also installs Chromium, and the
# Redis and PostgreSQL server programs the scale tests run on loopback of
# their own (redis-server, its --sentinel mode and redis-cli; initdb and
# pg_basebackup) when Postgres or Redis answers but runs elsewhere.
set -euo pipefail

PG_PORT=5432
REDIS_PORT=6379
log() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name
  for _ in $(seq 1 60); do
    port_open "$1" && return 0
    sleep 0.5
  done
  log "$2 did not start listening on 127.0.0.1:$1"
  return 1
}

installed_now=""
install_packages() {
  if [ "$(id -u)" != 0 ]; then
    log "$1 is not installed. Install it, then run this again:"
    log "  sudo apt-get update && sudo apt-get install -y postgresql redis-server"
    exit 1
  fi
  log "installing $2 with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "$2" >/dev/null
  installed_now="$installed_now $2"
}

ensure_postgres() {
  if port_open "$PG_PORT"; then return 0; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    install_packages PostgreSQL postgresql
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then
    log "PostgreSQL is installed but has no cluster; create one: sudo pg_createcluster --start 15 main"
    exit 1
  fi
  log "starting PostgreSQL $version"
  if [ "$(id -u)" = 0 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  else
    pg_ctlcluster "$version" main start || { log "could not start PostgreSQL; try: sudo pg_ctlcluster $version main start"; exit 1; }
  fi
  wait_port "$PG_PORT" PostgreSQL
}

# A fresh Debian PostgreSQL asks for a password on TCP. Orbt's default
# DATABASE_URL connects as postgres without one, so a cluster this script
# installed itself is opened to loopback connections (a developer machine).
ensure_postgres_login() {
  command -v psql >/dev/null 2>&1 || return 0
  if psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then return 0; fi
  local version hba
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if [ "$(id -u)" = 0 ] && [[ "$installed_now" == *postgresql* ]] && [ -f "$hba" ]; then
    log "allowing loopback logins as postgres without a password (development cluster)"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    sleep 1
    psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null && return 0
  fi
  log "cannot log in to PostgreSQL on 127.0.0.1 as postgres without a password."
  log "Either set DATABASE_URL to a URL with credentials, or add to pg_hba.conf:"
  log "  host all all 127.0.0.1/32 trust"
  exit 1
}

ensure_redis() {
  if port_open "$REDIS_PORT"; then return 0; fi
  if ! command -v redis-server >/dev/null 2>&1; then
    install_packages Redis redis-server
  fi
  log "starting Redis"
  local dir=/var/lib/redis logfile=/var/log/redis/orbt.log
  if [ ! -w "$dir" ] || [ ! -w "$(dirname "$logfile")" ]; then
    dir=$(mktemp -d) logfile="$dir/redis.log"
  fi
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$dir" --logfile "$logfile"
  wait_port "$REDIS_PORT" Redis
}

# The browser tests drive Debian's Chromium (--with-test-tools, as make
# test runs this script). Installed as root; otherwise the tests say so.
ensure_chromium() {
  if [ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    log "Chromium is not installed: the consumer pages' browser test will say so and skip. Install it with:"
    log "  sudo apt-get update && sudo apt-get install -y chromium"
    return 0
  fi
  log "installing chromium with apt-get (for the browser tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

# The scale tests start Redis masters, replicas, sentinels and cluster
# nodes, and a Postgres primary with a pg_basebackup replica, of their own.
ensure_server_programs() {
  local missing=""
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 || missing="$missing redis-server"
  ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1 || missing="$missing postgresql"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "the scale tests need the server programs of:$missing. Install them with:"
    log "  sudo apt-get update && sudo apt-get install -y$missing"
    return 0
  fi
  # A PostgreSQL already answering here is the one to keep: install the
  # programs without making a second cluster.
  if [[ "$missing" == *postgresql* ]] && port_open "$PG_PORT"; then
    mkdir -p /etc/postgresql-common
    grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
      echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  fi
  log "installing$missing with apt-get (for the scale tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing >/dev/null
}

if [ "${1:-}" = "--with-test-tools" ]; then
  ensure_chromium
fi
if [ -z "${DATABASE_URL:-}" ]; then
  ensure_postgres
  ensure_postgres_login
fi
if [ -z "${REDIS_URL:-}" ]; then
  ensure_redis
fi
if [ "${1:-}" = "--with-test-tools" ]; then
  ensure_server_programs
fi
log "PostgreSQL and Redis are up"
