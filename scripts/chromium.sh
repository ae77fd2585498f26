#!/usr/bin/env bash
# scripts/chromium.sh — the headless browser that the console's test (api/console_test.go) drives.
#
#   scripts/chromium.sh     print the path of a usable Chromium on stdout
#
# It takes the first that works of:
#   a. HOOKSTREAM_CHROMIUM, when set (the test reads the same variable);
#   b. chromium, chromium-browser, google-chrome or google-chrome-stable on PATH or in the
#      usual system directories;
#   c. as root with apt-get: Debian's chromium package installed first, then as b;
#   d. otherwise it names the install command and exits 1.
#
# A candidate is usable when `--version` answers. Messages go to stderr; only the path goes
# to stdout, so:  export HOOKSTREAM_CHROMIUM="$(scripts/chromium.sh)"
set -euo pipefail

if ! { true <&0; } 2>/dev/null; then
  exec </dev/null
fi

NAMES=(chromium chromium-browser google-chrome google-chrome-stable)

LOG_NAME=chromium
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# usable PATH: PATH runs and reports a version.
usable() {
  [ -x "$1" ] || return 1
  tmo 30 "$1" --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1
}

# find_chromium: the first usable candidate, on stdout.
find_chromium() {
  local name path
  for name in "${NAMES[@]}"; do
    path=$(find_bin "$name") || continue
    if usable "$path"; then
      echo "$path"
      return 0
    fi
    log "$path does not run (--version fails); trying the next"
  done
  return 1
}

# install_hint: the command that installs Chromium here.
install_hint() {
  local sudo="sudo "
  is_root && sudo=""
  if have apt-get; then
    echo "${sudo}apt-get install chromium"
  elif have dnf; then
    echo "${sudo}dnf install chromium"
  elif have brew; then
    echo "brew install --cask chromium"
  else
    echo "install Chromium (or Chrome) with your package manager"
  fi
}

if [ -n "${HOOKSTREAM_CHROMIUM:-}" ]; then
  path=$HOOKSTREAM_CHROMIUM
  case "$path" in */*) ;; *) path=$(find_bin "$path") || die "HOOKSTREAM_CHROMIUM=$HOOKSTREAM_CHROMIUM is not on PATH" ;; esac
  usable "$path" || die "HOOKSTREAM_CHROMIUM=$HOOKSTREAM_CHROMIUM does not run ($path --version fails)"
  echo "$path"
  exit 0
fi

if path=$(find_chromium); then
  echo "$path"
  exit 0
fi

if apt_install chromium; then
  if path=$(find_chromium); then
    echo "$path"
    exit 0
  fi
  die "installed Debian's chromium package, but no usable chromium was found afterwards"
fi

die "no usable Chromium found (tried ${NAMES[*]}); install it with: $(install_hint)  (or set HOOKSTREAM_CHROMIUM to its path)"
