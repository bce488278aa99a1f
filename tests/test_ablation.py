"""python -m rramk.ablation: every (configuration, seed) once, published summaries, skipping
finished runs, the same bits as a direct rramk.train run, and the committed short study
reproduced bit for bit (shards: tests/test_ablation_shards.py; the studies' runs and arguments:
tests/test_ablation_studies.py).

Runs are tiny (784-32-10 MLP, 300 MNIST examples, one epoch, the eager ``reference`` backend)
except the reproduction of the committed runs; MNIST is the real data set (skipped when absent);
CIFAR-10 uses tiny official-format batches; sharding is tested with a stand-in for training.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import rramk.ablation as ablation
import rramk.studies.runner as runner
import rramk.studies.summaries as study_summaries
import rramk.data as data
import rramk.train as train
import rramk.training.loop as loop
from rramk import provenance
from rramk.studies.configs import ABLATIONS, label_of
from rramk.training.run_settings import PUBLISHED
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)
from tests.test_train import DATA_ROOT, needs_mnist
from tests.test_train_inputs import write_tiny_cifar10


SHORT_STUDY = Path(__file__).resolve().parents[1] / "reports" / "ablation" / "summaries" / "mnist" / "epochs1-n10000-val10000"
# at lr_pulses 20, the rate whose run directories carry no -lr suffix (UNSUFFIXED_LR), so that the paths below
# read as the study's configurations; rramk.train's default rate is tested in tests/test_train_*.py
TINY = ["--epochs", "1", "--limit-train", "300", "--hidden", "32", "--backend", "reference", "--device", "cpu",
        "--no-progress", "--lr-pulses", "20"]


STUDY = ["mnist", "--epochs", "1", "--limit-train", "300", "--seeds", "0", "1", "--device", "cpu", "--no-progress",
         "--lr-pulses", "20"]


def _computed(history: list[dict]) -> list[dict]:
    """Every per-epoch field but wall-clock time."""
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]


@pytest.fixture(autouse=True)
def _outside_a_job_array(monkeypatch):
    """A test run inside a Slurm job array must not shard the studies of these tests."""
    for name in [n for n in os.environ if n.startswith("SLURM_ARRAY_")]:
        monkeypatch.delenv(name)


@needs_mnist
def test_study_runs_every_run_once_publishes_it_and_skips_it_next_time(tmp_path, monkeypatch, capsys):
    runs, summaries = tmp_path / "runs", tmp_path / "summaries"
    argv = ["mnist", *TINY, "--data-dir", str(DATA_ROOT), "--configs", "none", "only saturation",
            "--seeds", "0", "1", "--out", str(runs), "--summaries", str(summaries)]
    assert ablation.main(argv) == 0
    budget = summaries / "mnist" / "epochs1-n300-val10000-hidden32"
    published = {(c, s): json.loads((budget / c / f"seed{s}" / "summary.json").read_text())
                 for c in ("none", "only-saturation") for s in (0, 1)}
    for (config, seed), summary in published.items():
        assert summary["seed"] == seed and summary["imperfections"] == ABLATIONS[label_of(config)].flag
        assert (budget / config / f"seed{seed}" / "metrics.jsonl").is_file()
        assert not (runs / "mnist" / "epochs1-n300-val10000-hidden32" / config / f"seed{seed}" / "checkpoint.pt").exists()
    # saturation alone changes no weight on identical noise-free devices: same training, same bits
    for seed in (0, 1):
        assert _computed(published[("none", seed)]["history"]) == \
            _computed(published[("only-saturation", seed)]["history"])
    assert published[("none", 0)]["history"] != published[("none", 1)]["history"]  # seeds differ

    def no_training(settings):
        raise AssertionError(f"retrained a finished run: {settings.out}")

    monkeypatch.setattr(runner, "train", no_training)
    capsys.readouterr()
    assert ablation.main(argv) == 0
    assert capsys.readouterr().out.count("done already") == 4


@needs_mnist
def test_a_study_run_is_the_run_rramk_train_makes(tmp_path):
    """Independent path to the same numbers: the study's run equals a direct training run."""
    assert ablation.main(["mnist", *TINY, "--data-dir", str(DATA_ROOT), "--configs", "all", "--seeds", "3",
                          "--out", str(tmp_path / "runs"), "--summaries", str(tmp_path / "summaries")]) == 0
    study = json.loads((tmp_path / "summaries" / "mnist" / "epochs1-n300-val10000-hidden32" / "all" / "seed3" /
                        "summary.json").read_text())
    assert train.main(["mnist", *TINY, "--data-dir", str(DATA_ROOT), "--imperfections", "all", "--seed", "3",
                       "--out", str(tmp_path / "direct")]) == 0
    direct = json.loads((tmp_path / "direct" / loop.SUMMARY).read_text())
    assert _computed(study["history"]) == _computed(direct["history"])


def test_cifar10_study_on_official_format_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CIFAR10_MD5", write_tiny_cifar10(tmp_path / "data"))
    summaries = tmp_path / "summaries"
    assert ablation.main(["cifar10", "--data-dir", str(tmp_path / "data"), "--width", "0.0625", "--epochs", "1",
                          "--backend", "reference", "--device", "cpu", "--no-progress", "--configs", "ideal", "all",
                          "--seeds", "0", "--out", str(tmp_path / "runs"), "--summaries", str(summaries),
                          "--validation", "20"]) == 0
    study = study_summaries.load_summaries(summaries)[("cifar10", "epochs1-n10000-val20-width0.0625")]
    assert sorted(study) == ["all", "ideal"]
    assert study_summaries.ablation_command("cifar10", study["all"][0]) == \
        "python -m rramk.ablation cifar10 --epochs 1 --limit-train 10000 --validation 20 --width 0.0625"
    assert len(study["all"][0]["history"]) == 1 and study["all"][0]["history"][0]["validation_accuracy"] is not None


def test_refuses_an_unknown_configuration(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ablation.main(["mnist", "--configs", "only d2d", "d2d only"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--configs" in err and "d2d only" in err


@needs_mnist
def test_a_sensitivity_run_is_the_run_rramk_train_scale_makes(tmp_path):
    """Independent path to the same numbers: the sweep's run equals rramk.train --scale."""
    assert ablation.main(["mnist", *TINY, "--data-dir", str(DATA_ROOT), "--study", "sensitivity", "--knob", "rtn",
                          "--values", "3", "--configs", "mean + rtn x3", "--seeds", "1", "--out",
                          str(tmp_path / "runs"), "--summaries", str(tmp_path / "summaries")]) == 0
    study = json.loads((tmp_path / "summaries" / "mnist" / "epochs1-n300-val10000-hidden32" / "mean-plus-rtn-x3" / "seed1" /
                        "summary.json").read_text())
    assert study["device_config"]["rtn_scale"] == 3.0 and study["settings"]["scale"] == "rtn=3"
    assert train.main(["mnist", *TINY, "--data-dir", str(DATA_ROOT), "--imperfections", "rtn,saturation",
                       "--scale", "rtn=3", "--seed", "1", "--out", str(tmp_path / "direct")]) == 0
    direct = json.loads((tmp_path / "direct" / loop.SUMMARY).read_text())
    assert _computed(study["history"]) == _computed(direct["history"])


# ----------------------------------------------------------------------------- the committed runs

RERUN_DIFFERS = {
    "out", "data_dir", "progress",  # where the rerun writes and reads, and its progress bar
    "device",  # "auto" on the CPU machine that made them (no GPU in their "machine"): the rerun asks for the CPU
    "width",  # CIFAR-10's: bench/ made these runs through run_study (RunSettings' 1.0), the command passes 0.125
}


# Per-epoch fields that depend on the float rounding of the network (all but the schedule and the clock).
STATISTICAL_FIELDS = ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy", "test_loss",
                      "test_accuracy", "pulses_per_device", "fraction_past_t_star", "sign_flips_per_synapse")
SEED_SPREADS = 4  # a rerun elsewhere may differ from its committed run by 4 sd of a difference of two seeds


def _within_seed_spread(rerun: list[dict], committed: list[dict], seeds: list[list[dict]]) -> list[str]:
    """The fields of ``rerun`` farther from ``committed`` (the same seed) than SEED_SPREADS standard
    deviations of the difference of two seeds, estimated from the committed ``seeds``' spread; a run on
    another machine (other float rounding) may at worst decorrelate from its committed run like another
    seed. Floor: one test example of accuracy (1e-4), and 1e-4 relative for the rest."""
    import statistics

    failures = []
    for epoch, (new, old) in enumerate(zip(rerun, committed), start=1):
        assert {k: v for k, v in new.items() if k not in STATISTICAL_FIELDS + ("seconds",)} == \
            {k: v for k, v in old.items() if k not in STATISTICAL_FIELDS + ("seconds",)}, f"epoch {epoch}: schedule"
        for field in STATISTICAL_FIELDS:
            if old.get(field) is None:
                assert new.get(field) is None, f"epoch {epoch}: {field}"
                continue
            spread = statistics.stdev([run[epoch - 1][field] for run in seeds]) * 2 ** 0.5
            bound = max(SEED_SPREADS * spread, 1e-4 * max(1.0, abs(old[field])))
            if abs(new[field] - old[field]) > bound:
                failures.append(f"epoch {epoch} {field}: rerun {new[field]:.6g}, committed {old[field]:.6g}, "
                                f"bound {bound:.3g} (seed-to-seed sd of a difference {spread:.3g})")
    return failures


@needs_mnist
@pytest.mark.slow
@pytest.mark.parametrize("label", ["ideal", "all"])
def test_the_committed_short_study_repeats(tmp_path, label, request):
    """Reruns seed 0 of a configuration of the committed short study with its command. On the machine
    fingerprint the committed run recorded (rramk.provenance: CPU identity, torch's vector code,
    threads, torch, MKL, oneDNN) every computed per-epoch field equals the committed one, bit for bit;
    on another one (another CPU generation, or ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA set) torch's
    float rounding differs, so each field must lie within the seed-to-seed spread of the committed
    seeds (:func:`_within_seed_spread`). The test says which comparison it made."""
    config = ABLATIONS[label]  # at rramk.train's default rate (the ideal BNN, which has none: unsuffixed)
    directory = config.slug if config.imperfections is None else study_summaries.directory_of(
        config.slug, PUBLISHED["mnist"]["lr_pulses"])
    runs = {seed: json.loads((SHORT_STUDY / directory / f"seed{seed}" / loop.SUMMARY).read_text())
            for seed in (0, 1, 2)}
    committed = runs[0]
    assert "gpu" not in committed["machine"] and committed["settings"]["device"] == "auto"
    command = study_summaries.ablation_command("mnist", committed).split()
    recorded = [flag for flag in committed["command"].split() if flag != "--no-progress"]  # changes no result
    assert command[:3] == ["python", "-m", "rramk.ablation"] and recorded == command
    torch.set_num_threads(committed["machine"].get("threads", 2))  # the autouse fixture restores its own count
    assert ablation.main([*command[3:], "--configs", label, "--seeds", "0", "--device", "cpu", "--no-progress",
                          "--data-dir", str(DATA_ROOT), "--out", str(tmp_path / "runs"),
                          "--summaries", str(tmp_path / "summaries")]) == 0
    (path,) = (tmp_path / "summaries").glob(f"mnist/*/{directory}/seed0/{loop.SUMMARY}")
    rerun = json.loads(path.read_text())
    assert {k: rerun["settings"].get(k) for k in committed["settings"] if k not in RERUN_DIFFERS} == \
        {k: v for k, v in committed["settings"].items() if k not in RERUN_DIFFERS}
    differences = provenance.fingerprint_differences(committed["machine"], rerun["machine"])
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if not differences:
        reporter.write_line(f"{label}: same machine fingerprint as the committed run: compared bit for bit")
        assert _computed(rerun["history"]) == _computed(committed["history"]), \
            f"{label}: committed on {committed['machine']}, rerun on {rerun['machine']}"
    else:
        reporter.write_line(f"{label}: another machine fingerprint ({'; '.join(differences)}): compared within "
                            f"the committed seeds' spread")
        failures = _within_seed_spread(rerun["history"], committed["history"],
                                       [runs[s]["history"] for s in sorted(runs)])
        assert not failures, f"{label}: " + "; ".join(failures)


def test_the_seed_spread_comparison_can_fail():
    """_within_seed_spread passes a rerun inside the bound and names a field outside it."""
    seeds = [[{"epoch": 1, "lr": [20.0], **{f: 0.5 + d for f in STATISTICAL_FIELDS}}] for d in (0.0, 0.01, -0.01)]
    inside = [{**seeds[0][0], "test_accuracy": 0.5 + 0.05}]  # 0.05 < 4 * 0.01 * sqrt(2) = 0.0566
    outside = [{**seeds[0][0], "test_accuracy": 0.5 + 0.06}]
    assert _within_seed_spread(inside, seeds[0], seeds) == []
    (failure,) = _within_seed_spread(outside, seeds[0], seeds)
    assert failure.startswith("epoch 1 test_accuracy: rerun 0.56, committed 0.5")


def test_budget_directories_name_the_network_and_keep_the_old_names():
    """Runs of different networks never share a budget directory; the default networks keep the names
    their committed runs have (mnist MLP: no suffix; cifar10: -width)."""
    from rramk.studies.runner import budget_tag
    from rramk.training.run_settings import RunSettings

    # runs without a validation split keep the old names (the committed runs of before the split)
    assert budget_tag(RunSettings("mnist", epochs=3, limit_train=20000, validation=0)) == "epochs3-n20000"
    assert budget_tag(RunSettings("mnist", epochs=3, hidden=100, validation=0)) == "epochs3-hidden100"
    assert budget_tag(RunSettings("fashion-mnist", epochs=3, validation=0)) == "epochs3"
    assert budget_tag(RunSettings("fashion-mnist", network="vgg", width=0.125, epochs=2, limit_train=10000,
                                  validation=0)) == "epochs2-n10000-vgg0.125"
    assert budget_tag(RunSettings("cifar10", width=0.0625, epochs=1, limit_train=10000, validation=0)) == \
        "epochs1-n10000-width0.0625"
    # runs that choose their epoch on validation never share a directory with them
    assert budget_tag(RunSettings("mnist", epochs=20)) == "epochs20-val10000"
    assert budget_tag(RunSettings("cifar10", width=0.0625, epochs=1, limit_train=10000)) == \
        "epochs1-n10000-val5000-width0.0625"
    summary = {"epochs": 2, "settings": {"limit_train": 10000, "network": "vgg", "width": 0.125}}
    assert study_summaries.ablation_command("fashion-mnist", summary) == \
        "python -m rramk.ablation fashion-mnist --epochs 2 --limit-train 10000 --validation 0 --lr-pulses 20 " \
        "--network vgg --width 0.125"
