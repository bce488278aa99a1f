"""The d2d_pair knob: the mismatch of a synapse's two devices (HfOxWeakReset.scaled(d2d_pair=f)).

BLb's quantile index of each D2D parameter is that of rho z_BL + sqrt(1 - rho^2) z_BLb in normal scores,
rho = 1 - f^2 (rramk.device.weak_reset.paired_words; the kernels' bits: tests/test_kernel_weak_reset.py
and test_kernel_weak_reset_adam.py run it as "all-pair0.4", tests/test_refresh.py reads its SET cycles).
Here: f = 1 is the fit bit for bit, f = 0 makes twins, the marginal of every parameter stays the
population's while the correlation of the normal scores is rho, only BLb moves, the refresh condition of
the native kernel reads BLb's paired t*, and the knob's measure and limits.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from rramk import HfOxWeakReset
from rramk.device import model_tables, weak_reset
from rramk.device.config import PAIR_MISMATCH_MAX
from rramk.kernels import native

N = 20000
NAMES = ("m1", "t_star", "c1", "m2", "ln_r0", "a_rtn")


def _sides(config, seed=3, cycle=None):
    index = torch.arange(N, dtype=torch.int64)
    words = weak_reset.d2d_words(seed, index)
    cycle_words = None if cycle is None else weak_reset.d2d_words(seed, index, cycle)
    constants = model_tables.model_constants(config)
    return [weak_reset.d2d_parameters(config, constants, words, side, cycle_words) for side in (0, 1)]


def test_the_fit_is_untouched_and_zero_makes_twins():
    fit_bl, fit_blb = _sides(HfOxWeakReset())
    one_bl, one_blb = _sides(HfOxWeakReset().scaled(d2d_pair=1.0))
    assert all(torch.equal(fit_bl[k], one_bl[k]) and torch.equal(fit_blb[k], one_blb[k]) for k in NAMES)
    assert model_tables.model_constants(HfOxWeakReset().scaled(d2d_pair=1.0)).pair_table.numel() == 0
    twin_bl, twin_blb = _sides(HfOxWeakReset().scaled(d2d_pair=0.0), cycle=torch.full((N,), 3))
    assert all(torch.equal(twin_bl[k], twin_blb[k]) for k in NAMES)  # also c1 and R0 of a SET cycle
    assert all(torch.equal(twin_bl[k], fit_bl[k]) for k in ("m1", "t_star", "m2", "a_rtn"))  # BL as drawn


@pytest.mark.parametrize("f", [0.5, 1.2])
def test_marginals_stay_and_normal_scores_correlate_by_rho(f):
    bl, blb = _sides(HfOxWeakReset().scaled(d2d_pair=f))
    _, fit_blb = _sides(HfOxWeakReset())
    rho = 1 - f * f
    for name in ("m1", "t_star", "m2", "a_rtn"):
        # the same population: a two-sample KS test of BLb's values against independent BLb draws
        assert stats.ks_2samp(blb[name].numpy(), fit_blb[name].numpy()).pvalue > 1e-3, name
        z_a, z_b = (stats.norm.ppf(stats.rankdata(x.numpy()) / (N + 1)) for x in (bl[name], blb[name]))
        r = np.corrcoef(z_a, z_b)[0, 1]
        se = (1 - rho * rho) / math.sqrt(N)  # Fisher: the sd of a correlation estimate
        assert abs(r - rho) < 5 * se + 0.01, (name, r, rho)  # 0.01: the ranks of tied table values


def test_the_native_refresh_condition_reads_blbs_paired_t_star():
    from rramk.device.refresh import refresh_due

    if not native.available():
        pytest.skip("no C compiler")
    config, numel = HfOxWeakReset().scaled(d2d_pair=0.3), 4000
    g = torch.Generator().manual_seed(5)
    t = torch.randint(0, 1500, (2, numel), generator=g, dtype=torch.int32)
    state = weak_reset.pack_device_state(t, torch.zeros(2, numel, dtype=torch.uint8))
    expected = refresh_due(state, config=config, seed=9, condition="past_t_star", margin=0.0)
    due = torch.empty(numel, dtype=torch.bool)
    native.refresh_due(state, due, seed=9, condition="past_t_star", margin=0.0,
                       **model_tables.kernel_arguments(config, "cpu"))
    assert torch.equal(due, expected) and 0 < int(due.sum()) < numel
    independent = refresh_due(state, config=HfOxWeakReset(), seed=9, condition="past_t_star", margin=0.0)
    assert not torch.equal(expected, independent)  # the pairing changed which synapses are due


def test_the_knob_measure_limits_and_dicts():
    sigma = model_tables.knob_measures(HfOxWeakReset())["sigma_ln_r_0"]
    for f in (0.0, 0.5, 1.0):
        measure = model_tables.knob_measures(HfOxWeakReset().scaled(d2d_pair=f))["sigma_pair_ln_r_0"]
        assert measure == pytest.approx(f * math.sqrt(2) * sigma, rel=0.03, abs=1e-12), f  # Gaussian-like ln R
    row = torch.tensor([0.0, 1.0] * 512, dtype=torch.float64)  # any row: independent devices give 2 var
    assert model_tables.pair_mismatch_variance(row, 1.0) == pytest.approx(2 * row.var(correction=0).item())
    assert "d2d_pair_scale" not in HfOxWeakReset().to_dict()  # dicts of before the knob stay as written
    paired = HfOxWeakReset().scaled(d2d_pair=0.5)
    assert paired.to_dict()["d2d_pair_scale"] == 0.5 and HfOxWeakReset.from_dict(paired.to_dict()) == paired
    HfOxWeakReset(d2d_pair_scale=PAIR_MISMATCH_MAX)  # perfectly anti-correlated: allowed
    with pytest.raises(ValueError, match=r"^d2d_pair_scale: expected a factor in \[0, sqrt\(2\)\]"):
        HfOxWeakReset().scaled(d2d_pair=1.5)
    assert model_tables.model_constants(HfOxWeakReset().without("d2d").scaled(d2d_pair=0.5)).pair_table.numel() == 0
