#!/usr/bin/env bash
# tools/speed-ab.sh - two ff-bench binaries (before and after a change) and PyTorch doing
# the same step, alternating, on the shipped competition configs: one JSON line per run
# ({"impl": "old"|"new"|"torch", "rep", "cfg", "th", "load", "r": the run's own line}).
#
#   tools/speed-ab.sh OLD_FF_BENCH NEW_FF_BENCH OUT.jsonl
#
# Environment (defaults): REPS (3); SECS (8) seconds per timed loop; CONFIGS
# ("cifar_deep supervised_deep": configs/NAME.yaml); THREADS ("1 2"); TORCH (1: also
# bench/ff_ref.py bench --config, the same step in PyTorch). The OpenBLAS kernels are the
# environment's (OPENBLAS_CORETYPE, else OpenBLAS's own choice). Build the old binary from
# a worktree of the old commit (git worktree add /tmp/old REV && make -C /tmp/old build/ff-bench).
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
old=$1 new=$2 out=$3
cd "$(dirname "$0")/.."
impls="old new"
[ "${TORCH:-1}" = 1 ] && impls="old new torch"
for rep in $(seq "${REPS:-3}"); do
    for cfg in ${CONFIGS:-cifar_deep supervised_deep}; do
        for th in ${THREADS:-1 2}; do
            for impl in $impls; do
                case $impl in
                old | new)
                    bin=$old
                    [ "$impl" = new ] && bin=$new
                    line=$(OPENBLAS_NUM_THREADS=$th "$bin" run --config "configs/$cfg.yaml" \
                        --threads "$th" --pool "$th" --seconds "${SECS:-8}" | grep '^{"impl')
                    ;;
                torch)
                    line=$(OPENBLAS_NUM_THREADS=$th /usr/bin/python3 bench/ff_ref.py bench \
                        --config "configs/$cfg.yaml" --threads "$th" --seconds "${SECS:-8}" |
                        tail -1)
                    ;;
                esac
                printf '{"impl":"%s","rep":%d,"cfg":"%s","th":%d,"load":"%s","r":%s}\n' \
                    "$impl" "$rep" "$cfg" "$th" "$(cut -d' ' -f1-3 /proc/loadavg)" "$line" >>"$out"
            done
        done
    done
done
