#!/usr/bin/env bash
# Build the air-gapped base image yrd-credit-chain/base:<suite> from Debian
# packages alone: no container registry is contacted.
#
#   docker/build-base.sh [--force]
#
# The suite is this machine's (VERSION_CODENAME in /etc/os-release) and the
# mirror is whatever apt here is configured to use, read at run time through
# `apt-get indextargets` (deb822 or sources.list alike). The mirror is never
# written into a file of the project or into the image: the rootfs's apt
# sources are emptied and debootstrap's log is removed before packing.
#
# Needs root (debootstrap, chroot) and a Docker engine. Skips all work when
# the image already exists, unless --force.
set -euo pipefail

force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument $arg (expected --force)" >&2; exit 2 ;;
    esac
done

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
step() { printf '==> %s\n' "$*"; }

t_all=$(now)
# shellcheck disable=SC1091
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ -z "$suite" ]; then
    echo "error: /etc/os-release names no VERSION_CODENAME; cannot pick a Debian suite" >&2
    exit 1
fi
image="${BASE_IMAGE_NAME:-yrd-credit-chain/base}:${suite}"

if ! docker info >/dev/null 2>&1; then
    echo "error: no Docker engine answers (docker info failed)" >&2
    exit 1
fi
if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    size=$(docker image inspect -f '{{.Size}}' "$image")
    echo "$image exists ($((size / 1000000)) MB); nothing to do (use --force to rebuild)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "error: debootstrap needs root; run this script as root" >&2
    exit 1
fi

# The first mirror apt uses for the suite itself (not -security or -updates).
mirror=$(apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 'Identifier: Packages' \
    | awk -v s="$suite" '$1 == s { print $2; exit }')
if [ -z "$mirror" ]; then
    echo "error: apt has no Packages index for suite $suite; run 'apt-get update' first" >&2
    exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    step "installing debootstrap"
    t=$(now)
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; then
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
    fi
    echo "    debootstrap installed in $(since "$t")"
fi

work=$(mktemp -d /var/tmp/yrd-base.XXXXXX)
rootfs="$work/rootfs"
tarball="$work/rootfs.tar.gz"

unmount_all() {
    # debootstrap mounts proc/sys inside the target; never rm -rf across them.
    local m
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v r="$rootfs" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
}
cleanup() {
    unmount_all
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

step "debootstrap --variant=minbase $suite (packages from apt's configured mirror)"
t=$(now)
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$work/debootstrap.out" 2>&1 || {
    tail -n 30 "$work/debootstrap.out" >&2
    echo "error: debootstrap failed" >&2
    exit 1
}
unmount_all
packages=$(chroot "$rootfs" dpkg-query -W -f '.\n' | wc -l)
echo "    $packages packages, $(du -sm "$rootfs" | cut -f1) MB, in $(since "$t")"

step "slimming the rootfs"
t=$(now)
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian "$rootfs"/usr/share/linda \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old \
    "$rootfs"/var/log/bootstrap.log "$rootfs"/var/log/apt/* "$rootfs"/var/log/dpkg.log \
    "$rootfs"/tmp/* "$rootfs"/root/.cache
# No mirror and no host details in the image: empty apt sources, resolver, hostname.
: >"$rootfs/etc/apt/sources.list"
rm -f "$rootfs"/etc/apt/sources.list.d/*
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"
if grep -rqsF "$mirror" "$rootfs/etc" "$rootfs/var/log" "$rootfs/var/lib/apt"; then
    echo "error: the mirror URL is still named inside the rootfs:" >&2
    grep -rlsF "$mirror" "$rootfs/etc" "$rootfs/var/log" "$rootfs/var/lib/apt" >&2
    exit 1
fi
echo "    $(du -sm "$rootfs" | cut -f1) MB after slimming, in $(since "$t")"

step "packing"
t=$(now)
tar --numeric-owner -C "$rootfs" -czf "$tarball" .
echo "    $(du -m "$tarball" | cut -f1) MB .tar.gz in $(since "$t")"

step "docker import $image"
t=$(now)
docker import \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL org.opencontainers.image.title=yrd-credit-chain-base org.opencontainers.image.base.name=debian:$suite" \
    --message "debootstrap --variant=minbase $suite + python3, python3-venv, ca-certificates" \
    "$tarball" "$image" >/dev/null
echo "    imported in $(since "$t")"

size=$(docker image inspect -f '{{.Size}}' "$image")
python_version=$(docker run --rm "$image" python3 -c 'import sys; print(sys.version.split()[0])')
echo "$image: $((size / 1000000)) MB, python $python_version, built in $(since "$t_all")"
