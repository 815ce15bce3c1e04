#!/usr/bin/env bash
# Build the edgekit board-runner image for linux/arm64 (Raspberry Pi 4 and other 64-bit boards).
#
#   docker/build-image.sh                      docker buildx, base python:3.11-slim-bookworm
#   docker/build-image.sh --local-base         podman, no Docker engine and no registry needed
#   docker/build-image.sh --local-base --smoke artifacts/tiny-rpi4
#
# --local-base (or EDGEKIT_LOCAL_BASE=1) is for machines that cannot pull images: it makes a
# Debian bookworm arm64 base with mmdebstrap (cached), imports it with podman and builds with
# podman under qemu-user emulation (binfmt). pip inside the emulated build runs offline from a
# folder of aarch64 wheels downloaded on the host (bind-mounted with a pip config), so the
# Dockerfile stays the one users build.
# Needs: podman, runc, mmdebstrap, qemu-user-static, binfmt-support, python3 with pip.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG="${EDGEKIT_IMAGE:-edgekit-runner:arm64}"
LOCAL_BASE="${EDGEKIT_LOCAL_BASE:-0}"
CACHE="${EDGEKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgekit}"
SMOKE=""

usage() { sed -n '2,14s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }
die() { echo "error: $*" >&2; exit 1; }

while (($#)); do
    case "$1" in
        --local-base) LOCAL_BASE=1 ;;
        --tag) TAG="${2:?--tag needs a value}"; shift ;;
        --smoke) SMOKE="${2:?--smoke needs an artifact folder}"; shift ;;
        -h | --help) usage ;;
        *) echo "error: unknown option '$1'" >&2; usage 2 >&2 ;;
    esac
    shift
done

[[ -f "$ROOT/edgekit/runtimes/board_runner.py" ]] || die "edgekit/runtimes/board_runner.py is missing: nothing to put in the image"

if [[ "$LOCAL_BASE" != 1 ]]; then
    docker buildx version >/dev/null 2>&1 \
        || die "docker buildx not found (Docker Desktop, or the docker-buildx-plugin package); without Docker: --local-base"
    docker buildx build --platform linux/arm64 -f "$ROOT/docker/Dockerfile" -t "$TAG" --load "$ROOT"
    [[ -z "$SMOKE" ]] || echo "note: --smoke runs with podman; on a Docker machine use: docker run --rm -v \"\$PWD/$SMOKE:/artifact:ro\" $TAG" >&2
    exit 0
fi

for tool in podman mmdebstrap; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install podman runc mmdebstrap qemu-user-static binfmt-support)"
done
# binfmt_misc may not be mounted yet; this mounts it and registers qemu-aarch64 (needs root).
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64 \
    || die "cannot run aarch64 binaries: install qemu-user-static binfmt-support"

# vfs works everywhere (no overlay or fuse needed); it is large: ~0.8 GB per image.
PODMAN=(podman --storage-driver vfs)
BASE_TAR="$CACHE/bookworm-arm64-python3.tar"
BASE_IMAGE="localhost/edgekit-base:bookworm-arm64"
WHEELS="$CACHE/wheels-cp311-aarch64"
mkdir -p "$CACHE"

if [[ ! -f "$BASE_TAR" ]]; then
    echo "making $BASE_TAR with mmdebstrap (a few minutes)" >&2
    # Like python:3.11-slim: python3 + pip, no Recommends, and pip allowed to install system-wide
    # (Debian's EXTERNALLY-MANAGED marker removed), so the Dockerfile runs unchanged on it.
    # shellcheck disable=SC2016  # $1 is the hook's argument (the rootfs), expanded by mmdebstrap
    mmdebstrap --variant=minbase --arch=arm64 --include=python3,python3-pip \
        --aptopt='APT::Install-Recommends "false"' \
        --customize-hook='rm -f "$1"/usr/lib/python3.*/EXTERNALLY-MANAGED' \
        bookworm "$BASE_TAR.partial.tar"
    mv "$BASE_TAR.partial.tar" "$BASE_TAR"
fi
"${PODMAN[@]}" image exists "$BASE_IMAGE" \
    || "${PODMAN[@]}" import --quiet --arch arm64 "$BASE_TAR" "$BASE_IMAGE" >/dev/null

# The same pins as the Dockerfile's ARG defaults, read from it so they cannot drift apart.
pin() { sed -n "s/^ARG $1=//p" "$ROOT/docker/Dockerfile"; }
ORT="$(pin ONNXRUNTIME_VERSION)"
NUMPY="$(pin NUMPY_VERSION)"
[[ -n "$ORT" && -n "$NUMPY" ]] || die "cannot read the version pins from docker/Dockerfile"
# Any host python with pip downloads the aarch64 wheels (PYTHON= overrides; the venv by default).
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    PYTHON=python3
    [[ ! -x "$ROOT/.venv/bin/python" ]] || PYTHON="$ROOT/.venv/bin/python"
fi
# The wheels are the ones pip in the image would choose for its own glibc: pip does not widen an
# explicit manylinux_2_X tag to older ones, so every tag from the base's glibc down to 2.17 is listed.
GLIBC="$(tar -xOf "$BASE_TAR" --wildcards '*aarch64-linux-gnu/libc.so.6' 2>/dev/null \
    | grep -a -o 'release version 2\.[0-9]*' | head -n 1 | sed 's/.* 2\.//')" || true
[[ "$GLIBC" =~ ^[0-9]+$ && "$GLIBC" -ge 17 ]] || die "cannot read the glibc version of $BASE_TAR (remove it to rebuild)"
PLATFORMS=()
for ((minor = GLIBC; minor >= 17; minor--)); do PLATFORMS+=(--platform "manylinux_2_${minor}_aarch64"); done
"$PYTHON" -m pip download --quiet --only-binary=:all: "${PLATFORMS[@]}" --platform manylinux2014_aarch64 \
    --python-version 3.11 --implementation cp --abi cp311 --dest "$WHEELS" \
    "onnxruntime==$ORT" "numpy==$NUMPY"

# pip's user config (root's HOME) points it at the wheels. Both mount points exist in any Debian
# base, so no empty mount target is left behind in the image, unlike /etc/pip.conf or /wheels.
PIP_HOME="$(mktemp -d)"
trap 'rm -rf "$PIP_HOME"' EXIT
mkdir -p "$PIP_HOME/.config/pip"
printf '[global]\nno-index = true\nfind-links = /mnt\n' >"$PIP_HOME/.config/pip/pip.conf"
chmod -R a+rX "$PIP_HOME"

# chroot isolation (no nested namespaces needed) only allows the host network; pip is offline anyway.
# --layers=false: with vfs every cached intermediate layer is a full copy of the rootfs (~0.4 GB).
"${PODMAN[@]}" build --arch arm64 --isolation chroot --network host --layers=false \
    --build-arg BASE="$BASE_IMAGE" -v "$WHEELS:/mnt:ro" -v "$PIP_HOME:/root:ro" \
    -f "$ROOT/docker/Dockerfile" -t "$TAG" "$ROOT"
echo "built $TAG: $("${PODMAN[@]}" image inspect --format '{{.Os}}/{{.Architecture}}' "$TAG")" >&2

[[ -z "$SMOKE" ]] || "$ROOT/docker/smoke-run.sh" --tag "$TAG" "$SMOKE"
