#!/usr/bin/env bash
# Fill docker/wheelhouse/ with every wheel the node image installs: the
# project's runtime dependencies (read from pyproject.toml) as binary wheels
# for CPython 3.11 on manylinux x86_64, plus the project's own wheel.
#
#   docker/build-wheelhouse.sh [--clean]
#
# The wheels match both bases the Dockerfile accepts: the air-gapped Debian
# base (python 3.11.2, glibc 2.36) and python:3.11-slim. The image build then
# installs with --no-index, so it needs no network at all. Work already done
# is skipped (same dependency list; same sources); --clean empties the
# wheelhouse first. docker/wheelhouse/ is not committed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out="$here/wheelhouse"
python=${PYTHON:-python3}

for arg in "$@"; do
    case "$arg" in
        --clean) rm -rf "$out" ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

mapfile -t deps < <("$python" -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    for dep in tomllib.load(f)["project"]["dependencies"]:
        print(dep)
' "$root/pyproject.toml")
platform_flags=(--only-binary=:all: --implementation cp --python-version 3.11
    --abi cp311 --abi abi3 --abi none
    --platform manylinux_2_36_x86_64 --platform manylinux_2_34_x86_64
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64 --platform any)

# Skip work already done: the download when the dependency list and flags
# are unchanged, the project wheel when its sources are unchanged.
deps_stamp=$(printf '%s\n' "${deps[@]}" "${platform_flags[@]}" | sha256sum | cut -c1-64)
src_stamp=$(cd "$root" && find ledger node scenarios pyproject.toml README.md -type f \
    -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)

if [ "$(cat "$out/.deps.sha256" 2>/dev/null)" = "$deps_stamp" ]; then
    echo "==> ${#deps[@]} runtime dependencies: wheels already downloaded"
else
    echo "==> ${#deps[@]} runtime dependencies from pyproject.toml"
    t=$(now)
    "$python" -m pip download -q -d "$out" "${platform_flags[@]}" "${deps[@]}"
    echo "$deps_stamp" >"$out/.deps.sha256"
    echo "    dependency wheels downloaded in $(since "$t")"
fi

if [ "$(cat "$out/.src.sha256" 2>/dev/null)" = "$src_stamp" ] \
    && compgen -G "$out/yrd_credit_chain-*.whl" >/dev/null; then
    echo "==> project wheel up to date"
else
    t=$(now)
    rm -f "$out"/yrd_credit_chain-*.whl
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    # Build from a copy so no build/ or egg-info lands in the work tree.
    tar -C "$root" --exclude=.git --exclude=.venv --exclude=docker --exclude=tests \
        --exclude='*.egg-info' --exclude=build --exclude='.*cache' --exclude=.hypothesis \
        --exclude=.creditchain --exclude=bench-results --exclude=__pycache__ -cf - . \
        | tar -C "$build" -xf -
    # Fixed timestamps: the same sources give the same wheel bytes, so docker
    # build keeps its cached layers instead of reinstalling everything.
    # Without build isolation when this python already has a recent setuptools
    # (saves fetching one into a throwaway environment: ~45 s on a busy host).
    isolation=()
    if "$python" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 68)' 2>/dev/null; then
        isolation=(--no-build-isolation)
    fi
    SOURCE_DATE_EPOCH=315532800 "$python" -m pip wheel -q --no-deps "${isolation[@]}" -w "$out" "$build"
    echo "$src_stamp" >"$out/.src.sha256"
    echo "    project wheel built in $(since "$t")"
fi

count=$(find "$out" -name '*.whl' | wc -l)
echo "$out: $count wheels, $(du -sm "$out" | cut -f1) MB, in $(since "$t_all")"
