#!/usr/bin/env bash
# scripts/check-tracked-size.sh [LIMIT_BYTES]: fail when a file tracked by git is larger than
# LIMIT_BYTES (default 2 MB). Build outputs and data dumps do not belong in git: a 25 MB binary
# once sat at the root for many commits. CI runs this before the tests.
set -euo pipefail
limit=${1:-2000000}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
big=$(git ls-files -z | xargs -0 -r stat -c '%s %n' | awk -v lim="$limit" '$1 > lim { printf "  %s (%d bytes)\n", $2, $1 }')
if [ -n "$big" ]; then
  echo "tracked files over $limit bytes (remove them with 'git rm --cached' and add them to .gitignore):" >&2
  echo "$big" >&2
  exit 1
fi
echo "no tracked file over $limit bytes"
