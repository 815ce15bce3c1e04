#!/usr/bin/env bash
# Run the arm64 board-runner image on this x86 machine under qemu-user emulation, as a Raspberry
# Pi 4 (Cortex-A72), with an artifact folder mounted read-only. Correctness only: emulated
# timings say nothing about a real board.
#
#   docker/smoke-run.sh ARTIFACT_DIR               bench every ONNX Runtime model of the artifact
#   docker/smoke-run.sh --tag IMAGE ARTIFACT_DIR
#   docker/smoke-run.sh --info                     the runner's host report (arch, cpu, versions)
#
# Uses podman with vfs storage, as docker/build-image.sh --local-base leaves the image.
set -euo pipefail

TAG="${EDGEKIT_IMAGE:-edgekit-runner:arm64}"
ARGS=()
ARTIFACT=""

usage() { sed -n '2,10s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

while (($#)); do
    case "$1" in
        --tag) TAG="${2:?--tag needs a value}"; shift ;;
        --info) ARGS=(info) ;;
        -h | --help) usage ;;
        -*) echo "error: unknown option '$1'" >&2; usage 2 >&2 ;;
        *) ARTIFACT="$1" ;;
    esac
    shift
done
if ((${#ARGS[@]} == 0)); then
    [[ -n "$ARTIFACT" ]] || { echo "error: give an artifact folder (or --info)" >&2; usage 2 >&2; }
    [[ -f "$ARTIFACT/manifest.json" ]] || { echo "error: no manifest.json in '$ARTIFACT'" >&2; exit 1; }
fi

# aarch64 onnxruntime crashes at import when it parses the host's x86 /proc/cpuinfo: bind a
# Raspberry Pi 4 one over it (4x Cortex-A72, part 0xd08, no asimddp).
CPUINFO="$(mktemp)"
trap 'rm -f "$CPUINFO"' EXIT
for cpu in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$cpu"
    printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n'
    printf 'CPU revision\t: 3\n\n'
done >"$CPUINFO"
printf 'Revision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n' >>"$CPUINFO"
chmod 0644 "$CPUINFO"

RUN=(podman --storage-driver vfs run --rm --arch arm64 --network none
    --ulimit nofile=16384:16384 --ulimit nproc=16384:16384
    -e QEMU_CPU=cortex-a72 -v "$CPUINFO:/proc/cpuinfo:ro")
if [[ -n "$ARTIFACT" && ${#ARGS[@]} == 0 ]]; then
    RUN+=(-v "$(cd "$ARTIFACT" && pwd):/artifact:ro")
fi
# A crashed qemu can hang: bound the run.
timeout -k 10 "${EDGEKIT_SMOKE_TIMEOUT:-600}" "${RUN[@]}" "$TAG" "${ARGS[@]}"
