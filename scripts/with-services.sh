#!/usr/bin/env bash
# scripts/with-services.sh CMD [ARGS...]
#
# Runs `scripts/services.sh up`, exports HOOKSTREAM_REDIS_URL and HOOKSTREAM_DATABASE_URL,
# runs CMD, and when CMD ends, fails, or is interrupted (Ctrl-C, SIGTERM, SIGHUP) stops the
# private instances that this run started, and only those. Exits with CMD's exit code (or
# dies of the signal that interrupted it).
#
# HOOKSTREAM_KEEP_SERVICES=1 leaves what it started running (stop it later with
# `scripts/services.sh down`).
#
# CMD runs in its own process group: a Ctrl-C reaches it once, forwarded from here, and
# reaches every process of that group (go test's test binaries too). A second signal is
# forwarded again; a third kills the group.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
services="$here/services.sh"

started=$(mktemp "${TMPDIR:-/tmp}/hookstream-started.XXXXXX")
envout=$(mktemp "${TMPDIR:-/tmp}/hookstream-env.XXXXXX")
export HOOKSTREAM_STARTED_FILE="$started"

child=""
caught=""   # the last signal received
signals=0   # how many were received
interrupted=0 # a signal arrived during the last wait

# shellcheck disable=SC2317 # called from traps
on_signal() {
  caught=$1
  signals=$((signals + 1))
  interrupted=1
  if [ -n "$child" ]; then
    if [ "$signals" -ge 3 ]; then
      echo "with-services: $caught again; killing the command's process group" >&2
      kill -KILL -- "-$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null || true
    else
      kill -s "$1" -- "-$child" 2>/dev/null || kill -s "$1" "$child" 2>/dev/null || true
    fi
  fi
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
  local rc=$?
  trap '' INT TERM HUP
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    # We are leaving early (an error here): do not leave the command behind.
    kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [ "${HOOKSTREAM_KEEP_SERVICES:-0}" = 1 ]; then
    if [ -s "$started" ]; then
      echo "with-services: HOOKSTREAM_KEEP_SERVICES=1: leaving $(sort -u "$started" | tr '\n' ' ')running;" \
        "stop with scripts/services.sh down" >&2
    fi
  elif [ -s "$started" ]; then
    HOOKSTREAM_STARTED_FILE="$started" "$services" down ||
      echo "with-services: warning: scripts/services.sh down failed" >&2
  fi
  rm -f "$started" "$envout"
  if [ -n "$caught" ]; then
    # Die of the same signal, so that make or a shell sees an interrupted command.
    trap - "$caught" EXIT
    kill -s "$caught" $$
  fi
  exit "$rc"
}

trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

"$services" up >"$envout"
if [ -n "$caught" ]; then
  exit 130
fi
# shellcheck source=/dev/null
. "$envout"
export HOOKSTREAM_REDIS_URL HOOKSTREAM_DATABASE_URL
echo "with-services: HOOKSTREAM_REDIS_URL=$HOOKSTREAM_REDIS_URL" >&2
echo "with-services: HOOKSTREAM_DATABASE_URL=$HOOKSTREAM_DATABASE_URL" >&2
unset HOOKSTREAM_STARTED_FILE

# Job control gives CMD its own process group; it keeps our standard input.
set -m
if { true <&0; } 2>/dev/null; then
  "$@" <&0 &
else
  "$@" </dev/null &
fi
child=$!
set +m

status=0
wait "$child" || status=$?
# A trapped signal ends `wait` early (128+n) and runs the trap; then wait again for the
# command's own status. 127 means the previous wait already had it.
while [ "$interrupted" = 1 ]; do
  interrupted=0
  again=0
  wait "$child" 2>/dev/null || again=$?
  [ "$again" = 127 ] && break
  status=$again
done
child=""
exit "$status"
