"""The weak-RESET device model against closed forms and an independent Monte Carlo (MODEL.md 1-2).

Statistical bounds are k standard errors of the sample sizes used; the draws are deterministic
(fixed seeds), so each test either always passes or always fails for a given implementation.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from rramk import DeviceArray, HfOxWeakReset
from rramk.device import streams
from rramk.device.philox import philox4x32, uniform_from_bits

D2D_NAMES = ["m1", "t_star", "c1", "m2", "r0", "a_rtn"]


def scipy_truncated(cfg: HfOxWeakReset, name: str):
    """(frozen untruncated scipy distribution, low, high) of a D2D parameter."""
    d = getattr(cfg, name)
    if name in ("m1", "m2"):
        base = stats.expon(loc=d.loc, scale=d.scale)
    elif name == "t_star":
        base = stats.lognorm(s=d.s, loc=d.loc, scale=d.scale)
    elif name in ("c1", "r0"):
        base = stats.norm(loc=d.loc, scale=d.scale)
    else:
        base = stats.uniform(loc=d.low, scale=d.high - d.low)
    return base, d.low, d.high


def truncated_cdf(base, low, high):
    lo, hi = base.cdf(low), base.cdf(high)
    return lambda x: np.clip((base.cdf(x) - lo) / (hi - lo), 0.0, 1.0)


def truncated_draws(base, low, high, size, rng):
    lo, hi = base.cdf(low), base.cdf(high)
    return base.ppf(rng.uniform(lo, hi, size=size))


# ----------------------------------------------------------------------------- D2D


@pytest.fixture(scope="module")
def d2d_sample():
    array = DeviceArray((10_000,), HfOxWeakReset(), seed=7, backend="reference")
    return {name: value.reshape(-1).double().numpy() for name, value in array.d2d_parameters().items()}


@pytest.mark.parametrize("name", D2D_NAMES)
def test_d2d_parameter_follows_its_truncated_distribution(d2d_sample, name):
    cfg = HfOxWeakReset()
    draws = d2d_sample[name]
    assert draws.size >= 20_000
    base, low, high = scipy_truncated(cfg, name)
    result = stats.kstest(draws, truncated_cdf(base, low, high))
    assert result.pvalue > 1e-3, f"{name}: KS statistic {result.statistic:.4f}, p = {result.pvalue:.2e}"
    assert draws.min() >= low * (1 - 1e-6) - 1e-12 and draws.max() <= high * (1 + 1e-6)
    # Within 1% of MODEL.md's mean, or within 4 standard errors where 1% is below the sampling
    # error of the sample (c1: its mean 0.005 is a tenth of its spread, 0.05 / sqrt(20000) = 3.5e-4).
    published = getattr(cfg, name).mean_truncated
    tolerance = max(0.01 * abs(published), 4 * draws.std() / math.sqrt(draws.size))
    assert abs(draws.mean() - published) <= tolerance, f"{name}: mean {draws.mean()} vs {published}"


def test_d2d_off_every_device_holds_the_published_means():
    cfg = HfOxWeakReset().without("d2d")
    params = DeviceArray((3, 7), cfg, seed=1, backend="reference").d2d_parameters()
    for name in D2D_NAMES:
        expected = torch.full((2, 3, 7), getattr(cfg, name).mean_truncated, dtype=torch.float32)
        assert torch.equal(params[name], expected), name


def test_d2d_parameters_differ_between_devices_and_seeds():
    a = DeviceArray((1000,), seed=1, backend="reference").d2d_parameters()["m1"]
    b = DeviceArray((1000,), seed=2, backend="reference").d2d_parameters()["m1"]
    assert not torch.equal(a[0], a[1])  # BL and BLb draw their own parameters
    assert (a != b).float().mean() > 0.99


# ----------------------------------------------------------------------------- mean behaviour


def _pulse_to(array: DeviceArray, targets: torch.Tensor, per_update: int = 5000):
    """Drive each BL device to its own pulse count, in updates of at most ``per_update`` pulses."""
    done = torch.zeros_like(targets)
    while bool((done < targets).any()):
        n = (targets - done).clamp(max=per_update)
        array.apply_pulses(n.to(torch.int32))
        done += n


@pytest.mark.parametrize("d2d", [False, True], ids=["d2d-off", "d2d-on"])
def test_two_slope_formula_without_noise(d2d):
    cfg = HfOxWeakReset().without("pink", "rtn")
    if not d2d:
        cfg = cfg.without("d2d")
    n_devices = 400
    array = DeviceArray((5, n_devices), cfg, seed=3, backend="reference")
    p = {k: v[0].double() for k, v in array.d2d_parameters().items()}  # BL devices
    t_star = p["t_star"]
    first_slow = torch.ceil(t_star)  # first integer t >= t_star
    targets = torch.stack([
        torch.zeros(n_devices), first_slow[1] - 1, first_slow[2], torch.full((n_devices,), 2000.0),
        torch.full((n_devices,), 10_000.0)]).to(torch.int64)
    _pulse_to(array, targets)
    assert torch.equal(array.pulse_counts()[0].long(), targets)
    t = targets.double()
    expected = torch.where(t < t_star, p["m1"] * t + p["c1"],
                           p["m2"] * t + t_star * (p["m1"] - p["m2"]) + p["c1"])
    got = array.log_resistance()[0].double() - p["ln_r0"]
    assert torch.allclose(got, expected, atol=2e-5, rtol=0), (got - expected).abs().max()
    # and the resistance is R0 exp(w)
    r_bl, _ = array.resistance()
    assert torch.allclose(r_bl, p["r0"] * torch.exp(expected), rtol=5e-5)


def test_saturation_off_uses_one_slope():
    cfg = HfOxWeakReset().without("pink", "rtn", "saturation")
    array = DeviceArray((50,), cfg, seed=4, backend="reference")
    array.apply_pulses(torch.full((50,), 3000, dtype=torch.int32))
    p = {k: v[0].double() for k, v in array.d2d_parameters().items()}
    expected = p["m1"] * 3000 + p["c1"]
    got = array.log_resistance()[0].double() - p["ln_r0"]
    assert torch.allclose(got, expected, atol=2e-5, rtol=0)


# ----------------------------------------------------------------------------- pink noise


def pink_by_definition(cfg: HfOxWeakReset, seed: int, index: int, side: int, t: int) -> float:
    """alpha * sum_k b_k u_{t-k} in float64 from the generator's own uniforms (streams docstring)."""
    b = cfg.pink_coefficients()
    total = 0.0
    for k in range(cfg.pink_order):
        j = t - k
        if j < 1:
            continue
        words = philox4x32(seed, torch.tensor([index]), 2 * streams.STREAM_PINK + side, (j - 1) // 4, 0)
        total += b[k] * float(uniform_from_bits(words[(j - 1) % 4]))
    return cfg.pink_alpha * total


def test_pink_term_is_the_filtered_uniforms_of_the_generator():
    cfg = HfOxWeakReset().without("rtn")
    seed = 11
    array = DeviceArray((3,), cfg, seed=seed, backend="reference")
    schedule = [0, 1, 14, 3, 0, 7, 2, 0, 0, 9, 1, 1, 1, 30, 0, 5]
    t = 0
    for n in schedule:
        before_pink = array.pink_terms()[0].clone()
        before_log_r = array.log_resistance().clone()
        # device 1 gets the pulses on BL; device 0 gets them on BLb; device 2 none
        array.apply_pulses(torch.tensor([-n, n, 0], dtype=torch.int32))
        t += n
        got = array.pink_terms()[0][1].item()
        assert got == pytest.approx(pink_by_definition(cfg, seed, 1, streams.SIDE_BL, t), abs=1e-7, rel=1e-6)
        got_blb = array.pink_terms()[1][0].item()
        assert got_blb == pytest.approx(pink_by_definition(cfg, seed, 0, streams.SIDE_BLB, t), abs=1e-7, rel=1e-6)
        if n == 0:  # a 0-pulse update changes nothing (RTN is off): bit for bit
            assert torch.equal(array.pink_terms()[0], before_pink)
            assert torch.equal(array.log_resistance(), before_log_r)
    # the never-pulsed devices keep w_pink = 0
    assert array.pink_terms()[0][2].item() == 0.0 and array.pink_terms()[1][2].item() == 0.0


def test_pink_mean_offset_after_15_pulses():
    """MODEL.md 1.3: the draws are not zero-mean; w_pink averages alpha * 0.5 * sum(b) ~ 0.054."""
    cfg = HfOxWeakReset().without("rtn")
    n = 20_000
    array = DeviceArray((n,), cfg, seed=12, backend="reference")
    array.apply_pulses(torch.full((n,), 20, dtype=torch.int32))
    w = array.pink_terms()[0].double()
    b = torch.tensor(cfg.pink_coefficients(), dtype=torch.float64)
    mean = cfg.pink_alpha * 0.5 * b.sum().item()
    sd = cfg.pink_alpha * math.sqrt((b**2).sum().item() / 12)
    assert abs(w.mean().item() - mean) < 5 * sd / math.sqrt(n)
    assert w.std().item() == pytest.approx(sd, rel=5 / math.sqrt(2 * n))


@pytest.mark.parametrize("lag", [0, 1, 3, 7, 14, 15])
def test_pink_lag_covariance(lag):
    """Cov(w_pink(t), w_pink(t+l)) across devices = alpha^2 Var(u) sum_k b_k b_{k+l}."""
    cfg = HfOxWeakReset().without("rtn")
    n = 20_000
    array = DeviceArray((n,), cfg, seed=13, backend="reference")
    array.apply_pulses(torch.full((n,), 40, dtype=torch.int32))
    x = array.pink_terms()[0].double().clone()
    if lag:
        array.apply_pulses(torch.full((n,), lag, dtype=torch.int32))
    y = array.pink_terms()[0].double()
    b = cfg.pink_coefficients()
    expected = cfg.pink_alpha**2 / 12 * sum(b[k] * b[k + lag] for k in range(len(b) - lag))
    var = cfg.pink_alpha**2 / 12 * sum(v * v for v in b)
    got = ((x - x.mean()) * (y - y.mean())).mean().item()
    standard_error = math.sqrt((var * var + expected**2) / n)
    assert abs(got - expected) < 5 * standard_error, (got, expected, standard_error)


# ----------------------------------------------------------------------------- RTN


def _array_in_rtn_state(state: int, n: int, seed: int) -> DeviceArray:
    cfg = HfOxWeakReset().without("pink")
    array = DeviceArray((n,), cfg, seed=seed, backend="reference")
    sd = array.state_dict()
    sd["rtn_state"] = torch.full_like(sd["rtn_state"], state)
    array.load_state_dict(sd)
    return array


@pytest.mark.parametrize("pulses", [1, 5, 14])
@pytest.mark.parametrize("start", [0, 1])
def test_rtn_flip_frequency(start, pulses):
    cfg = HfOxWeakReset()
    n = 200_000
    array = _array_in_rtn_state(start, n, seed=100 + 10 * start + pulses)
    array.apply_pulses(torch.full((n,), pulses, dtype=torch.int32))  # BL gets the pulses, BLb none
    s_bl, s_blb = array.rtn_states()
    total = cfg.rtn_p01 + cfg.rtn_p10
    towards = cfg.rtn_p01 if start == 0 else cfg.rtn_p10
    p = towards / total * (1 - (1 - total) ** pulses)
    flipped = (s_bl != start).sum().item()
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(flipped - n * p) < 4 * sigma, (flipped, n * p, sigma)
    assert bool((s_blb == start).all())  # no pulse, no transition


def test_rtn_amplitude_is_bounded_and_a_product_of_uniforms():
    n = 50_000
    array = _array_in_rtn_state(1, n, seed=5)
    array.apply_pulses(torch.zeros(n, dtype=torch.int32))
    params = array.d2d_parameters()
    s = torch.stack(array.rtn_states())
    # ln R = ln R0 + (c1 + 0 + w_rtn) at t = 0: w_rtn from the public reads
    w_rtn = (array.log_resistance().double() - params["ln_r0"].double() - params["c1"].double())
    a_rtn = params["a_rtn"].double()
    rounding = 4e-6  # float32 ulps of ln R ~ 9
    assert bool((w_rtn[s == 0].abs() < rounding).all())
    assert bool((w_rtn[s == 1] >= -rounding).all())
    assert bool((w_rtn[s == 1] <= a_rtn[s == 1] + rounding).all())
    wide = (s == 1) & (a_rtn > 0.05)  # where rounding is negligible against A_rtn
    ratio = (w_rtn[wide] / a_rtn[wide]).clamp(1e-12, 1).numpy()
    # P(v v' <= x) = x - x ln x
    result = stats.kstest(ratio, lambda x: x - x * np.log(np.clip(x, 1e-300, None)))
    assert result.pvalue > 1e-3, result


def test_zero_pulse_update_redraws_only_rtn():
    array = DeviceArray((4000,), seed=9, backend="reference")
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        array.apply_pulses(torch.randint(-14, 15, (4000,), generator=g, dtype=torch.int32))
    t_before, pink_before = array.pulse_counts(), array.pink_terms()
    s_before, log_r_before = torch.stack(array.rtn_states()), array.log_resistance()
    array.apply_pulses(torch.zeros(4000, dtype=torch.int32))
    assert all(torch.equal(a, b) for a, b in zip(t_before, array.pulse_counts()))
    assert all(torch.equal(a, b) for a, b in zip(pink_before, array.pink_terms()))
    s_after, log_r_after = torch.stack(array.rtn_states()), array.log_resistance()
    assert torch.equal(s_before, s_after)  # 0 pulses: P(flip) = 0
    quiet = s_after == 0
    assert torch.equal(log_r_after[quiet], log_r_before[quiet])
    assert bool((log_r_after[~quiet] != log_r_before[~quiet]).all())  # a fresh amplitude in state 1
    assert int((~quiet).sum()) > 50


# ----------------------------------------------------------------------------- independent Monte Carlo


def monte_carlo_log_r_over_r0(cfg: HfOxWeakReset, n: int, checkpoints, per_update: int, rng) -> dict:
    """ln(R/R0) of n BL devices at each checkpoint, straight from MODEL.md with numpy/scipy.

    Independent of rramk: scipy inverse CDFs for D2D, pulse-by-pulse RTN Markov chain, numpy
    uniforms for the pink window (the windows of the checkpoints do not overlap).
    """
    p = {name: truncated_draws(*scipy_truncated(cfg, name), n, rng) for name in D2D_NAMES}
    b = np.array(cfg.pink_coefficients())
    state = np.zeros(n, dtype=bool)
    out = {}
    t = 0
    while t < max(checkpoints):
        for _ in range(per_update):  # one Markov step per pulse
            u = rng.uniform(size=n)
            flip = np.where(state, u < cfg.rtn_p10, u < cfg.rtn_p01)
            state ^= flip
        t += per_update
        if t in checkpoints:
            w_mean = np.where(t < p["t_star"], p["m1"] * t + p["c1"],
                              p["m2"] * t + p["t_star"] * (p["m1"] - p["m2"]) + p["c1"])
            window = rng.uniform(size=(n, cfg.pink_order))  # column k = u_{t-k}
            valid = (t - np.arange(cfg.pink_order)) >= 1
            w_pink = cfg.pink_alpha * (window * (b * valid)).sum(axis=1)
            w_rtn = state * rng.uniform(size=n) * rng.uniform(size=n) * p["a_rtn"]
            out[t] = w_mean + w_pink + w_rtn
    return out


def test_log_resistance_statistics_match_an_independent_monte_carlo():
    cfg = HfOxWeakReset()
    checkpoints = (10, 100, 500, 1000)
    n_rramk, n_mc = 20_000, 100_000
    mc = monte_carlo_log_r_over_r0(cfg, n_mc, checkpoints, per_update=10, rng=np.random.default_rng(2021))
    array = DeviceArray((n_rramk,), cfg, seed=2021, backend="reference")
    ln_r0 = array.d2d_parameters()["ln_r0"][0].double()
    ours = {}
    for update in range(1, 101):
        array.apply_pulses(torch.full((n_rramk,), 10, dtype=torch.int32))
        if 10 * update in checkpoints:
            ours[10 * update] = (array.log_resistance()[0].double() - ln_r0).numpy()
    for t in checkpoints:
        x, y = ours[t], mc[t]
        se_mean = math.sqrt(x.var() / x.size + y.var() / y.size)
        assert abs(x.mean() - y.mean()) < 4 * se_mean, (t, x.mean(), y.mean(), se_mean)
        for q in (0.1, 0.5, 0.9):
            # the fraction of rramk devices below the Monte Carlo's q-quantile is q, within sampling error
            below = (x < np.quantile(y, q)).mean()
            bound = 4 * math.sqrt(q * (1 - q) * (1 / x.size + 1 / y.size))
            assert abs(below - q) < bound, (t, q, below, bound)
