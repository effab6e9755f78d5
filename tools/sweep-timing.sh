#!/usr/bin/env bash
# tools/sweep-timing.sh [SWEEP.yaml] - the wall time of one sweep run two ways on this
# machine: 2 jobs x 1 BLAS thread (two runs at once) and 1 job x 2 threads (the same runs
# one after another), each in a fresh sweep directory (bench/results/sweep-timing/<stamp>/),
# then the times and the 2-job sweep's SUMMARY.md table written into docs/RESULTS.md
# between <!-- sweep:begin --> and <!-- sweep:end -->. Meant for a quiet machine: the load
# average before and after is written too.
#   SWEEP   default configs/sweeps/cnn_logit_jitter.yaml (12 runs of the CNN, minutes)
#   REPS=N  N repetitions of each way, alternating which goes first (default 1)
#   RESULTS the file to write (default docs/RESULTS.md; a test can point it elsewhere)
#   FFRUN   the binary (default build/ffrun)
#   OUT     where the sweep directories go (default bench/results/sweep-timing)
set -u
cd "$(dirname "$0")/.." || exit 1
root=$PWD
sweep=${1:-configs/sweeps/cnn_logit_jitter.yaml}
reps=${REPS:-1}
results=${RESULTS:-docs/RESULTS.md}
ffrun=${FFRUN:-build/ffrun}
case $ffrun in /*) ;; *) ffrun=$root/$ffrun ;; esac
case $sweep in /*) ;; *) sweep=$root/$sweep ;; esac
[ -x "$ffrun" ] || { echo "sweep-timing: no $ffrun (make all first)" >&2; exit 2; }
[ -f "$sweep" ] || { echo "sweep-timing: no sweep file $sweep" >&2; exit 2; }
"$ffrun" sweep "$sweep" --dry-run > /dev/null || exit 2   # a bad sweep fails before any run

stamp=$(date -u +%Y%m%d-%H%M%S)
out=${OUT:-$root/bench/results/sweep-timing}/$stamp
mkdir -p "$out" || exit 1
load0=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit (working tree had uncommitted changes)"

# one sweep in a fresh directory: prints its wall seconds; its files stay in $out/$1
run_way() { # name jobs threads
    local d=$out/$1
    mkdir -p "$d" && ln -sfn "$root/data" "$d/data" && ln -sfn "$root/configs" "$d/configs"
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$d" && "$ffrun" sweep "$sweep" --jobs "$2" --threads "$3" > sweep.out 2> sweep.err)
    local rc=$?
    t1=$(date +%s.%N)
    [ $rc -eq 0 ] || { echo "sweep-timing: $1 failed (exit $rc); see $d/sweep.err" >&2; exit 1; }
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }'
}

declare -a wall_par wall_seq
for ((r = 1; r <= reps; r++)); do
    if ((r % 2)); then
        wall_par+=("$(run_way "rep$r-jobs2x1" 2 1)") || exit 1
        wall_seq+=("$(run_way "rep$r-jobs1x2" 1 2)") || exit 1
    else
        wall_seq+=("$(run_way "rep$r-jobs1x2" 1 2)") || exit 1
        wall_par+=("$(run_way "rep$r-jobs2x1" 2 1)") || exit 1
    fi
    echo "sweep-timing: repetition $r: 2 jobs x 1 thread ${wall_par[-1]} s, 1 job x 2 threads ${wall_seq[-1]} s"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

summary=$(ls "$out"/rep1-jobs2x1/runs/*/*/SUMMARY.md | head -1)
n_runs=$(sed -n 's/^\([0-9]*\) run(s) of .*/\1/p' "$summary")
finished=$(sed -n 's/.*: \([0-9]*\) finished,.*/\1/p' "$summary")
[ -n "$n_runs" ] && [ "$n_runs" = "$finished" ] || { echo "sweep-timing: not every run finished ($summary)" >&2; exit 1; }
list() { local IFS=/; echo "$*"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mp=$(median "${wall_par[@]}") ms=$(median "${wall_seq[@]}")
rel=${sweep#"$root"/}

tmp=$(mktemp)
{
    echo "## A sweep: 2 runs at once vs one after another (\`tools/sweep-timing.sh\`)"
    echo
    echo "Generated on $(date -u '+%Y-%m-%d %H:%M') UTC. Machine: $(tools/cpu-name.sh), $(nproc) CPU(s). Commit \`$commit\`."
    echo "Load average at start $load0, at end $load1. \`ffrun sweep $rel\`: $n_runs runs, each way in a fresh"
    echo "sweep directory; $reps repetition(s) of each, alternating which way goes first; wall time of the whole"
    echo "\`ffrun sweep\` command (start-up, data loading, evaluation and model writes included)."
    echo
    echo "| way | jobs x BLAS threads | wall time (s) | median (s) | vs one after another |"
    echo "| --- | --- | ---: | ---: | ---: |"
    echo "| two runs at once | 2 x 1 | $(list "${wall_par[@]}") | $mp | $(awk -v a="$mp" -v b="$ms" 'BEGIN { printf "%.2fx the time\n", a / b }') |"
    echo "| one after another | 1 x 2 | $(list "${wall_seq[@]}") | $ms | 1.00 |"
    echo
    echo "The 2-job sweep's SUMMARY.md (sorted by the mean over seeds of the goodness error, in %):"
    echo
    sed -n '/^| rank |/,/^$/p' "$summary" | sed '/^$/d'
    echo
    sed -n '/^Best point:/,$p' "$summary"
} > "$tmp"
[ -f "$results" ] || printf '# ffrun results\n' > "$results"
grep -q '<!-- sweep:begin -->' "$results" || printf '\n<!-- sweep:begin -->\n<!-- sweep:end -->\n' >> "$results"
awk -v f="$tmp" '
    /<!-- sweep:begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
    /<!-- sweep:end -->/ { skip = 0 }
    !skip { print }' "$results" > "$results.new" && mv "$results.new" "$results"
rm -f "$tmp"
echo "sweep-timing: 2 jobs x 1 thread $mp s, 1 job x 2 threads $ms s (median of $reps); written to $results"
echo "sweep-timing: sweep directories under $out"
