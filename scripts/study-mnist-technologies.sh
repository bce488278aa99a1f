#!/usr/bin/env bash
# The cross-technology study of issue 22 (reports/technologies_mnist_epochs20-val10000.md): the published
# ablation (ideal, mean model, each of d2d/pink/rtn added to it and removed from the full model) on each
# shipped preset of another memory technology, at the published budget with the
# validation split, lr_pulses 8 (the HfOx answers' fixed rate: its runs are scripts/study-mnist-answers.sh's),
# seed by seed. Configurations about an imperfection a preset lacks (the aihwkit presets have no RTN) are
# left out, saying so. Two processes of one thread each; finished runs are skipped, so it continues anywhere.
#
#     PRESETS="rramk/device/presets/ecram_tang2018.json" scripts/study-mnist-technologies.sh [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PRESETS=${PRESETS:-rramk/device/presets/reram_sb_gong2018.json rramk/device/presets/ecram_tang2018.json}
export OMP_NUM_THREADS=1
CONFIGS=(ideal "mean model" "mean + d2d" "mean + pink" "mean + rtn" "full model" "full but d2d" "full but pink"
         "full but rtn")
for s in ${@:-0 1 2 3 4}; do
  for preset in $PRESETS; do
    for shard in 0 1; do
      $PY -m rramk.ablation mnist --full --preset "$preset" --configs "${CONFIGS[@]}" --lr-pulses 8 --seeds "$s" \
        --shard "$shard/2" --no-progress &
    done
    wait
  done
done
