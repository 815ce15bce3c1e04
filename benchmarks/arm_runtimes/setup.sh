#!/usr/bin/env bash
# One-time set-up for benchmarks/arm_runtimes.py (issue 23 part 3): ExecuTorch 1.5.1 and LiteRT 2.3.0,
# host and emulated board.
#
#   bash benchmarks/arm_runtimes/setup.sh [VENV=/tmp/etvenv]
#
# Host (x86): a scratch venv that sees the project's .venv (torch 2.14.1, onnxruntime, edgekit's
#   deps) through a .pth file and adds litert-torch 0.10.0 (with its deps: jax, transformers,
#   ai-edge-quantizer 0.10, litert-converter 0.5, ai-edge-litert 2.3.0; no tensorflow), executorch
#   1.5.1 + torchao 0.18.0 (--no-deps: executorch's Requires-Dist pulls coremltools, hydra, pandas...
#   that export does not need) and ziglang (a cross C/C++ toolchain from PyPI; no aarch64 gcc here).
# Emulated board, LiteRT: ~/.cache/edgekit/arm64-study-litert/site holds ai-edge-litert 2.3.0 + numpy
#   (and their small deps) for the rootfs's python3.11, run by litert_a72_driver.py.
# Emulated board: ~/.cache/edgekit/arm64-study-executorch/site holds ONLY the aarch64 executorch
#   wheel's libraries (no torch: the Python pybindings need libtorch, the C++ runner does not), and
#   et_a72_runner, cross-compiled from et_a72_runner.cpp against them. It reuses the rootfs of
#   edgekit's cached arm64 Python (arm64-py311-ort*-numpy*, made by `edgekit` on first emulated use)
#   read-only; nothing in that cache is changed.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${1:-/tmp/etvenv}"
MAIN_VENV="${MAIN_VENV:-$ROOT/.venv}"
[ -x "$MAIN_VENV/bin/python" ] || MAIN_VENV=/work/main/.venv
CACHE="${EDGEKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edgekit}"
STUDY="$CACHE/arm64-study-executorch"
ROOTFS="$(ls -d "$CACHE"/arm64-py311-ort*/rootfs | head -1)"

if [ ! -x "$VENV/bin/python" ]; then
  python3.11 -m venv "$VENV"
  "$MAIN_VENV/bin/python" -c "import site; print(site.getsitepackages()[0])" > "$VENV/lib/python3.11/site-packages/zz_main.pth"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check litert-torch==0.10.0 ai-edge-litert==2.3.0 torchao==0.18.0
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps executorch==1.5.1
"$VENV/bin/pip" install -q --disable-pip-version-check ruamel.yaml ziglang

LITERT="$CACHE/arm64-study-litert/site"
mkdir -p "$LITERT"
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade --target "$LITERT" --platform manylinux_2_28_aarch64 \
  --platform manylinux_2_27_aarch64 --platform manylinux2014_aarch64 --only-binary=:all: --python-version 3.11 \
  --implementation cp --abi cp311 ai-edge-litert==2.3.0 numpy==2.4.6

mkdir -p "$STUDY/site"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --upgrade --target "$STUDY/site" \
  --platform manylinux_2_28_aarch64 --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
  executorch==1.5.1
ET="$STUDY/site/executorch"

# zig puts its own libc headers before any -isystem, and its libc++ is not ABI-compatible with the
# libstdc++ that the executorch libraries were built with (inline FreeableBuffer/std::variant code
# crossed the boundary: "terminating due to uncaught exception of type std::bad_variant_access").
# So: libstdc++ 12 headers (the host's; bookworm's aarch64 libstdc++ is the same GCC 12), copies of
# zig's glibc headers placed after them, and the rootfs's libstdc++.so.6 to link against.
BUILD="$STUDY/build"
rm -rf "$BUILD" && mkdir -p "$BUILD/inc" "$BUILD/lib"
ZIGLIB="$("$VENV/bin/python" -c "import ziglang, os; print(os.path.dirname(ziglang.__file__))")/lib"
for d in aarch64-linux-gnu generic-glibc aarch64-linux-any any-linux-any; do cp -r "$ZIGLIB/libc/include/$d" "$BUILD/inc/$d"; done
cp -r "$ZIGLIB/include" "$BUILD/inc/clang"
ln -s "$ROOTFS/usr/lib/aarch64-linux-gnu/libstdc++.so.6" "$BUILD/lib/libstdcxx.so"
ln -s "$ROOTFS/lib/aarch64-linux-gnu/libgcc_s.so.1" "$BUILD/lib/libgcc_s.so"
GXX="$(ls -d /usr/include/c++/* | sort -V | tail -1)"
"$VENV/bin/python" -m ziglang cc -target aarch64-linux-gnu.2.36 -x c++ -O2 -std=c++17 -nostdinc -nostdinc++ \
  -isystem "$GXX" -isystem "/usr/include/x86_64-linux-gnu/c++/$(basename "$GXX")" -isystem "$BUILD/inc/clang" \
  -isystem "$BUILD/inc/aarch64-linux-gnu" -isystem "$BUILD/inc/generic-glibc" -isystem "$BUILD/inc/aarch64-linux-any" \
  -isystem "$BUILD/inc/any-linux-any" -fvisibility=hidden -fvisibility-inlines-hidden -Wno-deprecated-declarations \
  -I "$ET/include" -I "$ET/include/executorch/runtime/core/portable_type/c10" -DC10_USING_CUSTOM_GENERATED_MACROS \
  -o "$ET/et_a72_runner" "$HERE/et_a72_runner.cpp" -L "$ET/lib" -L "$BUILD/lib" -Wl,--no-as-needed \
  -lexecutorch -lexecutorch_backend_xnnpack -lexecutorch_kernels_optimized -lexecutorch_kernels_quantized \
  -lexecutorch_threadpool -lstdcxx -lgcc_s -Wl,-rpath,'$ORIGIN/lib' 2>&1 | grep -E "error" || true
[ -x "$ET/et_a72_runner" ]
echo "{\"executorch\": \"1.5.1\", \"rootfs\": \"$ROOTFS\", \"runner\": \"$ET/et_a72_runner\"}" > "$STUDY/stamp.json"
du -sh "$ET/lib" "$ET/et_a72_runner"
echo "ok: $STUDY"
