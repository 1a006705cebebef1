#!/usr/bin/env bash
# Build every image with no container registry:
#   1. yrd-credit-chain/base:<suite>  (docker/build-base.sh, skipped if present)
#   2. docker/wheelhouse/              (docker/build-wheelhouse.sh)
#   3. yrd-credit-chain/node:latest    (docker/Dockerfile on the base above)
#
#   docker/build-images.sh [--force]    # --force rebuilds the base too
#
# The legacy builder (DOCKER_BUILDKIT=0) is used: it takes the locally
# imported base as is, where BuildKit may try to resolve it in a registry.
# Set NODE_IMAGE to change the node image's tag.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
base_args=()
for arg in "$@"; do
    case "$arg" in
        --force) base_args+=(--force) ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument $arg (expected --force)" >&2; exit 2 ;;
    esac
done

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# shellcheck disable=SC1091
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
base="${BASE_IMAGE_NAME:-yrd-credit-chain/base}:${suite}"
node_image=${NODE_IMAGE:-yrd-credit-chain/node:latest}
t_all=$(now)

t=$(now)
"$here/build-base.sh" "${base_args[@]}"
echo "[time] base image: $(since "$t")"

t=$(now)
"$here/build-wheelhouse.sh"
echo "[time] wheelhouse: $(since "$t")"

t=$(now)
echo "==> docker build $node_image (FROM $base)"
# The builder stage is tagged too: it is the layer cache of the next build, and
# tagged it is never mistaken for a left-over by the prune below.
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$base" --target builder \
    -t "${node_image%:*}-builder:${node_image##*:}" "$here" >/dev/null
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$base" -t "$node_image" "$here" >/dev/null
# Earlier builds' node and builder images, now untagged.
for title in yrd-credit-chain-node yrd-credit-chain-node-builder; do
    docker image prune -f --filter "label=org.opencontainers.image.title=$title" >/dev/null
done
echo "[time] node image: $(since "$t")"

for image in "$base" "$node_image"; do
    size=$(docker image inspect -f '{{.Size}}' "$image")
    echo "$image: $((size / 1000000)) MB"
done
echo "[time] all images: $(since "$t_all")"
