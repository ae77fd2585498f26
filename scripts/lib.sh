# scripts/lib.sh — helpers scripts/services.sh and scripts/chromium.sh share. Source it
# after setting LOG_NAME (the prefix of every message); it installs an EXIT trap that
# removes the policy-rc.d file apt_install may create.

log() { printf '%s: %s\n' "${LOG_NAME:-hookstream}" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# tmo SECONDS CMD...: CMD with a time limit when coreutils' timeout exists.
tmo() {
  local s=$1
  shift
  if have timeout; then timeout "$s" "$@"; else "$@"; fi
}

# find_bin NAME: NAME on PATH, else in the usual system directories.
find_bin() {
  local d
  if command -v "$1" 2>/dev/null; then return 0; fi
  for d in /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin /bin /sbin /snap/bin; do
    if [ -x "$d/$1" ]; then
      echo "$d/$1"
      return 0
    fi
  done
  return 1
}

APT_UPDATED=0
POLICY_RC_CREATED=""

cleanup_policy_rc() {
  if [ -n "$POLICY_RC_CREATED" ]; then
    rm -f "$POLICY_RC_CREATED"
    POLICY_RC_CREATED=""
  fi
}
trap cleanup_policy_rc EXIT

# apt_install PKG...: install Debian packages (without their recommends) when we are root
# and apt-get exists; `apt-get update` runs once per script. The packages' own services
# are kept from starting (policy-rc.d): hookstream starts private ones.
apt_install() {
  is_root && have apt-get || return 1
  local policy=/usr/sbin/policy-rc.d rc=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# hookstream: keep package installs from starting services\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    POLICY_RC_CREATED=$policy
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    log "running: apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || rc=$?
    APT_UPDATED=1
  fi
  if [ "$rc" = 0 ]; then
    log "running: apt-get install -y --no-install-recommends $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 || rc=$?
  fi
  cleanup_policy_rc
  return "$rc"
}
