"""rramk.fit chooses the device family: the soft-bounds fit (rramk.fitting.soft_bounds_fit) recovers simulated
soft-bounds devices, the choice (rramk.fitting.family_choice) picks soft bounds for traces of another
generator's PCM-like devices and HfOx for HfOx traces, and says plainly when no family describes the traces."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rramk import DeviceArray, load_preset
from rramk import fit as fit_command
from rramk.device.distributions import TruncatedLognormal, TruncatedNormal
from rramk.device.preset import PresetWarning
from rramk.device.soft_bounds import SoftBounds
from rramk.device.traces import Traces
from rramk.fitting.family_choice import FamilyRow, choose_family
from rramk.fitting.soft_bounds_fit import RATE_GRID, conductance, device_profile, fit_soft_bounds
from tests.test_preset_fit import soft_bound_traces

TRUE = SoftBounds(rate=TruncatedLognormal(s=0.3, loc=0.0, scale=0.01, low=0.004, high=0.025, mean_truncated=0.01044),
                  g_max=TruncatedNormal(loc=25.0, scale=1.0, low=22.0, high=28.0, mean_truncated=25.0),
                  g0=TruncatedNormal(loc=1.0, scale=0.1, low=0.7, high=1.3, mean_truncated=1.0), pink=False)


def simulated_soft_bounds(devices: int, pulses: int, read_noise: float = 0.01, seed: int = 0):
    """rramk's own soft-bounds devices (TRUE, microsiemens), read after every pulse with relative read noise."""
    array = DeviceArray((devices,), TRUE, seed=seed, backend="reference", dtype=torch.float64)
    ys = [array.log_resistance()[0].clone()]
    for _ in range(pulses):
        array.apply_pulses(torch.ones(devices, dtype=torch.int32))
        ys.append(array.log_resistance()[0].clone())
    y = torch.stack(ys, 1).numpy()
    rng = np.random.default_rng(seed)
    resistance = 1e6 / (y * np.exp(rng.normal(0.0, read_noise, y.shape)))
    truth = {k: v[0].numpy() for k, v in array.d2d_parameters().items()}
    n = np.arange(pulses + 1)
    return Traces(tuple(f"d{i}" for i in range(devices)), tuple(n.copy() for _ in range(devices)),
                  tuple(resistance)), truth


def test_one_device_profile_finds_the_closed_form_line():
    """Noise-free reads of y = g0 + (g_max - g0)(1 - (1 - r)^t) at a grid rate: that rate, g0 and g_max exactly."""
    t = np.arange(0, 300, 3)
    rate = RATE_GRID[150]
    y = 2.0 + 20.0 * -np.expm1(t * np.log1p(-rate))
    for relative in (False, True):
        d = device_profile(t, y, relative)
        assert d.rate == rate and d.g0 == pytest.approx(2.0, abs=1e-9) and d.g_max == pytest.approx(22.0, rel=1e-9)
        assert d.sse.min() < 1e-18


def test_soft_bounds_recovery_within_the_sampling_error():
    """300 simulated devices: each parameter's population quantiles within 4 sqrt(q(1-q)/n) of the truth's
    (in quantile units of the true devices), the relative read noise within 5 %."""
    traces, truth = simulated_soft_bounds(300, 300)
    fit = fit_soft_bounds(traces)
    assert fit.config is not None and fit.relative and fit.read_noise == pytest.approx(0.01, rel=0.05)
    n = len(traces)
    for name in ("rate", "g_max", "g0"):
        true_values = np.sort(truth[name])
        table = getattr(fit.config, name).quantile_table(4096).numpy()
        for q in (0.1, 0.5, 0.9):
            fitted = np.quantile(table, q)
            share = np.searchsorted(true_values, fitted) / n  # where the fitted quantile sits among the truth
            assert abs(share - q) <= 4 * math.sqrt(q * (1 - q) / n), (name, q, share)


def test_pcm_like_traces_of_another_generator_choose_soft_bounds(tmp_path, capsys):
    """The issue's PCM-like traces: the fit chooses soft bounds by AIC among families that pass their checks,
    the HfOx fit fails every check, the preset is a SoftBounds in microsiemens with the generator's values."""
    csv = soft_bound_traces(200, 200).write_csv(tmp_path / "pcm.csv")
    assert fit_command.main([str(csv), "--out", str(tmp_path / "pcm.json")]) == 0
    out = capsys.readouterr()
    assert "chosen: soft bounds" in out.out and "warning" not in out.err
    preset = json.loads((tmp_path / "pcm.json").read_text())
    families = {f["family"].split(" (")[0]: f for f in preset["fit"]["families"]["families"]}
    assert families["soft bounds"]["describes"] and not families["HfOx weak RESET"]["describes"]
    assert families["soft bounds"]["aic"] < families["HfOx weak RESET"]["aic"]
    config = load_preset(tmp_path / "pcm.json")
    assert isinstance(config, SoftBounds)
    assert config.rate.quantile_table(1024).median().item() == pytest.approx(0.01, rel=0.06)  # lognormal median 1 %
    assert config.g_max.mean_truncated == pytest.approx(25.0, rel=0.01)  # 1 / 40 kOhm
    assert config.g0.mean_truncated == pytest.approx(1.0, rel=0.02)  # 1 / 1 MOhm
    assert preset["fit"]["read_noise"] == pytest.approx(0.01, rel=0.1) and preset["fit"]["read_noise_relative"]


def test_traces_no_family_describes_are_said_so(tmp_path, capsys):
    """Conductance that rises and falls again (a device that relaxes): no family passes its checks; the fit
    warns, records it, and loading the preset warns."""
    rng = np.random.default_rng(3)
    n = np.arange(201)
    peak = rng.uniform(60, 140, 200)
    g = 1e-6 + 24e-6 * np.exp(-((n[None, :] - peak[:, None]) / 40.0) ** 2)
    resistance = np.exp(rng.normal(0.0, 0.01, g.shape)) / g
    traces = Traces(tuple(f"x{i}" for i in range(200)), tuple(n.copy() for _ in range(200)), tuple(resistance))
    csv = traces.write_csv(tmp_path / "odd.csv")
    assert fit_command.main([str(csv), "--out", str(tmp_path / "odd.json")]) == 0
    err = capsys.readouterr().err
    assert "rramk.fit: warning: NO device family of rramk describes these traces" in err
    assert json.loads((tmp_path / "odd.json").read_text())["fit"]["families"]["describes"] is False
    with pytest.warns(PresetWarning):
        load_preset(tmp_path / "odd.json")


def test_the_choice_prefers_a_family_that_passes_its_checks():
    class Checks:
        def __init__(self, ok):
            self.describes, self.failed, self.rows = ok, [] if ok else [0], [0]

    good, better_but_fails = FamilyRow("a", -100.0, 10, 50, Checks(True)), FamilyRow("b", -50.0, 10, 50, Checks(False))
    assert choose_family([good, better_but_fails]).chosen is good
    neither = choose_family([FamilyRow("a", -100.0, 10, 50, Checks(False)), better_but_fails])
    assert neither.chosen is better_but_fails and not neither.describes and "NO device family" in neither.sentence()
    assert choose_family([good, FamilyRow("c", 0.0, 1, 50, None, "no preset")]).chosen is good
    # AIC against BIC: 10 more parameters for 4 more log-likelihood units over 50 reads
    a, b = FamilyRow("a", -100.0, 10, 50, Checks(True)), FamilyRow("b", -96.0, 20, 50, Checks(True))
    assert choose_family([a, b], "aic").chosen is a and choose_family([a, b], "bic").chosen is a
    c = FamilyRow("c", -80.0, 20, 50, Checks(True))
    assert choose_family([a, c], "aic").chosen is c and a.bic == pytest.approx(200 + 10 * math.log(50))
    assert conductance(np.array([1e6, 40e3])).tolist() == [1.0, 25.0]
