#!/usr/bin/env bash
# The MNIST sweeps behind reports/README.md's tolerance answer (issue 20's method): each spread knob of
# HfOxWeakReset.scaled alone on the mean model (d2d_r: R0 and c1, the spread of ln R at t = 0; d2d_m1;
# d2d_t_star; d2d_m2; and d2d, every spread together), at the factors of SPREAD_SWEEP (dense below the fit),
# and the mismatch of a synapse's two devices (d2d_pair, on the full model: the mean model's devices are all
# alike) at PAIR_SWEEP (0: twins, 1: independent, the fit),
# at the published budget with the validation split, at the pulse learning rate LR (default 8: the rate the
# answers study chose for mean + d2d on validation; scripts/study-mnist-answers.sh), seed by seed. Two
# processes of one thread each; finished runs (also committed ones) are skipped, so it continues anywhere.
#
#     LR=8 KNOBS="d2d d2d_r" scripts/study-mnist-tolerances.sh [SEEDS...]   (default: every knob, seeds 0-4)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
LR=${LR:-8}
KNOBS=${KNOBS:-d2d d2d_r d2d_m1 d2d_t_star d2d_m2 d2d_pair}
export OMP_NUM_THREADS=1
for s in ${@:-0 1 2 3 4}; do
  for knob in $KNOBS; do
    for shard in 0 1; do
      $PY -m rramk.ablation mnist --full --study sensitivity --knob "$knob" --lr-pulses "$LR" --seeds "$s" \
        --shard "$shard/2" --no-progress &
    done
    wait
  done
done
