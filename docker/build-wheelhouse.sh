#!/usr/bin/env bash
# Fill docker/wheelhouse/ with every wheel the node image installs: the
# project's runtime dependencies (read from pyproject.toml) as binary wheels
# for CPython 3.11 on manylinux x86_64, plus the project's own wheel.
#
#   docker/build-wheelhouse.sh [--clean]
#
# The wheels match both bases the Dockerfile accepts: the air-gapped Debian
# base (python 3.11.2, glibc 2.36) and python:3.11-slim. The image build then
# installs with --no-index, so it needs no network at all. --clean empties
# the wheelhouse first. docker/wheelhouse/ is not committed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/wheelhouse"
python=${PYTHON:-python3}

for arg in "$@"; do
    case "$arg" in
        --clean) rm -rf "$out" ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument $arg (expected --clean)" >&2; exit 2 ;;
    esac
done

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# A host pip configuration (PIP_FIND_LINKS, PIP_INDEX_URL, ...) would leak into
# these downloads and pick wheels for the wrong platform: clear it.
while read -r var; do unset "$var"; done < <(env | awk -F= '/^PIP_/ { print $1 }')
export PIP_DISABLE_PIP_VERSION_CHECK=1

mkdir -p "$out"
t_all=$(now)

mapfile -t deps < <("$python" - "$root/pyproject.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    for dep in tomllib.load(f)["project"]["dependencies"]:
        print(dep)
EOF
)
echo "==> ${#deps[@]} runtime dependencies from pyproject.toml"

t=$(now)
"$python" -m pip download -q -d "$out" --only-binary=:all: \
    --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none \
    --platform manylinux_2_36_x86_64 --platform manylinux_2_34_x86_64 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    "${deps[@]}"
echo "    dependency wheels downloaded in $(since "$t")"

t=$(now)
rm -f "$out"/yrd_credit_chain-*.whl
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# Build from a copy so no build/ or egg-info lands in the work tree.
tar -C "$root" --exclude=.git --exclude=.venv --exclude=docker --exclude=tests \
    --exclude='*.egg-info' --exclude=build --exclude='.*cache' --exclude=.hypothesis \
    --exclude=.creditchain --exclude=bench-results -cf - . | tar -C "$build" -xf -
"$python" -m pip wheel -q --no-deps -w "$out" "$build"
echo "    project wheel built in $(since "$t")"

count=$(find "$out" -name '*.whl' | wc -l)
echo "$out: $count wheels, $(du -sm "$out" | cut -f1) MB, in $(since "$t_all")"
