#!/usr/bin/env bash
# grafana-plugin/scripts/package.sh — build the hookstream Grafana datasource and zip it.
#
#   1. npm ci, when node_modules is missing or package-lock.json changed since the last install;
#   2. npm run typecheck, lint, test:ci (jest), build (webpack: module.js, plugin.json with
#      %VERSION% and %TODAY% filled, img/, dashboards/*.json, README/CHANGELOG if any) into dist/;
#   3. the Go backend (./pkg), CGO_ENABLED=0 and -ldflags "-s -w", into dist/ as
#      gpx_hookstream_<os>_<arch>[.exe] for linux/amd64, linux/arm64, darwin/arm64, windows/amd64;
#   4. dist/ zipped as hookstream-analytics-datasource-<version>.zip (version from package.json)
#      in Grafana's layout: one top-level folder hookstream-analytics-datasource/ holding the
#      dist contents, executables with mode 0755. `zip` makes it when installed, else python3.
#
# GO names the go command (default: go, else /usr/local/go/bin/go). dist/ and the zip are
# git-ignored (grafana-plugin/.gitignore).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

plugin_id=hookstream-analytics-datasource
executable=gpx_hookstream
targets=(linux/amd64 linux/arm64 darwin/arm64 windows/amd64)

step() { printf '\n== %s\n' "$*" >&2; }

GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    GO=/usr/local/go/bin/go
  else
    echo "package.sh: no go command (set GO or install Go)" >&2
    exit 1
  fi
fi
for cmd in node npm; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "package.sh: $cmd not found" >&2; exit 1; }
done

# npm ci writes node_modules/.package-lock.json; a package-lock.json newer than it means the
# dependencies changed since (a pull, an npm install elsewhere).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund --prefer-offline
fi

step "typecheck"
npm run --silent typecheck
step "lint"
npm run --silent lint
step "jest"
npm run --silent test:ci
step "webpack"
rm -rf dist
npm run --silent build

version=$(node -p "require('./package.json').version")
for target in "${targets[@]}"; do
  goos=${target%/*}
  goarch=${target#*/}
  out="dist/${executable}_${goos}_${goarch}"
  [ "$goos" = windows ] && out="$out.exe"
  step "go build $out"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch "$GO" build -trimpath -ldflags "-s -w" -o "$out" ./pkg
  chmod 0755 "$out"
done

zipfile="${plugin_id}-${version}.zip"
step "zip $zipfile"
rm -f "$zipfile"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R dist "$stage/$plugin_id"
if command -v zip >/dev/null 2>&1; then
  # -X: no extra attributes (uid/gid, atime); unix modes are kept, so executables stay 0755.
  (cd "$stage" && zip -q -r -X "$OLDPWD/$zipfile" "$plugin_id")
else
  python3 - "$stage" "$plugin_id" "$zipfile" <<'EOF'
import os, stat, sys, zipfile

stage, top, out = sys.argv[1:4]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk(os.path.join(stage, top)):
        dirs.sort()
        rel = os.path.relpath(root, stage)
        info = zipfile.ZipInfo(rel + "/")
        info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10
        z.writestr(info, b"")
        for name in sorted(files):
            path = os.path.join(root, name)
            mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
            info = zipfile.ZipInfo.from_file(path, os.path.join(rel, name))
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
EOF
fi

step "done"
echo "dist/:" >&2
(cd dist && find . -type f -printf '  %M %8s %P\n' | sort -k3) >&2
echo "$PWD/$zipfile ($(du -h "$zipfile" | cut -f1))" >&2
