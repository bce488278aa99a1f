"""Preset files: the published fit ships as one and loads as HfOxWeakReset(); save/load round trips."""

import dataclasses
import json

import pytest
import torch

import rramk
from rramk import HfOxWeakReset, load_preset
from rramk.device.distributions import Empirical, TruncatedLognormal, TruncatedNormal
from rramk.device.preset import PUBLISHED, UNITS, PresetError, save_preset


def test_published_preset_is_todays_default():
    cfg = load_preset(PUBLISHED)
    assert cfg == HfOxWeakReset()
    assert type(cfg) is HfOxWeakReset
    assert cfg.without("d2d", "rtn") == HfOxWeakReset().without("d2d", "rtn")
    assert cfg.only("pink").imperfections == ("pink",)
    assert rramk.load_preset is load_preset and rramk.device.load_preset is load_preset


def test_published_preset_is_packaged_and_readable():
    document = json.loads(PUBLISHED.read_text())
    assert document["provenance"]["doi"] == "10.1109/TED.2021.3108479"
    assert document["parameters"]["m1"] == {"unit": "1/pulse", "family": "TruncatedExponential",
                                            **dataclasses.asdict(HfOxWeakReset().m1)}
    assert set(UNITS) == set(document["parameters"])


def fitted_like() -> HfOxWeakReset:
    """A config of the kind rramk.fit writes: other families, an empirical one, a fixed R0."""
    return HfOxWeakReset(
        m1=TruncatedLognormal(s=0.4, loc=0.0, scale=2e-3, low=5e-4, high=6e-3, mean_truncated=2.1e-3),
        t_star=Empirical((50.0, 80.5, 120.0, 300.25)),
        c1=TruncatedNormal(loc=0.0, scale=0.07, low=-0.2, high=0.2, mean_truncated=0.0),
        r0=Empirical((7011.5,)),
        pink_alpha=0.031, rtn_p01=1e-3, rtn_p10=4e-3,
    ).without("rtn")


def test_save_load_round_trip_is_exact(tmp_path):
    cfg = fitted_like()
    path = tmp_path / "mine.json"
    cfg.save(path, provenance={"source": "traces.csv", "sha256": "0" * 64, "fit_date": "2025-01-01"})
    loaded = load_preset(path)
    assert loaded == cfg and hash(loaded) == hash(cfg)
    assert loaded.t_star.values == (50.0, 80.5, 120.0, 300.25)
    document = json.loads(path.read_text())
    assert document["provenance"]["rramk_version"] == rramk.__version__
    assert document["provenance"]["sha256"] == "0" * 64
    assert document["parameters"]["r0"] == {"unit": "ohm", "family": "Empirical", "values": [7011.5]}
    assert loaded.with_("rtn").imperfections == ("d2d", "pink", "rtn", "saturation")


def test_dict_round_trip_keeps_families():
    cfg = fitted_like()
    assert HfOxWeakReset.from_dict(cfg.to_dict()) == cfg
    old_style = HfOxWeakReset().to_dict()  # rramk 0.2.0 wrote no family: the default class is meant
    for name in ("m1", "t_star", "c1", "m2", "r0", "a_rtn"):
        old_style[name].pop("family")
    assert HfOxWeakReset.from_dict(old_style) == HfOxWeakReset()


def test_empirical_point_mass_samples_one_value():
    cfg = fitted_like()
    array = rramk.DeviceArray((64,), cfg, seed=3, backend="reference")
    r0 = array.d2d_parameters()["r0"]
    assert torch.all(r0 == torch.tensor(7011.5, dtype=r0.dtype))
    t_star = array.d2d_parameters()["t_star"]
    assert t_star.min() >= 50.0 and t_star.max() <= 300.25


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(format="other"), "not an rramk preset file"),
    (lambda d: d["parameters"].pop("m2"), "missing parameter.s. m2"),
    (lambda d: d["parameters"].update(colour={"value": 1}), "unknown parameter.s. colour"),
    (lambda d: d["parameters"]["m1"].update(family="Gamma"), "parameter m1: unknown distribution family 'Gamma'"),
    (lambda d: d["parameters"]["c1"].pop("scale"), r"parameter c1 \(TruncatedNormal\)"),
    (lambda d: d["parameters"]["pink_alpha"].update(value=-1.0), "pink_alpha: expected a finite value >= 0"),
], ids=["format", "missing", "unknown", "family", "field", "invalid"])
def test_bad_preset_names_file_and_field(tmp_path, edit, message):
    document = json.loads(PUBLISHED.read_text())
    edit(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(PresetError, match=message) as info:
        load_preset(path)
    assert str(info.value).startswith(str(path))


def test_not_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{nope")
    with pytest.raises(PresetError, match="not a JSON file"):
        load_preset(path)


def test_empirical_quantiles_interpolate_the_values():
    import numpy as np

    values = np.sort(np.random.default_rng(0).lognormal(size=37))
    dist = Empirical(tuple(values))
    levels = (np.arange(1024) + 0.5) / 1024
    expected = np.interp(levels, (np.arange(37) + 0.5) / 37, values)
    assert torch.allclose(dist.quantile_table(1024), torch.tensor(expected, dtype=torch.float64), rtol=1e-13, atol=0)
    assert dist.mean_truncated == pytest.approx(dist.truncated_mean(), rel=1e-9)
    x = torch.tensor(values[[3, 20]], dtype=torch.float64)
    assert torch.allclose(dist.cdf(x), torch.tensor([3.5 / 37, 20.5 / 37], dtype=torch.float64))
    grid = torch.linspace(dist.low, dist.high, 20001, dtype=torch.float64)
    assert torch.trapezoid(dist.pdf(grid), grid).item() == pytest.approx(1.0, abs=2e-3)
    with pytest.raises(ValueError, match="^t_star: empirical values must be in ascending order"):
        HfOxWeakReset(t_star=Empirical((3.0, 2.0)))
