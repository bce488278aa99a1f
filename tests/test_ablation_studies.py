"""python -m rramk.ablation's studies: the published and legacy studies, the lr and sensitivity sweeps,
--full, --preset, and bad study arguments refused (training replaced by a recorder of its settings)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import rramk.ablation as ablation
import rramk.studies.runner as runner
import rramk.studies.summaries as study_summaries
import rramk.training.loop as loop
from rramk.studies.configs import ABLATIONS, STUDIES, sensitivity_study
from rramk.device.traces import file_sha256
from tests.test_ablation import STUDY
from tests.test_ablation import _outside_a_job_array  # noqa: F401  (autouse: no Slurm job array)
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)
from tests.test_train_inputs import other_device


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
    (["--study", "sensitivity"], "--study sensitivity needs --knob (one of d2d, d2d_r, d2d_m1, d2d_t_star, d2d_m2, d2d_pair, pink, rtn, t_star)"),
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
