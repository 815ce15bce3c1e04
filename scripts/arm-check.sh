#!/usr/bin/env bash
# The ARM correctness check CI runs on a real rpi4 build: train MobileNetV2 (CIFAR variant) briefly,
# build it for the Raspberry Pi 4, and run both models under emulated aarch64 ONNX Runtime (qemu,
# Cortex-A72) against x86 ONNX Runtime. Fails when outputs disagree beyond tolerance.
# Trained weights matter: a randomly initialised MobileNetV2 has logits near 1e-9, its int8 scales
# are degenerate and the check would test rounding noise, not the model.
#   usage: scripts/arm-check.sh [IMAGEFOLDER] [WORKDIR]
# IMAGEFOLDER defaults to ../shared/datasets/cifar10/train; where it does not exist (a user's clone),
# the tests' generated pattern images are used instead.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data=$(realpath -m "${1:-$root/../shared/datasets/cifar10/train}")
work=$(realpath -m "${2:-arm-check}")
cd "$root"  # for tests.conftest and the default .venv
python=${PYTHON:-.venv/bin/python}
mkdir -p "$work"
if [ -d "$data" ]; then
    train_options=(--subset 2000 --val-fraction 0.01 --epochs 1)
else
    echo "arm-check: $data not found; using generated pattern images" >&2
    data="$work/patterns"
    "$python" -c "import sys; from pathlib import Path; from tests.conftest import write_pattern_dataset; \
write_pattern_dataset(Path(sys.argv[1]), per_class=32, seed=0)" "$data"
    train_options=(--epochs 4 --batch-size 16)
fi
"$python" -m edgekit train -m mobilenet_v2_cifar --data "$data" "${train_options[@]}" --out "$work/train" --force
"$python" -m edgekit build -m mobilenet_v2_cifar -t rpi4 --weights "$work/train/best.pt" --calib "$data" \
    --calib-size 128 --out "$work/mobilenet_v2_cifar-rpi4" --force
"$python" -m edgekit verify "$work/mobilenet_v2_cifar-rpi4" --arch arm64 --data "$data" --limit 32 \
    --json "$work/verify.json"
