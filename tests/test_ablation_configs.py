"""rramk.studies.configs: the one registry of the studies' configurations, and one test over each study."""

import dataclasses
import json
from pathlib import Path

import pytest

from rramk import characterize
from rramk.studies import runner
import rramk.training.run_settings as run_settings
from rramk.studies.configs import (ABLATIONS, CHARACTERIZED, KNOBS, LEARNING_RATES, NOISE, STUDIES, label_of,
                                   lr_study, sensitivity_study, study_by_name)
from rramk.studies.summaries import load_summaries
from rramk.reporting.sweeps import sweeps_found
from rramk.device.config import IMPERFECTIONS, HfOxWeakReset, parse_scales
from rramk.device.traces import file_sha256

REPORTS = Path(__file__).resolve().parents[1] / "reports"
LEGACY = ["ideal", "none", "all", "only d2d", "only pink", "only rtn", "only saturation", "all but d2d",
          "all but pink", "all but rtn", "all but saturation"]  # as the first study's reports named them
FIT = HfOxWeakReset()


def _device_the_label_names(label: str) -> HfOxWeakReset | None:
    """Read independently of the registry: which imperfections a label of either framing switches on."""
    if label == "ideal":
        return None
    on = {"none": set(), "all": set(IMPERFECTIONS), "mean model": {"saturation"}, "full model": set(IMPERFECTIONS),
          "mean model, no saturation": set(), "full model, no saturation": set(NOISE)}.get(label)
    for prefix, rule in (("only ", lambda x: {x}), ("all but ", lambda x: set(IMPERFECTIONS) - {x}),
                         ("full but ", lambda x: set(IMPERFECTIONS) - {x})):
        if label.startswith(prefix):
            on = rule(label.removeprefix(prefix))
    if label.startswith("mean + "):
        x, _, flat = label.removeprefix("mean + ").partition(", ")
        on = {x} if flat == "no saturation" else {x, "saturation"}
    return HfOxWeakReset(**{name: name in on for name in IMPERFECTIONS})


def test_every_configuration_is_the_device_its_label_names():
    assert list(ABLATIONS) == LEGACY + ["mean + d2d", "mean + pink", "mean + rtn"]
    for label, config in ABLATIONS.items():
        assert config.label == label and config.scales == ()
        assert config.device() == _device_the_label_names(label), label
        assert label_of(config.slug) == label
    assert [c.slug for c in ABLATIONS.values()][-3:] == ["mean-plus-d2d", "mean-plus-pink", "mean-plus-rtn"]
    assert all(c.slug == label.replace(" ", "-") for label, c in ABLATIONS.items() if label in LEGACY)
    assert len({c.slug for c in ABLATIONS.values()}) == len(ABLATIONS)  # one directory per configuration
    assert label_of("not-a-config") == "not-a-config"
    assert runner.CONFIGS == {label: ABLATIONS[label].flag for label in LEGACY}  # what bench/ runs
    assert runner.CONFIGS["all but d2d"] == "pink,rtn,saturation" and runner.CONFIGS["only rtn"] == "rtn"


def test_the_published_study_is_the_framing_of_model_md():
    published = STUDIES["published"]
    assert published.labels == ["ideal", "mean model", "mean + d2d", "mean + pink", "mean + rtn", "full model",
                                "full but d2d", "full but pink", "full but rtn", "mean model, no saturation",
                                "mean + d2d, no saturation", "mean + pink, no saturation",
                                "mean + rtn, no saturation", "full model, no saturation"]
    assert published.ranked == ("d2d", "pink", "rtn")  # saturation is never ranked
    for label, config in published.configs.items():
        assert config.device() == _device_the_label_names(label), label
    # the runs the first study made are reused by mapping, not rerun: the same directories
    reused = {"mean model": "only-saturation", "full model": "all", "full but d2d": "all-but-d2d",
              "full but pink": "all-but-pink", "full but rtn": "all-but-rtn", "mean model, no saturation": "none",
              "mean + d2d, no saturation": "only-d2d", "mean + pink, no saturation": "only-pink",
              "mean + rtn, no saturation": "only-rtn", "full model, no saturation": "all-but-saturation",
              "ideal": "ideal"}
    assert {label: published.configs[label].slug for label in reused} == reused
    assert published.configs["mean + d2d"].flag == "d2d,saturation" and published.configs["mean model"].flag == \
        "saturation"
    assert set(STUDIES["legacy"].configs.values()) <= set(published.configs.values())  # the legacy runs, all shared
    assert STUDIES["legacy"].labels == LEGACY and STUDIES["legacy"].ranked == IMPERFECTIONS


@pytest.mark.parametrize("knob", list(KNOBS))
@pytest.mark.parametrize("base", ["mean", "full"])
def test_a_sensitivity_sweep_scales_one_knob_of_its_base(knob, base):
    published = STUDIES["published"].configs
    factors = (0, 0.25, 0.5, 1, 1.2, 1.4) if knob == "d2d_pair" else (0, 0.25, 0.5, 1, 1.5, 2)  # d2d_pair <= sqrt 2
    study = sensitivity_study(knob, factors, base)
    imperfection = KNOBS[knob].imperfection
    on = published[f"mean + {imperfection}" if imperfection in NOISE else "mean model"] if base == "mean" \
        else published["full model"]
    assert study.configs["mean model"] == published["mean model"]  # the reference of every loss
    assert sorted(study.values.values()) == list(factors)
    slugs = [c.slug for c in study.configs.values()]
    assert len(set(slugs)) == len(slugs)
    alone = KNOBS[knob].isolated and base == "mean"  # one quantity's spread, every other spread at 0
    others = {k: 0.0 for k in ("d2d_r", "d2d_m1", "d2d_t_star", "d2d_m2") if k != knob}
    for label, factor in study.values.items():
        config = study.configs[label]
        if factor == 1 and not alone:
            assert config == on, label  # the unscaled configuration: shared with the published study
        elif factor == 0 and imperfection in NOISE and (alone or not KNOBS[knob].isolated):
            assert config == published["mean model" if base == "mean" else f"full but {imperfection}"], label
        elif alone:
            assert dict(config.scales) == {**others, knob: factor}, label
            assert config.device() == on.device().scaled(**others, **{knob: factor}), label
            assert config.slug == f"mean-plus-{knob}-x{factor:g}" and config.slug not in {c.slug for c in
                                                                                          ABLATIONS.values()}
        else:
            assert config.scales == ((knob, factor),) and config.scale_flag == f"{knob}={factor:g}"
            assert config.device() == on.device().scaled(**{knob: factor}), label
            assert config.slug not in {c.slug for c in ABLATIONS.values()}


def test_sweep_labels_directories_and_refusals():
    study = sensitivity_study("d2d", (0, 0.5, 1, 1.5))
    assert {label: c.slug for label, c in study.configs.items()} == {
        "mean model": "only-saturation", "mean + d2d x0.5": "mean-plus-d2d-x0.5", "mean + d2d": "mean-plus-d2d",
        "mean + d2d x1.5": "mean-plus-d2d-x1.5"}
    assert sensitivity_study("t_star").base == "full"  # saturation changes no weight on the mean model alone
    assert sensitivity_study("pink", base="full").configs["full model, pink x2"].slug == "full-pink-x2"
    for kwargs, message in (({"knob": "alpha"}, "knob: expected one of d2d, d2d_r, d2d_m1, d2d_t_star, d2d_m2, d2d_pair, pink, rtn, t_star"),
                            ({"knob": "d2d", "values": (0, 1, 1)}, "values: expected distinct factors"),
                            ({"knob": "d2d", "values": (-1, 1)}, "values: expected distinct factors >= 0"),
                            ({"knob": "d2d", "base": "half"}, "base: expected mean or full")):
        with pytest.raises(ValueError, match=message):
            sensitivity_study(**kwargs)
    with pytest.raises(ValueError, match="--study sensitivity needs --knob"):
        study_by_name("sensitivity")
    assert all(len(k.values) >= 5 and k.values[0] == 0 and max(k.values) > 1 for k in KNOBS.values())


def test_the_lr_study_is_the_mean_and_full_model_over_8_to_100():
    study = lr_study()
    assert study.lrs == LEARNING_RATES == (8.0, 20.0, 50.0, 100.0)
    assert study.configs == {"mean model": ABLATIONS["only saturation"], "full model": ABLATIONS["all"]}
    assert study_by_name("lr", lrs=[10, 30]).lrs == (10.0, 30.0)


def test_committed_runs_trained_the_device_of_their_configuration():
    """rramk.train's reading of each flag, as recorded by the committed runs, is the registry's device."""
    summaries = sorted((REPORTS / "ablation" / "summaries").glob("*/*/*/seed*/summary.json"))
    assert len(summaries) >= 2 * 3 * len(LEGACY)  # the short and the full MNIST study, 3 seeds each
    sweeps = {}
    for (dataset, budget), directories in load_summaries(REPORTS / "ablation" / "summaries").items():
        for knob, base, _, factors in sweeps_found(directories):
            for config in sensitivity_study(knob, tuple(factors), base).configs.values():
                sweeps[(dataset, budget, config.slug)] = config
    for path in summaries:
        summary = json.loads(path.read_text())
        run_dir = path.parents[1].name.split("-lr")[0]
        config = ABLATIONS.get(label_of(run_dir)) or sweeps.get((path.parents[3].name, path.parents[2].name, run_dir))
        assert config is not None, f"{path}: no configuration of the registry or of a sweep"
        assert summary["imperfections"] == config.flag, path
        assert parse_scales(summary["settings"].get("scale", "")) == dict(config.scales), path
        trained = summary["device_config"] and HfOxWeakReset.from_dict(summary["device_config"])
        assert trained == config.device(), path


def test_the_characterization_simulates_the_full_model_and_each_imperfection_off():
    assert [c.caption for c in CHARACTERIZED] == ["full model", *(f"no {name}" for name in IMPERFECTIONS)]
    assert characterize.configurations() == {"full model": HfOxWeakReset(),
                                             **{f"no {n}": HfOxWeakReset().without(n) for n in IMPERFECTIONS}}
    for caption in characterize.configurations():  # the committed figures carry the captions
        assert (REPORTS / "characterization" / f"cycling_{characterize.slug(caption)}.png").is_file(), caption


def test_a_preset_is_the_base_of_every_configuration(tmp_path):
    """--preset: every configuration of every study is its imperfections and knobs on the preset's device,
    in the registry (AblationConfig.device), in rramk.train (what a study's run trains) and in the
    characterization."""
    base = dataclasses.replace(FIT, pink_alpha=0.05, pink_d=0.3, rtn_p10=2e-2)
    base.save(tmp_path / "mine.json")
    for label, config in ABLATIONS.items():
        named = _device_the_label_names(label)
        assert config.device(base) == (None if named is None else base.only(*named.imperfections)), label
    studies = [*STUDIES.values(), lr_study()] + [sensitivity_study(knob, None, b) for knob in KNOBS
                                                 for b in ("mean", "full")]
    for config in {c.label: c for study in studies for c in study.configs.values()}.values():
        settings = run_settings.RunSettings("mnist", imperfections=config.flag, scale=config.scale_flag,
                                     preset=str(tmp_path / "mine.json"))
        assert settings.device_config == config.device(base), config.label
    assert characterize.configurations(base) == {"full model": base,
                                                 **{f"no {n}": base.without(n) for n in IMPERFECTIONS}}


def test_characterize_a_preset(tmp_path, monkeypatch, capsys):
    """python -m rramk.characterize --preset: that device's figures and table, beside the published ones."""
    dataclasses.replace(FIT, pink_alpha=0.05).save(tmp_path / "mine.json")
    monkeypatch.chdir(tmp_path)
    small = ["--devices", "20", "--pulses", "30", "--backend", "reference"]
    assert characterize.main([*small, "--preset", "mine.json"]) == 0
    out = tmp_path / "reports" / "characterization-mine"
    assert {p.name for p in out.iterdir()} == {"log_r_quantiles.md", "cycling_comparison.png", "d2d_parameters.png",
                                               *(f"cycling_{characterize.slug(c)}.png" for c in
                                                 characterize.configurations())}
    assert f"Device: the preset mine.json (SHA-256 {file_sha256(tmp_path / 'mine.json')})" in \
        (out / "log_r_quantiles.md").read_text()
    capsys.readouterr()
    assert characterize.main([*small, "--preset", "absent.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rramk.characterize: --preset: absent.json: cannot read")


def test_sweeps_are_found_at_each_pulse_rate_and_a_per_parameter_knob_apart_from_d2d():
    directories = {name: [] for name in ("only-saturation", "only-saturation-lr8", "mean-plus-d2d-x0.5",
                                         "mean-plus-d2d_m1-x0.1-lr8", "mean-plus-d2d_m1-x2-lr8", "full-t_star-x2")}
    assert sweeps_found(directories) == [("d2d", "mean", None, [0.5]), ("d2d_m1", "mean", 8.0, [0.1, 2.0]),
                                         ("t_star", "full", None, [2.0])]
