"""rramk.fitting.recovery's derived bounds against closed forms (the recovery of whole fits: test_preset_fit).

The bound on F_true(x_q) - q is |blur| + z sd (recovery's module docstring): with exact devices it is
z sqrt(q (1 - q) / n); a normal truth blurred by N(0, s^2) errors is N(0, 1 + s^2); Kaplan-Meier's V(q)
under exponential censoring of an exponential truth is q (2 - q) / 2; a fit equal to the truth passes
and one shifted by many bounds fails.
"""

import math
import types
from statistics import NormalDist

import numpy as np
import pytest
import torch

from rramk.device.config import HfOxWeakReset
from rramk.device.distributions import TruncatedExponential
from rramk.fitting.recovery import (LEVELS, NOT_DERIVED, across_replicates, blur, blurred, bonferroni_z,
                                    censored_variance, derived_bounds, device_errors, error_calibration, recovery,
                                    true_table, truth_knots)

PHI = NormalDist().cdf


def normal_knots(size: int = 1 << 16) -> np.ndarray:
    """N(0, 1) as recovery reads a truth: its mid-point quantile table, as ``truth_knots``."""
    return truth_knots(torch.special.ndtri((torch.arange(size, dtype=torch.float64) + 0.5) / size).numpy())


def test_bonferroni_z_is_the_family_wise_normal_quantile():
    assert bonferroni_z(1) == pytest.approx(2.5758, abs=1e-4)  # 99 %, one comparison
    assert bonferroni_z(25) == pytest.approx(NormalDist().inv_cdf(1 - 0.01 / 50)) == pytest.approx(3.5401, abs=1e-4)


def test_exact_devices_give_z_sqrt_q_1_minus_q_over_n():
    """s_i = 0 (or no device error at all) and no censoring: no blur, sd = sqrt(q(1-q)/n), n_eff = n."""
    knots = truth_knots(true_table(HfOxWeakReset(), "m1"))
    z = bonferroni_z(25)
    for s in (np.zeros(300), np.zeros(0)):
        for row in derived_bounds(knots, s, 300, z=z):
            q = row["level"]
            assert abs(row["blur"]) < 1e-9
            assert row["sd"] == pytest.approx(math.sqrt(q * (1 - q) / 300), rel=1e-6)
            assert row["bound"] == pytest.approx(z * math.sqrt(q * (1 - q) / 300), rel=1e-6)
            assert row["n_eff"] == pytest.approx(300, rel=1e-5)


def test_blurred_cdf_is_exact_at_s_0_and_the_normal_convolution_otherwise():
    """s = 0: the piecewise-linear CDF through the knots itself; N(0, 1) blurred by s: Phi(x / sqrt(1 + s^2)),
    density phi(x / sqrt(1 + s^2)) / sqrt(1 + s^2); two devices' errors: the mean of the two."""
    knots = normal_knots()
    x = np.array([-2.5, -1.0, -0.3, 0.0, 0.7, 1.6, 2.9])
    cdf, _ = blurred(x, knots, np.zeros(1))
    assert cdf == pytest.approx(np.interp(x, knots, np.linspace(0, 1, len(knots))), abs=1e-12)
    for s in (0.2, 0.5, 1.0):
        cdf, pdf = blurred(x, knots, np.full(7, s))
        w = math.sqrt(1 + s * s)
        assert cdf == pytest.approx([PHI(v / w) for v in x], abs=2e-3)
        assert pdf == pytest.approx([NormalDist(0, w).pdf(v) for v in x], abs=3e-3)
    cdf, _ = blurred(x, knots, np.array([0.3, 1.2]))
    expected = [(PHI(v / math.sqrt(1.09)) + PHI(v / math.sqrt(2.44))) / 2 for v in x]
    assert cdf == pytest.approx(expected, abs=2e-3)


def test_blur_of_a_normal_truth_against_its_closed_form():
    """x* = G^-1(q) = sqrt(1 + s^2) z_q: blur Phi(sqrt(1 + s^2) z_q) - q, f/g = sqrt(1 + s^2) phi(x*) / phi(z_q)
    (the blur flattens the middle: f/g > 1 there, < 1 in the tails); the derived bound takes f/g >= 1."""
    knots = normal_knots()
    for s in (0.3, 0.8):
        w = math.sqrt(1 + s * s)
        bias, ratio = blur(knots, np.full(50, s), LEVELS)
        for q, b, r in zip(LEVELS, bias, ratio):
            zq = NormalDist().inv_cdf(q)
            assert b == pytest.approx(PHI(w * zq) - q, abs=2e-3)
            assert r == pytest.approx(w * NormalDist().pdf(w * zq) / NormalDist().pdf(zq), rel=1e-2)
        rows = derived_bounds(knots, np.full(50, s), 200, z=3.0)
        for row, b, r in zip(rows, bias, ratio):
            q = row["level"]
            assert row["sd"] == pytest.approx(max(r, 1.0) * math.sqrt(q * (1 - q) / 200), rel=1e-9)
            assert row["bound"] == pytest.approx(abs(b) + 3.0 * row["sd"], rel=1e-9)
    assert blur(knots, np.full(50, 0.8), [0.5])[0][0] == pytest.approx(0.0, abs=1e-3)  # symmetric: none at q = 1/2


def test_censored_variance_against_kaplan_meier_closed_forms():
    """No censoring (or censor points beyond the truth): q (1 - q); an exponential truth with exponential censor
    points (both rate 1): S^2 integral_0^x e^u / e^{-2u} ... = (1 - e^{-2x}) / 2 = q (2 - q) / 2; no device seen
    up to the level: inf."""
    levels = np.array(LEVELS)
    size = 1 << 15
    exponential = -np.log1p(-(np.arange(size) + 0.5) / size)
    knots = truth_knots(exponential, size=4097)
    assert censored_variance(knots, None, levels) == pytest.approx(levels * (1 - levels))
    assert censored_variance(knots, np.full(100, 1e9), levels) == pytest.approx(levels * (1 - levels), rel=1e-6)
    assert censored_variance(knots, exponential, levels) == pytest.approx(levels * (2 - levels) / 2, rel=1e-2)
    everyone_early = censored_variance(knots, np.full(100, 0.01), levels)
    assert np.isinf(everyone_early).all()


def test_device_errors_from_profiles():
    """A Gaussian profile gives its sd; one at the grid's floor a half-normal's, 1.3 sqrt(1 - 2/pi); two equal
    peaks 2 apart (a knee at either) sqrt(0.1^2 + 1), where the half-width would say 0.1; one flat to the grid's
    end is ``open_above`` (a censored knee)."""
    grid = np.linspace(0.0, 10.0, 2001)
    gaussian = -0.5 * ((grid - 4.0) / 0.7) ** 2
    at_floor = -0.5 * (grid / 1.3) ** 2
    two_peaks = np.logaddexp(-0.5 * ((grid - 3.0) / 0.1) ** 2, -0.5 * ((grid - 5.0) / 0.1) ** 2)
    censored = np.where(grid < 6.0, -3.0 * (6.0 - grid), 0.0)
    s, open_above = device_errors(grid, np.stack([gaussian, at_floor, two_peaks, censored]))
    assert s[:3] == pytest.approx([0.7, 1.3 * math.sqrt(1 - 2 / math.pi), math.sqrt(1.01)], rel=1e-3)
    assert open_above.tolist() == [False, False, False, True]


def _fake_fit(chosen, n: int = 300, s: float = 1e-5, centres=None, name: str = "m1"):
    """What recovery reads of a fit: one parameter's chosen distribution and Gaussian profiles of sd s."""
    truth = true_table(HfOxWeakReset(), "m1")
    centres = truth[np.linspace(0, len(truth) - 1, n).astype(int)] if centres is None else centres
    grid = np.linspace(0.0, 6e-3, 3001)
    loglik = -0.5 * ((grid[None, :] - centres[:, None]) / s) ** 2
    pf = types.SimpleNamespace(chosen=chosen, informative=n, grid=grid, loglik=loglik, family=type(chosen).__name__)
    return types.SimpleNamespace(parameters={name: pf}, r0=7000.0, traces=None,
                                 rtn=types.SimpleNamespace(detected=np.ones(n, dtype=bool)))


def test_a_fit_equal_to_the_truth_passes_and_a_shifted_one_fails():
    """recovery: the true m1 as the fit is within its derived bounds at every level (errors of the 1024-point
    tables only); the same shifted by one scale is beyond them at every level below 0.9; with tiny device errors
    the bound is z sqrt(q(1-q)/n), z = bonferroni_z(5 levels x 1 parameter)."""
    m1 = HfOxWeakReset().m1
    rows = recovery(HfOxWeakReset(), _fake_fit(m1))
    z = bonferroni_z(len(LEVELS))
    for row in rows:
        q = row["level"]
        assert row["derived"] and abs(row["error"]) <= 2e-3 and abs(row["error"]) <= row["bound"]
        assert row["bound"] == pytest.approx(z * math.sqrt(q * (1 - q) / 300), rel=0.02)
        assert row["reference"] == pytest.approx(4 * math.sqrt(q * (1 - q) / 300))
    shifted = TruncatedExponential(loc=m1.loc + m1.scale, scale=m1.scale, low=m1.low + m1.scale,
                                   high=m1.high + m1.scale, mean_truncated=m1.mean_truncated + m1.scale)
    rows = recovery(HfOxWeakReset(), _fake_fit(shifted))
    assert all(abs(r["error"]) > r["bound"] for r in rows if r["level"] < 0.9), [r["error"] for r in rows]


def test_a_parameter_without_a_derived_bound_keeps_the_reference():
    """NOT_DERIVED (A_rtn): no blur, bound = the reference 4 sqrt(q(1-q)/n), and the table says why."""
    truth = HfOxWeakReset().a_rtn
    fit = _fake_fit(truth, n=100, s=0.02, centres=np.linspace(0.05, 0.45, 100), name="a_rtn")
    fit.parameters["a_rtn"].grid = np.linspace(0.0, 0.6, 601)
    fit.parameters["a_rtn"].loglik = -0.5 * ((fit.parameters["a_rtn"].grid[None, :] - np.linspace(
        0.05, 0.45, 100)[:, None]) / 0.02) ** 2
    for row in recovery(HfOxWeakReset(), fit):
        assert not row["derived"] and math.isnan(row["blur"]) and row["why"] == NOT_DERIVED["a_rtn"]
        assert row["bound"] == row["reference"] == pytest.approx(4 * math.sqrt(row["level"] * (1 - row["level"]) / 100))


def test_across_replicates_compares_the_rms_with_the_derived_one():
    """derived_sd = sqrt(mean(sd^2)) (the blur is an allowance, not an expected error), explained = RMS / derived_sd,
    beyond = replicates past their bound; none of it where a bound is not derived."""
    errors, blurs, sds, bounds = (0.01, -0.04, 0.02), (0.0, 0.01, -0.01), (0.02, 0.02, 0.03), (0.05, 0.03, 0.08)
    rows = [[{"parameter": "m1", "level": 0.5, "error": e, "devices": 100, "derived": True, "blur": b, "sd": s,
              "bound": c}] for e, b, s, c in zip(errors, blurs, sds, bounds)]
    (row,) = across_replicates(rows)
    derived = math.sqrt(np.mean(np.square(sds)))
    assert row["derived_sd"] == pytest.approx(derived)
    assert row["explained"] == pytest.approx(math.sqrt(np.mean(np.square(errors))) / derived)
    assert row["beyond"] == 1
    not_derived = [[{**r[0], "derived": False}] for r in rows]
    assert "explained" not in across_replicates(not_derived)[0]


def test_error_calibration_reads_the_devices_actual_errors():
    """Gaussian profiles centred s_i (z_i = +-1) off the true values: robust sd 1.4826 x MAD = 1.4826; one device
    10 s_i off: gross 1/n."""
    n, s = 100, 2e-5
    true_m1 = np.linspace(2e-4, 2e-3, n)
    offsets = np.where(np.arange(n) % 2, 1.0, -1.0)
    offsets[0] = 10.0
    fit = _fake_fit(HfOxWeakReset().m1, n=n, s=s, centres=true_m1 + offsets * s)
    calibration = error_calibration(fit, {"m1": true_m1})["m1"]
    assert calibration["robust_sd"] == pytest.approx(1.4826, rel=2e-2)
    assert calibration["gross"] == pytest.approx(1 / n) and calibration["devices"] == n


def test_recovery_md_shows_each_bound_its_parts_and_where_none_is_derived(tmp_path):
    """write_recovery: the method's z, every level's error, bound, sampling part and blur; A_rtn 'not derived',
    judged by the old bound; the replicates' RMS against the derived sd."""
    from rramk.fitting.report import write_recovery

    truth = HfOxWeakReset()
    fit = _fake_fit(truth.m1)
    rtn = _fake_fit(truth.a_rtn, n=100, name="a_rtn").parameters["a_rtn"]
    rtn.grid = np.linspace(0.0, 0.6, 601)
    rtn.loglik = -0.5 * ((rtn.grid[None, :] - np.linspace(0.05, 0.45, 100)[:, None]) / 0.02) ** 2
    fit.parameters["a_rtn"] = rtn
    fit.devices, fit.traces = [None] * 300, types.SimpleNamespace(reads=9000)
    rows = recovery(truth, fit)
    case = types.SimpleNamespace(name="toy", description="a toy", lengths=(10, 20), config=truth)
    noise = [{"parameter": "pink_alpha", "true": 0.025, "fitted": 0.025, "error": 0.0, "bound": 0.05}]
    stats = [{"pulses": 0, "error": 0.01, "bound": 0.1, "level": 0.5}]
    text = write_recovery(tmp_path, [(case, fit, rows, noise, stats)], command="test",
                          replicates={"toy": [(rows, noise)]}).read_text()
    assert f"z = {bonferroni_z(10):.2f}" in text and "any of a case's 10 comparisons" in text
    for r in rows:
        cells = [c.strip() for c in next(line for line in text.splitlines() if line.startswith(
            f"| {r['parameter']} ") and f"| {r['level']} " in line and line.count("|") == 10).split("|")[1:-1]]
        if r["derived"]:
            assert cells[3] == f"{r['bound']:.3f}" and cells[7] == "yes"
            assert float(cells[4]) == pytest.approx(r["sampling"], abs=5e-4)
            assert float(cells[5]) == pytest.approx(r["blur"], abs=5e-5)
        else:
            assert cells[3] == "not derived" and cells[7] == "yes (old)"
    assert "RMS / sd" in text and "| a_rtn       | not derived" in text
