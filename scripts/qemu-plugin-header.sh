#!/usr/bin/env bash
# qemu-plugin.h for the installed qemu-aarch64, which edgekit's instruction-counting plugin
# (edgekit/runtimes/emulation/insn_classes.c) is compiled against on first use. No Debian binary
# package ships this header, so it is taken from Debian's qemu source package of the installed
# version, fetched with apt-get source from the archive qemu-user itself came from (a private
# deb-src list in a temp folder: the system's apt configuration is not changed). The header is
# GPL-2.0-or-later (QEMU); it stays in the user's cache and is not part of edgekit.
# Idempotent and quiet: does nothing when the header is already there or qemu-user is not installed.
set -euo pipefail

qemu=$(command -v qemu-aarch64 || true)
[ -n "$qemu" ] || exit 0
version=$("$qemu" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')
cache="${EDGEKIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edgekit}/qemu-plugins/qemu-$version"
[ -s "$cache/qemu-plugin.h" ] && exit 0

# The Debian source version of the installed qemu-user (without a binNMU suffix such as +b3).
source_version=$(dpkg-query -W -f='${source:Version}' qemu-user 2>/dev/null || true)
if [ -z "$source_version" ]; then
    echo "note: qemu-user is not a Debian package here; put qemu-plugin.h for qemu $version in $cache" >&2
    exit 0
fi
# deb-src lines for the archives that offer qemu-user ("500 URI SUITE/COMPONENT ARCH Packages").
sources=$(apt-cache policy qemu-user | awk '$2 ~ /^[a-z]+:\/\// && $NF == "Packages" {
    split($3, at, "/"); print "deb-src " $2 " " at[1] " " at[2] }' | sort -u)
if [ -z "$sources" ]; then
    echo "note: no apt archive offers qemu-user; put qemu-plugin.h for qemu $version in $cache" >&2
    exit 0
fi
echo "fetching qemu-plugin.h for qemu $version from Debian's qemu $source_version source package" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
printf '%s\n' "$sources" > "$work/sources.list"
apt_options=(-qq -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/none"
             -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
apt-get "${apt_options[@]}" update >/dev/null
cd "$work"
apt-get "${apt_options[@]}" source --download-only "qemu=$source_version" >/dev/null 2>&1 \
    || apt-get "${apt_options[@]}" source --download-only qemu >/dev/null  # an older build left the archive
tar -xJf qemu_*.orig.tar.* --wildcards '*/include/qemu/qemu-plugin.h'
header=$(find . -path '*/include/qemu/qemu-plugin.h' | head -1)
# Debian's patches are stable-release fixes; none has touched this header (7.2+dfsg-7+deb12u18).
if tar -xJf qemu_*.debian.tar.* debian/patches 2>/dev/null \
        && grep -lq '^+++ .*include/qemu/qemu-plugin.h' debian/patches/* 2>/dev/null; then
    echo "note: a Debian patch of qemu $source_version changes qemu-plugin.h; using the upstream header" >&2
fi
mkdir -p "$cache"
cp "$header" "$cache/qemu-plugin.h.tmp"
printf 'qemu-plugin.h: from Debian source package qemu %s (qemu %s), GPL-2.0-or-later.\n' \
    "$source_version" "$version" > "$cache/SOURCE"
mv "$cache/qemu-plugin.h.tmp" "$cache/qemu-plugin.h"
