"""python -m rramk.ablation: every (configuration, seed) once, published summaries, skipping
finished runs, shards that split the study, the same bits as a direct rramk.train run, and the
committed short study reproduced bit for bit.

Runs are tiny (784-32-10 MLP, 300 MNIST examples, one epoch, the eager ``reference`` backend)
except the reproduction of the committed runs; MNIST is the real data set (skipped when absent);
CIFAR-10 uses tiny official-format batches; sharding is tested with a stand-in for training.
"""

from __future__ import annotations

import dataclasses
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
from rramk.studies.configs import ABLATIONS, STUDIES, label_of, sensitivity_study
from rramk.device.traces import file_sha256
from rramk.training.run_settings import PUBLISHED
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)
from tests.test_train import DATA_ROOT, needs_mnist
from tests.test_train_inputs import other_device, write_tiny_cifar10

SHORT_STUDY = Path(__file__).resolve().parents[1] / "reports" / "ablation" / "summaries" / "mnist" / "epochs1-n10000-val10000"
# at lr_pulses 20, the rate whose run directories carry no -lr suffix (UNSUFFIXED_LR), so that the paths below
# read as the study's configurations; rramk.train's default rate is tested in tests/test_train_*.py
TINY = ["--epochs", "1", "--limit-train", "300", "--hidden", "32", "--backend", "reference", "--device", "cpu",
        "--no-progress", "--lr-pulses", "20"]


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


# ----------------------------------------------------------------------------- shards

STUDY = ["mnist", "--epochs", "1", "--limit-train", "300", "--seeds", "0", "1", "--device", "cpu", "--no-progress",
         "--lr-pulses", "20"]
PLAN = [(label_of(c.slug), seed) for seed in (0, 1) for c in STUDIES["published"].configs.values()]  # STUDY's runs


@pytest.fixture
def stand_in_training(monkeypatch) -> list[tuple[str, int]]:
    """Replaces training by writing a summary; returns the (label, seed) of every run trained."""
    trained = []

    def fake_train(settings):
        out = Path(settings.out)
        trained.append((label_of(out.parent.name), settings.seed))
        assert ABLATIONS[trained[-1][0]].flag == settings.imperfections
        out.mkdir(parents=True, exist_ok=True)
        summary = {"imperfections": settings.imperfections, "seed": settings.seed, "final_test_accuracy": 0.5}
        (out / loop.SUMMARY).write_text(json.dumps(summary))
        return summary

    monkeypatch.setattr(runner, "train", fake_train)
    return trained


def _finished(root: Path) -> set[tuple[str, int]]:
    return {(label_of(p.parents[1].name), int(p.parent.name.removeprefix("seed")))
            for p in root.glob("mnist/*/*/seed*/summary.json")}


def test_a_study_warns_when_its_finished_runs_used_another_machine_fingerprint(tmp_path, stand_in_training, capsys):
    """A CPU run's bits depend on the machine fingerprint (threads, torch's vector code, ...): finishing a
    study on another one than its finished runs recorded (here or in their committed copies) says so,
    with the thread count to set; the same fingerprint, an unrecorded field (older summaries) or a GPU
    run says nothing."""
    runs, summaries = tmp_path / "runs", tmp_path / "summaries"
    first_shard = [*STUDY, "--out", str(runs), "--summaries", str(summaries), "--shard", "0/2"]
    assert ablation.main(first_shard) == 0
    assert "fingerprint" not in capsys.readouterr().err  # stand-in summaries record no machine
    finished = sorted(summaries.glob("mnist/*/*/seed*/summary.json"))
    threads, cpu = torch.get_num_threads(), provenance.machine()["cpu"]
    for path, machine in zip(finished, [{"cpu": cpu, "threads": threads}, {"cpu": cpu},
                                        {"cpu": "c", "gpu": "H200", "threads": threads + 5}]):
        path.write_text(json.dumps({**json.loads(path.read_text()), "machine": machine}))
    assert ablation.main([*STUDY, "--out", str(runs), "--summaries", str(summaries), "--shard", "1/2"]) == 0
    assert "fingerprint" not in capsys.readouterr().err
    path = finished[3]  # a committed copy only: the run directory's own summary says nothing
    path.write_text(json.dumps({**json.loads(path.read_text()), "machine": {"cpu": cpu, "threads": threads + 1}}))
    assert ablation.main([*STUDY, "--out", str(runs), "--summaries", str(summaries), "--shard", "1/2"]) == 0
    err = capsys.readouterr().err
    assert f"another machine fingerprint (threads {threads + 1}, here {threads})" in err
    assert f"OMP_NUM_THREADS={threads + 1}" in err
    here = provenance.machine()
    path.write_text(json.dumps({**json.loads(path.read_text()), "machine": {**here, "cpu_capability": "SVE256"}}))
    assert ablation.main([*STUDY, "--out", str(runs), "--summaries", str(summaries), "--shard", "1/2"]) == 0
    err = capsys.readouterr().err
    assert f"cpu_capability 'SVE256', here {here['cpu_capability']!r}" in err and "OMP_NUM_THREADS" not in err


@pytest.mark.parametrize("count", [1, 2, 3, 28, 30])
def test_shards_run_every_run_of_the_study_once(tmp_path, stand_in_training, count):
    runs, summaries = tmp_path / "runs", tmp_path / "summaries"
    for index in range(count):
        before, trained_before = _finished(runs), len(stand_in_training)
        assert ablation.main([*STUDY, "--out", str(runs), "--summaries", str(summaries),
                              "--shard", f"{index}/{count}"]) == 0
        own = PLAN[index::count]
        assert stand_in_training[trained_before:] == own, f"shard {index}/{count}"
        assert _finished(runs) - before == set(own), f"shard {index}/{count} wrote other runs' directories"
        assert _finished(summaries) == _finished(runs)
    assert sorted(stand_in_training) == sorted(PLAN) and len(stand_in_training) == len(PLAN)


def test_a_slurm_array_task_runs_its_shard_and_shard_wins(tmp_path, stand_in_training, monkeypatch, capsys):
    for name, value in (("ID", "5"), ("MIN", "4"), ("MAX", "7"), ("COUNT", "4"), ("STEP", "1")):
        monkeypatch.setenv(f"SLURM_ARRAY_TASK_{name}", value)  # sbatch --array=4-7: this is task 1 of 4
    argv = [*STUDY, "--out", str(tmp_path / "runs"), "--summaries", str(tmp_path / "summaries")]
    assert ablation.main(argv) == 0
    assert stand_in_training == PLAN[1::4]
    assert "shard 1/4 (7 of 28 runs)" in capsys.readouterr().out
    del stand_in_training[:]
    assert ablation.main([*argv, "--shard", "0/2"]) == 0
    assert stand_in_training == PLAN[0::2]


@pytest.mark.parametrize("shard", ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3"])
def test_refuses_a_bad_shard(shard, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ablation.main(["mnist", f"--shard={shard}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m rramk.ablation: error: argument --shard: expected i/n") and repr(shard) in err


def test_refuses_slurm_variables_it_cannot_read(tmp_path, stand_in_training, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")  # --array=1,3,7: not evenly spaced
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MAX", "7")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert ablation.main([*STUDY, "--out", str(tmp_path / "runs"), "--summaries", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "python -m rramk.ablation: error: SLURM_ARRAY_TASK_ID=3 is not one of 3" in err and "--shard i/n" in err
    assert stand_in_training == []


# ----------------------------------------------------------------------------- studies: published, lr, sensitivity


@pytest.fixture
def recorded_settings(monkeypatch) -> list:
    """Replaces training by writing a summary; returns the settings of every run trained."""
    trained = []

    def fake_train(settings):
        trained.append(settings)
        Path(settings.out).mkdir(parents=True, exist_ok=True)
        summary = {"imperfections": settings.imperfections, "seed": settings.seed, "final_test_accuracy": 0.5}
        (Path(settings.out) / loop.SUMMARY).write_text(json.dumps(summary))
        return summary

    monkeypatch.setattr(runner, "train", fake_train)
    return trained


def _runs(trained, root) -> list[tuple]:
    return [(str(Path(s.out).relative_to(root / "mnist" / "epochs1-n300-val10000")), s.imperfections, s.scale, s.lr_pulses)
            for s in trained]


def test_the_default_study_is_the_published_one_and_legacy_runs_its_subset(tmp_path, recorded_settings):
    root = tmp_path / "runs"
    assert ablation.main([*STUDY, "--seeds", "0", "--out", str(root), "--summaries", str(tmp_path / "s")]) == 0
    assert [Path(s.out).parent.name for s in recorded_settings] == \
        [c.slug for c in STUDIES["published"].configs.values()]
    del recorded_settings[:]
    assert ablation.main([*STUDY, "--seeds", "0", "--study", "legacy", "--out", str(root),
                          "--summaries", str(tmp_path / "s")]) == 0
    assert recorded_settings == []  # every legacy run is a run of the published study: done already


def test_lr_study_runs_each_rate_in_its_own_directory(tmp_path, recorded_settings):
    root = tmp_path / "runs"
    assert ablation.main([*STUDY, "--seeds", "0", "--study", "lr", "--lr-pulses", "8", "20", "--out", str(root),
                          "--summaries", str(tmp_path / "s")]) == 0
    assert _runs(recorded_settings, root) == [("only-saturation-lr8/seed0", "saturation", "", 8.0),
                                              ("only-saturation/seed0", "saturation", "", 20.0),
                                              ("all-lr8/seed0", "all", "", 8.0), ("all/seed0", "all", "", 20.0)]
    del recorded_settings[:]
    assert ablation.main([*STUDY, "--seeds", "0", "--configs", "full model", "--lr-pulses", "50", "--out",
                          str(root), "--summaries", str(tmp_path / "s")]) == 0  # any study at another rate
    assert _runs(recorded_settings, root) == [("all-lr50/seed0", "all", "", 50.0)]


def test_sensitivity_study_trains_each_factor_of_the_knob(tmp_path, recorded_settings):
    root = tmp_path / "runs"
    assert ablation.main([*STUDY, "--seeds", "0", "--study", "sensitivity", "--knob", "d2d", "--values", "0,0.5",
                          "1.5", "1", "--out", str(root), "--summaries", str(tmp_path / "s")]) == 0
    assert _runs(recorded_settings, root) == [("only-saturation/seed0", "saturation", "", 20.0),
                                              ("mean-plus-d2d-x0.5/seed0", "d2d,saturation", "d2d=0.5", 20.0),
                                              ("mean-plus-d2d/seed0", "d2d,saturation", "", 20.0),
                                              ("mean-plus-d2d-x1.5/seed0", "d2d,saturation", "d2d=1.5", 20.0)]
    assert recorded_settings[1].device_config == ABLATIONS["mean + d2d"].device().scaled(d2d=0.5)
    del recorded_settings[:]
    assert ablation.main([*STUDY, "--seeds", "0", "--study", "sensitivity", "--knob", "t_star", "--values", "0", "2",
                          "--out", str(root), "--summaries", str(tmp_path / "s")]) == 0
    # the mean model (the reference of every loss) is done already; t_star sweeps the full model by default
    assert _runs(recorded_settings, root) == [("full-t_star-x0/seed0", "all", "t_star=0", 20.0),
                                              ("full-t_star-x2/seed0", "all", "t_star=2", 20.0)]


def test_full_with_epochs_trains_every_example_for_that_many_epochs(tmp_path, recorded_settings):
    root = tmp_path / "runs"
    assert ablation.main(["mnist", "--full", "--epochs", "10", "--configs", "mean model", "--seeds", "0", "--device",
                          "cpu", "--no-progress", "--out", str(root), "--summaries", str(tmp_path / "s")]) == 0
    (settings,) = recorded_settings
    assert (settings.epochs, settings.limit_train) == (10, None)
    # at rramk.train's default rate, 8, which is not the unsuffixed rate (UNSUFFIXED_LR = 20)
    assert Path(settings.out) == root / "mnist" / "epochs10-val10000" / "only-saturation-lr8" / "seed0"
    summary = {"epochs": 10, "validation": 10000, "settings": {"limit_train": None, "hidden": 3000, "lr_pulses": 8.0}}
    assert study_summaries.ablation_command("mnist", summary) == "python -m rramk.ablation mnist --full --epochs 10"
    # a run of before the split (no "validation" recorded) had none: its command says so
    assert study_summaries.ablation_command("mnist", {k: v for k, v in summary.items() if k != "validation"}) == \
        "python -m rramk.ablation mnist --full --epochs 10 --validation 0"
    summary["epochs"] = 20
    assert study_summaries.ablation_command("mnist", summary) == "python -m rramk.ablation mnist --full"


@pytest.mark.parametrize("argv,message", [
    (["--knob", "d2d"], "--knob: only with --study sensitivity"),
    (["--values", "0,1"], "--values: only with --study sensitivity"),
    (["--study", "sensitivity"], "--study sensitivity needs --knob (one of d2d, d2d_r, d2d_m1, d2d_t_star, d2d_m2, pink, rtn, t_star)"),
    (["--study", "sensitivity", "--knob", "d2d", "--values", "0,x"], "--values: expected factors such as"),
    (["--study", "sensitivity", "--knob", "d2d", "--values", "0", "1", "1"], "--values: expected distinct factors"),
    (["--study", "sensitivity", "--knob", "d2d", "--values", "0,-1"], "--values: expected distinct factors >= 0"),
    (["--study", "sensitivity", "--knob", "alpha"], "argument --knob: invalid choice: 'alpha'"),
    (["--study", "sensitivity", "--knob", "pink", "--base", "half"], "argument --base: invalid choice: 'half'"),
    (["--study", "half"], "argument --study: invalid choice: 'half'"),
    (["--lr-pulses", "0"], "argument --lr-pulses: expected a positive number of pulses, got '0'"),
    (["--lr-pulses", "fast"], "argument --lr-pulses: expected a positive number of pulses, got 'fast'"),
    (["--study", "lr", "--configs", "mean + d2d x0.5"], "--configs: unknown configuration(s) 'mean + d2d x0.5'"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_refuses_bad_study_arguments(argv, message, capsys, recorded_settings):
    with pytest.raises(SystemExit) as exit_info:
        ablation.main(["mnist", *argv])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(f"python -m rramk.ablation: error: {message}")
    assert recorded_settings == []


def test_a_preset_is_the_base_of_every_run_in_a_directory_of_its_own(tmp_path, recorded_settings, capsys):
    """--preset: every configuration on that device, under <budget>-preset-<stem>-<hash>: the published fit's
    runs, and the same file edited, are other runs."""
    preset, root = tmp_path / "mine.json", tmp_path / "runs"
    other_device().save(preset)
    common = [*STUDY, "--seeds", "0", "--out", str(root), "--summaries", str(tmp_path / "s")]
    assert ablation.main([*common, "--preset", str(preset)]) == 0
    configs = list(STUDIES["published"].configs.values())
    assert [s.device_config for s in recorded_settings] == [c.device(other_device()) for c in configs]
    budget = root / "mnist" / f"epochs1-n300-val10000-preset-mine-{file_sha256(preset)[:8]}"
    assert [Path(s.out) for s in recorded_settings] == [budget / c.slug / "seed0" for c in configs]
    assert study_summaries.ablation_command("mnist", {"epochs": 1, "validation": 10000,
                                                     "settings": dataclasses.asdict(recorded_settings[0])}) == \
        f"python -m rramk.ablation mnist --epochs 1 --limit-train 300 --lr-pulses 20 --preset {preset}"
    del recorded_settings[:]
    assert ablation.main(common) == 0  # the published fit: none of its runs is done
    assert [Path(s.out) for s in recorded_settings] == [root / "mnist" / "epochs1-n300-val10000" / c.slug / "seed0"
                                                        for c in configs]
    del recorded_settings[:]
    edited = dataclasses.replace(other_device(), pink_alpha=0.01)
    edited.save(preset)
    sweep = sensitivity_study("pink", (2.0,))
    assert ablation.main([*common, "--preset", str(preset), "--study", "sensitivity", "--knob", "pink",
                          "--values", "2"]) == 0
    assert [(Path(s.out).parents[1].name, s.device_config) for s in recorded_settings] == \
        [(f"epochs1-n300-val10000-preset-mine-{file_sha256(preset)[:8]}", c.device(edited)) for c in sweep.configs.values()]
    capsys.readouterr()
    assert ablation.main([*common, "--preset", str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m rramk.ablation: error: --preset: ")


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
