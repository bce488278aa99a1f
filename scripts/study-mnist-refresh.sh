#!/usr/bin/env bash
# The MNIST refresh study behind reports/refresh.md at the answers study's settings: the full model at
# lr_pulses 8 (the rate validation chose for it), 20 epochs, the validation split, with each refresh policy:
# past_t_star and window (they read each device's true t*, which a chip cannot) and pulses:limit=542 (a pulse
# count a chip keeps; 542 is the published preset's median t*), each retrying a failed re-write up to 3 times
# (a chip's program and verify would), seeds 0-4. The baseline without refresh is
# the answers study's `full model` at lr 8 (reports/ablation/summaries/mnist/epochs20-val10000/all-lr8, the
# same seeds), which python -m rramk.report pairs with each run. Each finished run's summary and metrics are
# copied to reports/refresh/<run>/; a run already there is skipped, an interrupted one resumed. Two processes
# of one thread each.
#
#     scripts/study-mnist-refresh.sh [SEEDS...]      (default 0 1 2 3 4)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
POLICIES=("past_t_star:retries=3" "window:retries=3" "pulses:limit=542,retries=3")

run() {  # POLICY SEED
    local name="val-lr8-${1//[:=,]/-}-seed$2"
    local out="runs/refresh/$name" kept="reports/refresh/$name"
    [ -f "$kept/summary.json" ] && return 0
    if [ ! -f "$out/summary.json" ]; then
        local resume=()
        [ -f "$out/checkpoint.pt" ] && resume=(--resume)
        $PY -m rramk.train mnist --imperfections all --epochs 20 --lr-pulses 8 --refresh "$1" --seed "$2" \
            --no-progress --out "$out" "${resume[@]}"
    fi
    mkdir -p "$kept"
    cp "$out/summary.json" "$out/metrics.jsonl" "$kept/"
}

queue=()
for seed in ${@:-0 1 2 3 4}; do
    for policy in "${POLICIES[@]}"; do
        queue+=("$policy $seed")
    done
done
slot=0
for job in "${queue[@]}"; do
    run $job &
    slot=$((slot + 1))
    if [ $((slot % 2)) -eq 0 ]; then wait; fi
done
wait
