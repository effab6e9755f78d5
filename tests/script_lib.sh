# tests/script_lib.sh - the frame every tests/t_*.sh script test sources first: the
# working directory becomes the project root ($root), $build is the build directory
# (FF_BUILD, default build), $tmp a scratch directory removed on exit; fail and ok print
# and count checks, and finish NAME [DETAIL] prints the verdict and exits 0 only if no
# check failed.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
root=$PWD
build=${FF_BUILD:-build}
tmp=$(mktemp -d "/tmp/ff_$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok   $*"; }
finish() {
    [ $fails -eq 0 ] && echo "$1: all checks passed${2:+ ($2)}"
    exit $((fails > 0))
}
