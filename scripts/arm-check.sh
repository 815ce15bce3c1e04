#!/usr/bin/env bash
# The ARM correctness check CI runs on a real rpi4 build: train MobileNetV2 (CIFAR variant) briefly on
# real images, build it for the Raspberry Pi 4, and run both models under emulated aarch64 ONNX
# Runtime (qemu, Cortex-A72) against x86 ONNX Runtime. Fails when outputs disagree beyond tolerance.
# Trained weights matter: a randomly initialised MobileNetV2 has logits near 1e-9, so int8 scales
# become degenerate and the check would test rounding noise, not the model.
#   usage: scripts/arm-check.sh IMAGEFOLDER [WORKDIR]
set -euo pipefail
data=${1:?usage: scripts/arm-check.sh IMAGEFOLDER [WORKDIR]}
work=${2:-arm-check}
edgekit=${EDGEKIT:-.venv/bin/edgekit}
mkdir -p "$work"
"$edgekit" train -m mobilenet_v2_cifar --data "$data" --subset 2000 --val-fraction 0.01 --epochs 1 \
    --out "$work/train" --force
"$edgekit" build -m mobilenet_v2_cifar -t rpi4 --weights "$work/train/best.pt" --calib "$data" \
    --calib-size 128 --out "$work/mobilenet_v2_cifar-rpi4" --force
"$edgekit" verify "$work/mobilenet_v2_cifar-rpi4" --arch arm64 --data "$data" --limit 32 \
    --json "$work/verify.json"
