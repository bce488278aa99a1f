#!/usr/bin/env bash
# Issue 21, point 3: the binary VGG of the published code (WIDTH 1/8: 0.57 M synapses) trained
# to a validation plateau on CIFAR-10 (the JPEG copy, datasets/cifar10-jpeg: "CIFAR-10 (JPEG copy)", never
# "CIFAR-10"), as a software BNN and with every imperfection of the published fit on: rramk.train's CIFAR
# recipe (batch 500, random crop 32 with 4 pixels of padding and horizontal flips, the pulse rate and float
# learning rate halved every 7 epochs, the last 5 000 training images held out for validation, the epoch
# chosen on validation) at EPOCHS epochs (default 60: the rate has halved 8 times, ~1/256 of its start, so the
# curve has flattened). Each run is its own process of THREADS threads, one after the other; a finished run
# is skipped and an interrupted one resumes from its checkpoint, so it continues in any session.
#
#     EPOCHS=60 WIDTH=0.125 scripts/study-cifar10-convergence.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-2}
for s in ${@:-0}; do
  for config in ideal "full model"; do
    $PY -m rramk.ablation cifar10-jpeg --full --epochs "${EPOCHS:-60}" --width "${WIDTH:-0.125}" --configs "$config" \
      --seeds "$s" --keep-checkpoints --no-progress
  done
done
