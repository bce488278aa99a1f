"""python -m rramk.ablation: every (configuration, seed) once, published summaries, skipping
finished runs, and the same bits as a direct rramk.train run.

Runs are tiny (784-32-10 MLP, 300 MNIST examples, one epoch, the eager ``reference`` backend);
MNIST is the real data set (skipped when absent); CIFAR-10 uses tiny official-format batches.
"""

from __future__ import annotations

import json

import pytest

import rramk.ablation as ablation
import rramk.data as data
import rramk.report as report
import rramk.train as train
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)
from tests.test_train import DATA_ROOT, needs_mnist, write_tiny_cifar10

TINY = ["--epochs", "1", "--limit-train", "300", "--hidden", "32", "--backend", "reference", "--device", "cpu",
        "--no-progress"]


def _computed(history: list[dict]) -> list[dict]:
    """Every per-epoch field but wall-clock time."""
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]


@needs_mnist
def test_study_runs_every_run_once_publishes_it_and_skips_it_next_time(tmp_path, monkeypatch, capsys):
    runs, summaries = tmp_path / "runs", tmp_path / "summaries"
    argv = ["mnist", *TINY, "--data-dir", str(DATA_ROOT), "--configs", "none", "only saturation",
            "--seeds", "0", "1", "--out", str(runs), "--summaries", str(summaries)]
    assert ablation.main(argv) == 0
    budget = summaries / "mnist" / "epochs1-n300-hidden32"
    published = {(c, s): json.loads((budget / c / f"seed{s}" / "summary.json").read_text())
                 for c in ("none", "only-saturation") for s in (0, 1)}
    for (config, seed), summary in published.items():
        assert summary["seed"] == seed and summary["imperfections"] == ablation.CONFIGS[config.replace("-", " ")]
        assert (budget / config / f"seed{seed}" / "metrics.jsonl").is_file()
        assert not (runs / "mnist" / "epochs1-n300-hidden32" / config / f"seed{seed}" / "checkpoint.pt").exists()
    # saturation alone changes no weight on identical noise-free devices: same training, same bits
    for seed in (0, 1):
        assert _computed(published[("none", seed)]["history"]) == \
            _computed(published[("only-saturation", seed)]["history"])
    assert published[("none", 0)]["history"] != published[("none", 1)]["history"]  # seeds differ

    def no_training(settings):
        raise AssertionError(f"retrained a finished run: {settings.out}")

    monkeypatch.setattr(ablation, "train", no_training)
    capsys.readouterr()
    assert ablation.main(argv) == 0
    assert capsys.readouterr().out.count("done already") == 4


@needs_mnist
def test_a_study_run_is_the_run_rramk_train_makes(tmp_path):
    """Independent path to the same numbers: the study's run equals a direct training run."""
    assert ablation.main(["mnist", *TINY, "--data-dir", str(DATA_ROOT), "--configs", "all", "--seeds", "3",
                          "--out", str(tmp_path / "runs"), "--summaries", str(tmp_path / "summaries")]) == 0
    study = json.loads((tmp_path / "summaries" / "mnist" / "epochs1-n300-hidden32" / "all" / "seed3" /
                        "summary.json").read_text())
    assert train.main(["mnist", *TINY, "--data-dir", str(DATA_ROOT), "--imperfections", "all", "--seed", "3",
                       "--out", str(tmp_path / "direct")]) == 0
    direct = json.loads((tmp_path / "direct" / train.SUMMARY).read_text())
    assert _computed(study["history"]) == _computed(direct["history"])


def test_cifar10_study_on_official_format_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CIFAR10_MD5", write_tiny_cifar10(tmp_path / "data"))
    summaries = tmp_path / "summaries"
    assert ablation.main(["cifar10", "--data-dir", str(tmp_path / "data"), "--width", "0.0625", "--epochs", "1",
                          "--backend", "reference", "--device", "cpu", "--no-progress", "--configs", "ideal", "all",
                          "--seeds", "0", "--out", str(tmp_path / "runs"), "--summaries", str(summaries)]) == 0
    study = report.load_summaries(summaries)[("cifar10", "epochs1-n10000-width0.0625")]
    assert sorted(study) == ["all", "ideal"]
    assert report.ablation_command("cifar10", study["all"][0]) == \
        "python -m rramk.ablation cifar10 --epochs 1 --limit-train 10000 --width 0.0625"


def test_refuses_an_unknown_configuration(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ablation.main(["mnist", "--configs", "only d2d", "d2d only"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--configs" in err and "d2d only" in err
