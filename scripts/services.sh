#!/usr/bin/env bash
# scripts/services.sh — the Redis and PostgreSQL that hookstream needs, found or started.
#
#   scripts/services.sh up      make a Redis (7+) and a PostgreSQL (14+) usable, write
#                               .hookstream/env and print its export lines on stdout
#   scripts/services.sh down    stop the private instances that `up` started (and only those)
#   scripts/services.sh status  show what is running and the URLs
#   scripts/services.sh purge   stop every private instance and delete their data
#
# For each service, `up` takes the first that works of:
#   a. the URL in HOOKSTREAM_REDIS_URL / HOOKSTREAM_DATABASE_URL, when set and reachable;
#   b. a private instance of the installed binaries, data under .hookstream/, bound to
#      127.0.0.1 on a free port (PostgreSQL runs as a non-root user when we are root);
#      one already running from an earlier `up` is reused;
#   c. as root with apt-get: the Debian packages installed first, then as b;
#   d. otherwise it names the install command and exits 1.
#
# Messages go to stderr; `up` prints only the export lines on stdout.
# .hookstream/started lists the private instances that `up` started and `down` has not
# stopped yet. When HOOKSTREAM_STARTED_FILE is set (scripts/with-services.sh sets it), `up`
# also appends what THIS invocation started to that file, and `down` stops only what it lists.
# HOOKSTREAM_STATE_DIR moves .hookstream elsewhere (default: <repo>/.hookstream).
set -euo pipefail

# Daemons misbehave when started with standard input closed (CI runs with none): redis-server
# then crashes at start. Give everything /dev/null instead.
if ! { true <&0; } 2>/dev/null; then
  exec </dev/null
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
STATE="${HOOKSTREAM_STATE_DIR:-$ROOT/.hookstream}"
case "$STATE" in /*) ;; *) STATE="$PWD/$STATE" ;; esac
STARTED="$STATE/started"
ENV_FILE="$STATE/env"
REDIS_DIR="$STATE/redis"
REDIS_STATE="$STATE/redis.state"
PG_HOME="$STATE/pg"
PG_STATE="$STATE/pg.state"

MIN_REDIS=7
MIN_PG=14
PG_DB=hookstream
PG_SUPER=postgres
START_TIMEOUT=60

LOG_NAME=services
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# state_get FILE KEY: the value of KEY=VALUE in FILE.
state_get() {
  [ -f "$1" ] || return 1
  sed -n "s/^$2=//p" "$1" | tail -n 1
}

# redact URL: the URL with any password hidden, for messages.
redact() { printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#'; }

# shell_quote VALUE: VALUE in single quotes, safe to source.
shell_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# pid_alive PID [NAME]: PID runs (and, where /proc tells, its command mentions NAME).
pid_alive() {
  [ -n "$1" ] || return 1
  kill -0 "$1" 2>/dev/null || return 1
  if [ -n "${2:-}" ] && [ -r "/proc/$1/cmdline" ]; then
    tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2" || return 1
  fi
  return 0
}

# wait_gone PID SECONDS: wait until PID has exited.
wait_gone() {
  local i=0 limit=$(($2 * 10))
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le "$limit" ] || return 1
    sleep 0.1
  done
}

# ---------------------------------------------------------------------------- ports

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
# shellcheck disable=SC2016 # $1 expands in the inner bash
port_in_use() { tmo 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

# pick_port [PREFERRED]: a free loopback port, PREFERRED when it is free. Random ports
# come from 20000-31999, below Linux's default ephemeral range.
pick_port() {
  local p i
  if [ -n "${1:-}" ] && ! port_in_use "$1"; then
    echo "$1"
    return 0
  fi
  for i in $(seq 1 200); do
    p=$((20000 + (RANDOM * 32768 + RANDOM + i) % 12000))
    if ! port_in_use "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "found no free port on 127.0.0.1"
}

# ---------------------------------------------------------------------------- locking

lock_state() {
  mkdir -p "$STATE"
  if have flock; then
    exec 9>"$STATE/lock"
    flock -w 300 9 || die "another scripts/services.sh holds $STATE/lock"
  fi
}

# ---------------------------------------------------------------------------- records

record_started() {
  touch "$STARTED"
  grep -qx "$1" "$STARTED" || echo "$1" >>"$STARTED"
  if [ -n "${HOOKSTREAM_STARTED_FILE:-}" ]; then
    echo "$1" >>"$HOOKSTREAM_STARTED_FILE"
  fi
}

unrecord_started() {
  [ -f "$STARTED" ] || return 0
  grep -vx "$1" "$STARTED" >"$STARTED.tmp" || true
  mv "$STARTED.tmp" "$STARTED"
}

# ---------------------------------------------------------------------------- install

MISSING=()

# install_hint PKG...: the command that installs the Debian packages PKG here.
install_hint() {
  local sudo="sudo "
  is_root && sudo=""
  if have apt-get; then
    echo "${sudo}apt-get install -y $*"
  elif have brew; then
    echo "brew install redis postgresql@17"
  elif have dnf; then
    echo "${sudo}dnf install -y redis postgresql-server postgresql"
  elif have apk; then
    echo "${sudo}apk add redis postgresql postgresql-client"
  else
    echo "install Redis ${MIN_REDIS}+ (redis-server, redis-cli) and PostgreSQL ${MIN_PG}+ (initdb, pg_ctl, psql)"
  fi
}

# ---------------------------------------------------------------------------- redis

REDIS_CLI=""
REDIS_SERVER=""
REDIS_URL=""
REDIS_PLAN=""
REDIS_TOO_OLD=""

redis_major() { "$1" --version 2>/dev/null | sed -nE 's/.* v=([0-9]+)\..*/\1/p'; }

# find_redis_server: a redis-server of version MIN_REDIS or newer.
find_redis_server() {
  local s v
  s=$(find_bin redis-server) || return 1
  v=$(redis_major "$s")
  if [ -z "$v" ] || [ "$v" -lt "$MIN_REDIS" ]; then
    REDIS_TOO_OLD="$s is version ${v:-unknown}"
    return 1
  fi
  echo "$s"
}

# redis_url_ok URL: URL answers PING, and is Redis MIN_REDIS or newer.
redis_url_ok() {
  local out ver
  out=$(tmo 5 "$REDIS_CLI" --no-auth-warning -u "$1" ping 2>/dev/null | tr -d '\r') || return 1
  [ "$out" = PONG ] || return 1
  ver=$(tmo 5 "$REDIS_CLI" --no-auth-warning -u "$1" info server 2>/dev/null |
    tr -d '\r' | sed -nE 's/^redis_version:([0-9]+).*/\1/p')
  if [ -n "$ver" ] && [ "$ver" -lt "$MIN_REDIS" ]; then
    log "Redis at $(redact "$1") is version $ver; hookstream needs $MIN_REDIS+"
    return 1
  fi
}

redis_pid() { cat "$REDIS_DIR/redis.pid" 2>/dev/null || true; }

redis_ping_port() {
  [ -n "$REDIS_CLI" ] || return 1
  [ "$(tmo 5 "$REDIS_CLI" -h 127.0.0.1 -p "$1" ping 2>/dev/null | tr -d '\r')" = PONG ]
}

# redis_private_running: the private Redis of an earlier `up` runs and answers.
redis_private_running() {
  local port
  port=$(state_get "$REDIS_STATE" port) || return 1
  pid_alive "$(redis_pid)" redis || return 1
  redis_ping_port "$port"
}

plan_redis() {
  REDIS_CLI=$(find_bin redis-cli) || REDIS_CLI=""
  if [ -n "${HOOKSTREAM_REDIS_URL:-}" ]; then
    if [ -z "$REDIS_CLI" ]; then
      apt_install redis-tools || true
      REDIS_CLI=$(find_bin redis-cli) || REDIS_CLI=""
    fi
    if [ -z "$REDIS_CLI" ]; then
      log "HOOKSTREAM_REDIS_URL is set, but there is no redis-cli to check it with"
    elif redis_url_ok "$HOOKSTREAM_REDIS_URL"; then
      REDIS_PLAN="env"
      REDIS_URL=$HOOKSTREAM_REDIS_URL
      return 0
    else
      log "HOOKSTREAM_REDIS_URL=$(redact "$HOOKSTREAM_REDIS_URL") does not answer; using a private Redis"
    fi
  fi
  if redis_private_running; then
    REDIS_PLAN=reuse
    return 0
  fi
  REDIS_PLAN=private
  REDIS_SERVER=$(find_redis_server) || REDIS_SERVER=""
  if [ -z "$REDIS_SERVER" ] || [ -z "$REDIS_CLI" ]; then
    apt_install redis-server || true
    REDIS_SERVER=$(find_redis_server) || REDIS_SERVER=""
    REDIS_CLI=$(find_bin redis-cli) || REDIS_CLI=""
  fi
  if [ -z "$REDIS_SERVER" ] || [ -z "$REDIS_CLI" ]; then
    MISSING+=(redis-server)
  fi
}

redis_start() {
  local port prev attempt pid i
  mkdir -p "$REDIS_DIR"
  prev=$(state_get "$REDIS_STATE" port) || prev=""
  for attempt in 1 2 3 4 5; do
    port=$(pick_port "$prev")
    prev=""
    rm -f "$REDIS_DIR/redis.pid"
    printf 'port=%s\nserver=%s\ndir=%s\n' "$port" "$REDIS_SERVER" "$REDIS_DIR" >"$REDIS_STATE"
    log "starting a private Redis ($REDIS_SERVER) on 127.0.0.1:$port, data in $REDIS_DIR"
    # hookstream's streams churn: with Redis's default (rewrite the AOF each
    # time it doubles past 64 MB) a busy receiver forks and rewrites every few
    # seconds, and the rewrite's CPU shows up as 100 ms ACK stalls
    # (docs/benchmarks.md). Rewrite past 1 GB instead.
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 \
      --appendonly yes --auto-aof-rewrite-min-size 1gb --save "" --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
      --dir "$REDIS_DIR" </dev/null >&2 9>&- || die "redis-server did not start; see $REDIS_DIR/redis.log"
    record_started redis
    for i in $(seq 1 $((START_TIMEOUT * 10))); do
      if redis_ping_port "$port" && pid_alive "$(redis_pid)"; then
        REDIS_URL="redis://127.0.0.1:$port/0"
        return 0
      fi
      # redis-server daemonizes before it binds: a pid that is gone means it failed.
      if [ "$i" -gt 20 ] && ! pid_alive "$(redis_pid)"; then
        break
      fi
      sleep 0.1
    done
    pid=$(redis_pid)
    if pid_alive "$pid" redis; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
    fi
    unrecord_started redis
    if tail -n 20 "$REDIS_DIR/redis.log" 2>/dev/null | grep -qi 'address already in use'; then
      log "port $port was taken meanwhile; trying another (attempt $attempt)"
      continue
    fi
    tail -n 20 "$REDIS_DIR/redis.log" >&2 2>/dev/null || true
    die "the private Redis did not come up; see $REDIS_DIR/redis.log"
  done
  die "the private Redis found no free port after 5 attempts"
}

redis_stop() {
  local pid
  pid=$(redis_pid)
  if pid_alive "$pid" redis; then
    log "stopping the private Redis (pid $pid)"
    kill -TERM "$pid"
    if ! wait_gone "$pid" 30; then
      log "Redis pid $pid still runs after 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || true
    fi
  fi
  rm -f "$REDIS_DIR/redis.pid"
}

# ---------------------------------------------------------------------------- postgresql

PSQL=""
PG_BINDIR=""
PG_URL=""
PG_PLAN=""
PG_TOO_OLD=""

pg_major_of_bindir() { "$1/postgres" --version 2>/dev/null | sed -nE 's/.*\) ([0-9]+)[.0-9]*.*/\1/p'; }

pg_bindir_ok() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]; }

# find_pg_bindir [MAJOR]: a directory with initdb, pg_ctl and postgres of version MIN_PG
# or newer (exactly MAJOR when given), from PATH, pg_config --bindir, or the highest
# /usr/lib/postgresql/*/bin.
find_pg_bindir() {
  local want=${1:-} c d v
  local -a cands=()
  for c in pg_ctl initdb postgres; do
    if d=$(command -v "$c" 2>/dev/null); then
      cands+=("$(dirname "$(readlink -f "$d")")")
    fi
  done
  if have pg_config; then
    d=$(pg_config --bindir 2>/dev/null) && cands+=("$d")
  fi
  while IFS= read -r d; do
    [ -n "$d" ] && cands+=("$d")
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin /usr/pgsql-*/bin | grep -v '\*' | sort -t/ -k4 -V -r)
  for d in "${cands[@]}"; do
    pg_bindir_ok "$d" || continue
    v=$(pg_major_of_bindir "$d")
    [ -n "$v" ] || continue
    if [ -n "$want" ]; then
      [ "$v" = "$want" ] && { echo "$d"; return 0; }
      continue
    fi
    if [ "$v" -ge "$MIN_PG" ]; then
      echo "$d"
      return 0
    fi
    PG_TOO_OLD="$d/postgres is version $v"
  done
  return 1
}

# pg_client NAME: psql or pg_isready, from PG_BINDIR, PATH, or any installed version.
pg_client() {
  local d
  if [ -n "$PG_BINDIR" ] && [ -x "$PG_BINDIR/$1" ]; then
    echo "$PG_BINDIR/$1"
    return 0
  fi
  find_bin "$1" && return 0
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/$1" ]; then
      echo "$d/$1"
      return 0
    fi
  done
  return 1
}

# pg_url_ok URL: URL accepts a login and is PostgreSQL MIN_PG or newer.
pg_url_ok() {
  local v
  v=$(PGCONNECT_TIMEOUT=5 tmo 15 "$PSQL" -X -w -q -t -A -d "$1" -c 'show server_version_num' 2>/dev/null) || return 1
  v=$(printf '%s' "$v" | tr -d '[:space:]')
  [ -n "$v" ] || return 1
  if [ "$v" -lt $((MIN_PG * 10000)) ]; then
    log "PostgreSQL at $(redact "$1") is version $v; hookstream needs $MIN_PG+"
    return 1
  fi
}

# The OS user that runs the private PostgreSQL: empty (ourselves) unless we are root.
PG_RUNAS=""

pg_choose_user() {
  PG_RUNAS=""
  is_root || return 0
  if id -u postgres >/dev/null 2>&1; then
    PG_RUNAS=postgres
    return 0
  fi
  if ! id -u hookstream >/dev/null 2>&1; then
    local shell=/usr/sbin/nologin
    [ -x "$shell" ] || shell=/bin/false
    log "creating the system user hookstream to run PostgreSQL (it refuses to run as root)"
    useradd --system --user-group --no-create-home --home-dir / --shell "$shell" hookstream >&2 ||
      die "could not create the user hookstream"
  fi
  PG_RUNAS=hookstream
}

# as_pg CMD...: CMD as PG_RUNAS (from /, which that user can always enter).
as_pg() {
  if [ -z "$PG_RUNAS" ]; then
    (cd / && "$@")
  elif have runuser; then
    (cd / && runuser -u "$PG_RUNAS" -- "$@")
  else
    local q
    q=$(printf '%q ' "$@")
    (cd / && su -s /bin/sh "$PG_RUNAS" -c "$q")
  fi
}

pg_load_state() {
  PG_DATA=$(state_get "$PG_STATE" data) || return 1
  PG_PORT=$(state_get "$PG_STATE" port) || PG_PORT=""
  PG_RUNAS=$(state_get "$PG_STATE" user) || PG_RUNAS=""
  PG_SOCK=$(state_get "$PG_STATE" sockdir) || PG_SOCK=$PG_DATA
  PG_BASE=$(state_get "$PG_STATE" base) || PG_BASE=$(dirname "$PG_DATA")
  PG_STATE_BINDIR=$(state_get "$PG_STATE" bindir) || PG_STATE_BINDIR=""
}

pg_write_state() {
  printf 'data=%s\nbase=%s\nport=%s\nuser=%s\nsockdir=%s\nbindir=%s\n' \
    "$PG_DATA" "$PG_BASE" "$PG_PORT" "$PG_RUNAS" "$PG_SOCK" "$PG_BINDIR" >"$PG_STATE"
}

pg_pid() { head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_ready_port() {
  local isready
  isready=$(pg_client pg_isready) || return 1
  tmo 10 "$isready" -q -h 127.0.0.1 -p "$1" -U "$PG_SUPER" -t 5 >/dev/null 2>&1
}

# pg_private_running: the private PostgreSQL of an earlier `up` runs and answers.
pg_private_running() {
  pg_load_state || return 1
  [ -n "$PG_PORT" ] || return 1
  pid_alive "$(pg_pid)" postgres || return 1
  [ -z "$PG_BINDIR" ] && [ -n "$PG_STATE_BINDIR" ] && PG_BINDIR=$PG_STATE_BINDIR
  pg_ready_port "$PG_PORT"
}

plan_pg() {
  PSQL=$(pg_client psql) || PSQL=""
  if [ -n "${HOOKSTREAM_DATABASE_URL:-}" ]; then
    if [ -z "$PSQL" ]; then
      apt_install postgresql-client || true
      PSQL=$(pg_client psql) || PSQL=""
    fi
    if [ -z "$PSQL" ]; then
      log "HOOKSTREAM_DATABASE_URL is set, but there is no psql to check it with"
    elif pg_url_ok "$HOOKSTREAM_DATABASE_URL"; then
      PG_PLAN="env"
      PG_URL=$HOOKSTREAM_DATABASE_URL
      return 0
    else
      log "HOOKSTREAM_DATABASE_URL=$(redact "$HOOKSTREAM_DATABASE_URL") does not answer; using a private PostgreSQL"
    fi
  fi
  if pg_private_running; then
    PG_PLAN=reuse
    return 0
  fi
  PG_PLAN=private
  PG_BINDIR=""
  # An existing data folder wants the major version it was made with.
  local want=""
  if pg_load_state && [ -f "$PG_DATA/PG_VERSION" ]; then
    want=$(cat "$PG_DATA/PG_VERSION")
    PG_BINDIR=$(find_pg_bindir "$want") || PG_BINDIR=""
    if [ -z "$PG_BINDIR" ]; then
      log "the private data folder $PG_DATA is PostgreSQL $want, which is not installed;"
      log "a new one is made (the old one moves to $PG_DATA.v$want)"
      mv "$PG_DATA" "$PG_DATA.v$want"
    fi
  fi
  [ -n "$PG_BINDIR" ] || PG_BINDIR=$(find_pg_bindir) || PG_BINDIR=""
  if [ -z "$PG_BINDIR" ]; then
    apt_install postgresql || true
    PG_BINDIR=$(find_pg_bindir) || PG_BINDIR=""
  fi
  if [ -z "$PG_BINDIR" ]; then
    MISSING+=(postgresql)
    return 0
  fi
  PSQL=$(pg_client psql) || PSQL=""
  [ -n "$PSQL" ] || MISSING+=(postgresql-client)
}

# pg_prepare_dirs: PG_BASE/PG_DATA/PG_SOCK for a new cluster, reachable by PG_RUNAS.
pg_prepare_dirs() {
  PG_BASE=$PG_HOME
  mkdir -p "$PG_BASE"
  if [ -n "$PG_RUNAS" ]; then
    chown "$PG_RUNAS" "$PG_BASE"
    chmod 700 "$PG_BASE"
    if ! as_pg test -w "$PG_BASE" -a -x "$PG_BASE"; then
      PG_BASE=$(mktemp -d /tmp/hookstream-pg.XXXXXX)
      chown "$PG_RUNAS" "$PG_BASE"
      chmod 700 "$PG_BASE"
      log "user $PG_RUNAS cannot reach $STATE (a parent folder is closed to it);"
      log "the PostgreSQL data goes to $PG_BASE instead (recorded in $PG_STATE)"
    fi
  fi
  PG_DATA="$PG_BASE/data"
  # A unix socket path must stay under ~107 bytes.
  PG_SOCK=$PG_DATA
  if [ $((${#PG_SOCK} + 20)) -gt 100 ]; then
    PG_SOCK=$(mktemp -d /tmp/hookstream-pgsock.XXXXXX)
    [ -z "$PG_RUNAS" ] || chown "$PG_RUNAS" "$PG_SOCK"
  fi
}

pg_start() {
  local attempt prev log_file
  if pg_load_state && [ -f "$PG_DATA/PG_VERSION" ]; then
    # An existing cluster: whoever owns its data runs it.
    PG_RUNAS=""
    if is_root; then
      PG_RUNAS=$(stat -c %U "$PG_DATA")
      [ "$PG_RUNAS" != root ] || die "$PG_DATA belongs to root; run scripts/services.sh purge"
    fi
  else
    pg_choose_user
    pg_prepare_dirs
    # A leftover of an interrupted initdb has no PG_VERSION: it goes.
    rm -rf "$PG_DATA"
    log "initdb: a private PostgreSQL ($PG_BINDIR) in $PG_DATA${PG_RUNAS:+, run by user $PG_RUNAS}"
    PG_PORT=""
    pg_write_state
    as_pg "$PG_BINDIR/initdb" -D "$PG_DATA" -U "$PG_SUPER" --auth=trust \
      --encoding=UTF8 --locale=C >"$STATE/pg-initdb.log" 2>&1 9>&- ||
      {
        tail -n 20 "$STATE/pg-initdb.log" >&2
        die "initdb failed; see $STATE/pg-initdb.log"
      }
  fi
  if [ ! -d "$PG_SOCK" ]; then
    mkdir -p "$PG_SOCK"
    [ -z "$PG_RUNAS" ] || chown "$PG_RUNAS" "$PG_SOCK"
  fi
  log_file="$PG_BASE/postgres.log"
  prev=${PG_PORT:-}
  for attempt in 1 2 3 4 5; do
    PG_PORT=$(pick_port "$prev")
    prev=""
    pg_write_state
    log "starting the private PostgreSQL on 127.0.0.1:$PG_PORT"
    record_started pg
    if as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$log_file" -w -t "$START_TIMEOUT" \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k '$PG_SOCK'" start </dev/null >/dev/null 2>&1 9>&-; then
      break
    fi
    if pid_alive "$(pg_pid)" postgres; then
      as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 9>&- || true
    fi
    unrecord_started pg
    if tail -n 20 "$log_file" 2>/dev/null | grep -qiE 'already in use|could not create any TCP/IP sockets'; then
      log "port $PG_PORT was taken meanwhile; trying another (attempt $attempt)"
      [ "$attempt" -lt 5 ] && continue
    fi
    tail -n 20 "$log_file" >&2 2>/dev/null || true
    die "the private PostgreSQL did not start; see $log_file"
  done
  PG_URL="postgres://$PG_SUPER@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable"
}

# pg_ensure_db: the database PG_DB exists in the private instance.
pg_ensure_db() {
  local q=(-X -w -q -t -A -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPER" -d postgres)
  if [ "$("$PSQL" "${q[@]}" -c "select 1 from pg_database where datname = '$PG_DB'")" != 1 ]; then
    log "creating database $PG_DB"
    "$PSQL" "${q[@]}" -c "create database $PG_DB" >/dev/null
  fi
  PG_URL="postgres://$PG_SUPER@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable"
}

pg_stop() {
  pg_load_state || return 0
  local bindir=${PG_STATE_BINDIR:-} pid
  if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
    bindir=$(find_pg_bindir "$(cat "$PG_DATA/PG_VERSION" 2>/dev/null)") || bindir=""
  fi
  pid=$(pg_pid)
  if pid_alive "$pid" postgres; then
    log "stopping the private PostgreSQL (pid $pid)"
    if [ -z "$bindir" ] || ! as_pg "$bindir/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1; then
      log "pg_ctl stop failed; sending SIGINT (fast shutdown) to $pid"
      kill -INT "$pid" 2>/dev/null || true
      wait_gone "$pid" 30 || kill -QUIT "$pid" 2>/dev/null || true
    fi
  fi
}

# ---------------------------------------------------------------------------- commands

cmd_up() {
  lock_state
  plan_redis
  plan_pg
  if [ "${#MISSING[@]}" -gt 0 ]; then
    [ -z "$REDIS_TOO_OLD" ] || log "found $REDIS_TOO_OLD; hookstream needs Redis $MIN_REDIS+"
    [ -z "$PG_TOO_OLD" ] || log "found $PG_TOO_OLD; hookstream needs PostgreSQL $MIN_PG+"
    if [ "$APT_UPDATED" = 1 ]; then
      log "hookstream needs Redis $MIN_REDIS+ and PostgreSQL $MIN_PG+; apt-get did not provide them here."
    else
      log "hookstream needs Redis $MIN_REDIS+ and PostgreSQL $MIN_PG+, and cannot install them itself here"
      log "(that needs root and apt-get)."
    fi
    log "Install them with:"
    log ""
    log "    $(install_hint "${MISSING[@]}")"
    log ""
    log "or point HOOKSTREAM_REDIS_URL / HOOKSTREAM_DATABASE_URL at running servers."
    exit 1
  fi

  case $REDIS_PLAN in
    env) log "Redis: using HOOKSTREAM_REDIS_URL=$(redact "$REDIS_URL")" ;;
    reuse)
      REDIS_URL="redis://127.0.0.1:$(state_get "$REDIS_STATE" port)/0"
      log "Redis: reusing the private instance (pid $(redis_pid)) at $REDIS_URL"
      ;;
    private)
      redis_start
      log "Redis: started a private instance (pid $(redis_pid)) at $REDIS_URL"
      ;;
  esac
  case $PG_PLAN in
    env) log "PostgreSQL: using HOOKSTREAM_DATABASE_URL=$(redact "$PG_URL")" ;;
    reuse)
      pg_ensure_db
      log "PostgreSQL: reusing the private instance (pid $(pg_pid)) at $PG_URL"
      ;;
    private)
      pg_start
      pg_ensure_db
      log "PostgreSQL: started a private instance (pid $(pg_pid)) at $PG_URL"
      ;;
  esac

  local lines
  lines="export HOOKSTREAM_REDIS_URL=$(shell_quote "$REDIS_URL")
export HOOKSTREAM_DATABASE_URL=$(shell_quote "$PG_URL")"
  printf '%s\n' "$lines" >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  printf '%s\n' "$lines"
}

# cmd_down [--all]: stop the private instances recorded as started (all with --all).
cmd_down() {
  local all=0 list="" what
  [ "${1:-}" = --all ] && all=1
  [ -d "$STATE" ] || {
    log "nothing to stop"
    return 0
  }
  lock_state
  if [ "$all" = 1 ]; then
    list="redis pg"
  elif [ -n "${HOOKSTREAM_STARTED_FILE:-}" ]; then
    list=$(sort -u "$HOOKSTREAM_STARTED_FILE" 2>/dev/null || true)
  else
    list=$(sort -u "$STARTED" 2>/dev/null || true)
  fi
  if [ -z "$list" ]; then
    log "nothing to stop (no private instance was started)"
    return 0
  fi
  for what in $list; do
    case $what in
      redis) redis_stop ;;
      pg) pg_stop ;;
      *) continue ;;
    esac
    unrecord_started "$what"
  done
}

cmd_status() {
  local pid port
  if [ -f "$REDIS_STATE" ]; then
    port=$(state_get "$REDIS_STATE" port)
    pid=$(redis_pid)
    if pid_alive "$pid" redis; then
      echo "redis:    private, running, pid $pid, 127.0.0.1:$port, data $REDIS_DIR"
    else
      echo "redis:    private, stopped (data $REDIS_DIR)"
    fi
  else
    echo "redis:    no private instance"
  fi
  if pg_load_state; then
    pid=$(pg_pid)
    if pid_alive "$pid" postgres; then
      echo "postgres: private, running, pid $pid, 127.0.0.1:$PG_PORT, data $PG_DATA${PG_RUNAS:+, user $PG_RUNAS}"
    else
      echo "postgres: private, stopped (data $PG_DATA)"
    fi
  else
    echo "postgres: no private instance"
  fi
  if [ -s "$STARTED" ]; then
    echo "started by services.sh up, stopped by down: $(tr '\n' ' ' <"$STARTED")"
  fi
  if [ -f "$ENV_FILE" ]; then
    echo "$ENV_FILE:"
    sed 's/^/  /' "$ENV_FILE"
  else
    echo "no $ENV_FILE yet (run scripts/services.sh up)"
  fi
}

# cmd_purge: stop every private instance, then delete their data.
cmd_purge() {
  cmd_down --all
  local base="" sock=""
  if pg_load_state; then
    base=$PG_BASE
    sock=$PG_SOCK
  fi
  case $base in /tmp/hookstream-pg.*) rm -rf "$base" ;; esac
  case $sock in /tmp/hookstream-pgsock.*) rm -rf "$sock" ;; esac
  rm -rf "$REDIS_DIR" "$PG_HOME" "$REDIS_STATE" "$PG_STATE" "$ENV_FILE" "$STARTED" \
    "$STATE/pg-initdb.log" "$STATE/lock"
  rmdir "$STATE" 2>/dev/null || true
  log "removed the private data in $STATE"
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down "${2:-}" ;;
  status) cmd_status ;;
  purge) cmd_purge ;;
  -h | --help | help) usage ;;
  *)
    usage
    exit 2
    ;;
esac
