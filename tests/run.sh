#!/usr/bin/env bash
# tests/run.sh BUILD [--unit-only] - run every unit test binary in BUILD/tests,
# then (unless --unit-only) every tests/t_*.sh script test, and print one
# closing line "N passed, N failed" over all of them. Exit non-zero on failure.
set -u
build=${1:-build}
unit_only=${2:-}
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0 failed_names=()
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d) continue ;; esac
    echo "== $t"
    if out=$("$t" 2>&1); then rc=0; else rc=$?; fi
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
    p=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    [ -n "$p" ] && [ "$p" != "$line" ] || { p=0; f=1; }
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or exited non-zero
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -eq 0 ] || failed_names+=("$t")
done
if [ "$unit_only" != "--unit-only" ]; then
    for s in tests/t_*.sh; do
        [ -f "$s" ] || continue
        echo "== $s"
        if FF_BUILD="$build" bash "$s"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1)); failed_names+=("$s")
        fi
    done
fi
[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
