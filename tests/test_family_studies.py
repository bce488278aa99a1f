"""Studies on a preset of another device family: a preset that lacks an imperfection (the soft-bounds ReRAM
has no RTN) runs the published ablation without the configurations about it, every other configuration on
the device's own imperfections; rramk.train refuses to switch on what the device has not."""

from __future__ import annotations

from pathlib import Path

import pytest

import rramk.ablation as ablation
from rramk.cli import UsageError
from rramk.device import model_tables
from rramk.device.soft_bounds import SoftBounds
from rramk.studies.configs import STUDIES
from rramk.training.run_settings import RunSettings
from tests.test_ablation import STUDY
from tests.test_ablation_studies import recorded_settings  # noqa: F401  (the fixture: training recorded)
from tests.test_ablation import _outside_a_job_array  # noqa: F401  (autouse: no Slurm job array)
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)

PRESET = model_tables.__file__.replace("model_tables.py", "presets/reram_sb_gong2018.json")


def test_all_is_the_device_as_its_preset_has_it():
    assert RunSettings(dataset="mnist", preset=PRESET).device_config == SoftBounds()  # rtn stays off
    assert RunSettings(dataset="mnist", preset=PRESET, imperfections="d2d").device_config == SoftBounds().only("d2d")
    with pytest.raises(UsageError, match="--imperfections: the device of --preset .* has no rtn "
                                         "\\(its imperfections: d2d, pink, saturation\\)"):
        RunSettings(dataset="mnist", preset=PRESET, imperfections="d2d,rtn")


def test_published_study_on_a_preset_without_rtn(tmp_path, recorded_settings, capsys):
    trained = recorded_settings
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


def test_each_family_has_a_sweep_for_every_knob_and_isolates_its_own_spreads():
    from rramk.device.families import FAMILIES
    from rramk.studies.configs import FAMILY_KNOBS, sensitivity_study

    for family, knobs in FAMILY_KNOBS.items():
        assert set(knobs) == set(FAMILIES[family].SCALES), family
    study = sensitivity_study("d2d_rate", (0.5,), family="SoftBounds")
    assert study.configs["mean + d2d_rate x0.5"].scales == (("d2d_g0", 0.0), ("d2d_g_max", 0.0), ("d2d_rate", 0.5))
    with pytest.raises(ValueError, match="knob: expected one of d2d, d2d_g0, d2d_g_max, d2d_rate, pink, rtn "
                                         "\\(the knobs of SoftBounds\\), got 'd2d_m1'"):
        sensitivity_study("d2d_m1", family="SoftBounds")


def test_a_family_knob_measures_its_own_spread():
    """sigma of ln rate across the devices a soft-bounds config draws scales by the d2d_rate factor exactly."""
    base = model_tables.knob_measures(SoftBounds())
    half = model_tables.knob_measures(SoftBounds().scaled(d2d_rate=0.5))
    assert half["sigma_ln_rate"] == pytest.approx(0.5 * base["sigma_ln_rate"], rel=1e-9)
    assert half["sigma_g0"] == base["sigma_g0"] > 0 and model_tables.knob_measures(SoftBounds(d2d=False))["sigma_g0"] == 0


def test_sensitivity_study_on_a_preset_of_another_family(tmp_path, recorded_settings, capsys):
    trained = recorded_settings
    args = [*STUDY, "--seeds", "0", "--preset", PRESET, "--study", "sensitivity", "--knob", "d2d_rate", "--values",
            "0.5", "2", "--out", str(tmp_path / "runs"), "--summaries", str(tmp_path / "summaries")]
    assert ablation.main(args) == 0
    scaled = [s.device_config for s in trained if s.scale]
    assert scaled == [SoftBounds().only("d2d", "saturation").scaled(d2d_g0=0, d2d_g_max=0, d2d_rate=f)
                      for f in (0.5, 2.0)]
    hfox_knob = [*STUDY, "--seeds", "0", "--preset", PRESET, "--study", "sensitivity", "--knob", "d2d_m1",
                 "--out", str(tmp_path / "r2"), "--summaries", str(tmp_path / "s2")]
    with pytest.raises(SystemExit) as stop:  # an HfOx knob on a soft-bounds preset: a usage error, the family's knobs
        ablation.main(hfox_knob)
    assert stop.value.code == 2
    assert "--knob: expected one of d2d, d2d_g0, d2d_g_max, d2d_rate, pink, rtn (the knobs of SoftBounds)" in \
        capsys.readouterr().err
