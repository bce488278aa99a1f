#!/usr/bin/env bash
# The MNIST study behind reports/README.md's answers (issue 20's method): the published ablation at the
# published budget (20 epochs; the last 10 000 training images held out for validation, each run reporting
# the test accuracy of its validation-chosen epoch), at the two published pulse learning rates 8 and 100
# (the tuned answer picks per configuration on validation), seed by seed so that every cell has the same
# seeds whenever the study stops. Two processes of one thread each (2 cores); a finished run is skipped,
# also when its summary is already committed, so the same command continues the study anywhere.
#
#     scripts/study-mnist-answers.sh [SEEDS...]      (default 0 1 2 3 4)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
CONFIGS=("mean model" "mean + d2d" "mean + pink" "mean + rtn" "full model" "full but d2d" "full but pink" "full but rtn")
for seed in "${@:-0 1 2 3 4}"; do
  for s in $seed; do
    ( $PY -m rramk.ablation mnist --full --configs ideal --seeds "$s" --no-progress &&
      $PY -m rramk.ablation mnist --full --configs "${CONFIGS[@]}" --lr-pulses 8 100 --seeds "$s" --shard 0/2 \
        --no-progress ) &
    $PY -m rramk.ablation mnist --full --configs "${CONFIGS[@]}" --lr-pulses 8 100 --seeds "$s" --shard 1/2 \
      --no-progress &
    wait
  done
done
