#!/usr/bin/env bash
# tests/fuzz/run.sh BUILD SECONDS [--keep] [NAME...] - run the libFuzzer harnesses
# BUILD/fuzz/fuzz_NAME (every one, or the NAMEs given) for SECONDS each, one after
# the other, starting from the committed corpus tests/fuzz/corpus/NAME (so every
# committed input, crash reproducers included, runs first) and tests/fuzz/NAME.dict
# or config.dict when there is one. New inputs go to a scratch directory, or with
# --keep to BUILD/fuzz/corpus/NAME (kept across runs, read again next time); crashes,
# leaks, timeouts and out-of-memory inputs go to BUILD/fuzz/artifacts/NAME/, the
# whole libFuzzer output to BUILD/fuzz/logs/NAME.log (NAME.check.log without --keep,
# so a make test beside a make fuzz leaves the long run's log alone). Prints one line per harness
# (runs, seconds, corpus size) and the closing "N passed, N failed"; exits non-zero
# if any harness found something.
set -u
cd "$(dirname "$0")/../.." || exit 1
build=${1:?usage: tests/fuzz/run.sh BUILD SECONDS [--keep] [NAME...]}
seconds=${2:?usage: tests/fuzz/run.sh BUILD SECONDS [--keep] [NAME...]}
shift 2
keep=0
names=()
for a in "$@"; do
    case "$a" in --keep) keep=1 ;; *) names+=("$a") ;; esac
done
if [ ${#names[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do n=${f#tests/fuzz/fuzz_}; names+=("${n%.c}"); done
fi
scratch=$(mktemp -d /tmp/ff_fuzz_run.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
passed=0 failed=0 failed_names=()
for name in "${names[@]}"; do
    bin=$build/fuzz/fuzz_$name
    art=$build/fuzz/artifacts/$name
    log=$build/fuzz/logs/$name.check.log work=$scratch/$name
    [ $keep -eq 1 ] && log=$build/fuzz/logs/$name.log work=$build/fuzz/corpus/$name
    mkdir -p "$art" "$work" "$(dirname "$log")"
    if [ ! -x "$bin" ]; then
        echo "FAIL fuzz_$name: $bin is missing (make fuzz-build)"
        failed=$((failed + 1)); failed_names+=("$name"); continue
    fi
    dict=()
    for d in "tests/fuzz/$name.dict" "tests/fuzz/${name%%_*}.dict"; do
        [ -f "$d" ] && { dict=(-dict="$d"); break; }
    done
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a parser must not need
    # 2 GiB for a small input; UB aborts (built with -fno-sanitize-recover)
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" \
        "$work" "tests/fuzz/corpus/$name" > "$log" 2>&1
    rc=$?
    runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    secs=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "ok   fuzz_$name: ${runs:-?} runs in ${secs:-$seconds} s ($cov)"
        passed=$((passed + 1))
    else
        echo "FAIL fuzz_$name (exit $rc): see $log; reproducer in $art/"
        grep -E 'ERROR|SUMMARY|fuzz: |runtime error|Test unit written' "$log" | head -8
        failed=$((failed + 1)); failed_names+=("$name")
    fi
done
[ ${#failed_names[@]} -eq 0 ] || echo "fuzz findings: ${failed_names[*]} (reproduce: $build/fuzz/fuzz_NAME FILE)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
