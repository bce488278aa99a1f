"""Studies on a preset of another device family: a preset that lacks an imperfection (the soft-bounds ReRAM
has no RTN) runs the published ablation without the configurations about it, every other configuration on
the device's own imperfections; rramk.train refuses to switch on what the device has not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rramk.ablation as ablation
import rramk.studies.runner as runner
import rramk.training.loop as loop
from rramk.cli import UsageError
from rramk.device import model_tables
from rramk.device.soft_bounds import SoftBounds
from rramk.studies.configs import STUDIES
from rramk.training.run_settings import RunSettings
from tests.test_ablation import STUDY
from tests.test_ablation import _outside_a_job_array  # noqa: F401  (autouse: no Slurm job array)
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)

PRESET = model_tables.__file__.replace("model_tables.py", "presets/reram_sb_gong2018.json")


def test_all_is_the_device_as_its_preset_has_it():
    assert RunSettings(dataset="mnist", preset=PRESET).device_config == SoftBounds()  # rtn stays off
    assert RunSettings(dataset="mnist", preset=PRESET, imperfections="d2d").device_config == SoftBounds().only("d2d")
    with pytest.raises(UsageError, match="--imperfections: the device of --preset .* has no rtn "
                                         "\\(its imperfections: d2d, pink, saturation\\)"):
        RunSettings(dataset="mnist", preset=PRESET, imperfections="d2d,rtn")


def test_published_study_on_a_preset_without_rtn(tmp_path, monkeypatch, capsys):
    trained = []

    def fake_train(settings):
        trained.append(settings)
        Path(settings.out).mkdir(parents=True, exist_ok=True)
        (Path(settings.out) / loop.SUMMARY).write_text(json.dumps({"imperfections": settings.imperfections,
                                                                   "seed": settings.seed, "final_test_accuracy": 0.5}))
        return {"final_test_accuracy": 0.5}

    monkeypatch.setattr(runner, "train", fake_train)
    assert ablation.main([*STUDY, "--seeds", "0", "--preset", PRESET, "--out", str(tmp_path / "runs"),
                          "--summaries", str(tmp_path / "summaries")]) == 0
    ran = {Path(s.out).parent.name: (s.imperfections, s.device_config) for s in trained}
    about_rtn = {c.slug for label, c in STUDIES["published"].configs.items()
                 if label.startswith(("mean + rtn", "full but rtn"))}
    assert about_rtn and not about_rtn & set(ran)  # "mean + rtn" (and its no-saturation twin), "full but rtn"
    assert ran["all"] == ("all", SoftBounds())
    assert ran["all-but-d2d"] == ("pink,saturation", SoftBounds().only("pink", "saturation"))
    assert ran["mean-plus-d2d"][1] == SoftBounds().only("d2d", "saturation")
    assert all(cfg is None or not cfg.rtn for _, cfg in ran.values())
    assert "mean + rtn: skipped, the device of" in capsys.readouterr().out
    assert len(ran) == len(STUDIES["published"].configs) - len(about_rtn)
