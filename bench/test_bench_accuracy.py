"""Accuracy degradation per imperfection (a benchmark group): the short ablation study.

Trains the MNIST network under every configuration of rramk.ablation (ideal, none, all, each
imperfection alone, all but each one) for 3 seeds with the short budget (CPU: 1 epoch on 10 000
examples; GPU: the published 20 epochs, hours: bench/gpu_check.sh leaves this file out), and
records test accuracy and its drop against the ideal BNN in extra_info. The runs are those of
`python -m rramk.ablation mnist` (same directories, so finished runs are reused);
`python -m rramk.report` turns them into a table and a plot.
"""

import statistics
from pathlib import Path

import pytest

from conftest import SIZE
from rramk.studies import runner

if SIZE == "tiny":
    pytest.skip("the ablation has no tiny size (it would add a study to reports/ablation/)", allow_module_level=True)
ROOT = Path(__file__).parents[1]
BUDGET = ({"epochs": 1, "limit_train": 10_000} if SIZE == "cpu" else {"epochs": 20, "limit_train": None})
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def study():
    paths = runner.run_study("mnist", SEEDS, list(runner.CONFIGS), ROOT / "runs" / "ablation",
                               summaries=ROOT / "reports" / "ablation" / "summaries", progress=False, **BUDGET)
    import json

    results = {}
    for path in paths:
        summary = json.loads(path.read_text())
        label = next(k for k, v in runner.CONFIGS.items() if v == summary["imperfections"])
        results.setdefault(label, []).append(summary)
    return results


@pytest.mark.parametrize("label", list(runner.CONFIGS))
def test_accuracy_degradation(benchmark, study, label):
    runs = study[label]
    accuracy = [r["final_test_accuracy"] for r in runs]
    ideal = statistics.fmean(r["final_test_accuracy"] for r in study["ideal"])
    seconds = statistics.fmean(r["train_seconds"] for r in runs)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the cost is the training above, recorded below
    benchmark.extra_info.update({
        "operation": "accuracy", "provider": label, "shape": f"mnist-{BUDGET['epochs']}ep", "seeds": len(runs),
        "test_accuracy_mean": statistics.fmean(accuracy), "test_accuracy_std": statistics.pstdev(accuracy),
        "drop_vs_ideal": ideal - statistics.fmean(accuracy), "train_seconds_mean": seconds})
    assert len(runs) == len(SEEDS)
