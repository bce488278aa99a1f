"""rramk.fitting against closed forms where a mutation audit found rules that no other test reaches.

1. ``fit_two_slope`` censors a knee inside the last max(min_tail = 50 pulses, 10% of the trace):
   such a knee is found (``best``) but reported as censored at last read - max(50, 10% of the span).
2. ``fit_rtn`` reads every ~100 pulses: a two-state chain's n-pulse transition probabilities are
   Q01(n) = p01 (1 - lam^n) / (p01 + p10) and Q10(n) = p10 (1 - lam^n) / (p01 + p10), lam = 1 - p01 - p10,
   i.e. p01 and p10 times (1 - lam^n) / (1 - lam), which is ~13% below n at n = 100 (a fit that used n
   would find p01 and p10 ~13% low). Read one to four pulses apart, the two differ by ~0.1-0.5%.
"""

import math

import numpy as np
import pytest

from rramk.fitting.rtn import fit_rtn
from rramk.fitting.two_slope import fit_two_slope

# ---------------------------------------------------------------------------------------------- censoring

M1, M2, NOISE = 6e-4, 2e-5, 1e-4


def _two_slope_trace(t0, t1, step, knee, seed=0):
    t = np.arange(t0, t1 + step / 2, step, dtype=np.float64)
    y = 8.9 + M1 * t + (M2 - M1) * np.maximum(t - knee, 0.0)
    return t, y + NOISE * np.random.default_rng(seed).standard_normal(len(t))


def _slope_errors(t, knee):
    """Standard errors of m1 and m2 of the least-squares line with its knee fitted (Gauss-Newton:
    the knee's column is the mean's derivative in t*, proportional to 1[t > t*])."""
    X = np.stack([np.ones_like(t), t, np.maximum(t - knee, 0.0), (t > knee) * 1.0], 1)
    C = np.linalg.inv(X.T @ X) * NOISE ** 2
    return math.sqrt(C[1, 1]), math.sqrt(C[1, 1] + C[2, 2] + 2 * C[1, 2])


# (first read, last read, read spacing, knees that must be observed, knees that must be censored);
# the censoring point is t1 - max(50, 0.1 (t1 - t0)): 720 (10% of the span), 250 (50 pulses) and 920
@pytest.mark.parametrize("t0, t1, step, observed, censored", [
    (0, 800, 1, (400, 710), (730, 760)),
    (0, 800, 4, (400, 708), (732, 760)),
    (0, 300, 1, (150, 240), (260, 270)),
    (200, 1000, 2, (600, 910), (930, 960)),
])
def test_two_slope_censors_a_knee_in_the_last_tenth_or_fifty_pulses(t0, t1, step, observed, censored):
    """Sharp knees (slope 6e-4 to 2e-5, noise 1e-4) ten or more pulses either side of the censoring
    point: each is found by least squares, and reported (t*, m1, m2) before it, censored after it.
    Without the rule, a knee at 760 on t = 0..800 would be reported as t* = 760."""
    censor = t1 - max(50.0, 0.1 * (t1 - t0))
    grid = np.linspace(0, t1, 161)
    for knee in observed + censored:
        t, y = _two_slope_trace(t0, t1, step, knee)
        fit = fit_two_slope(t, y, np.ones_like(t), noise_factor=1.0, knee_threshold=30, knee_grid=grid)
        assert fit.bend > 1e3  # two slopes beat one by far more than knee_threshold
        # the least-squares knee and slopes are found either way
        se1, se2 = _slope_errors(t, knee)
        assert fit.best[3] == pytest.approx(knee, abs=1)
        assert abs(fit.best[1] - M1) <= 4 * se1 and abs(fit.best[2] - M2) <= 4 * se2
        if knee in observed:
            assert fit.t_star == fit.best[3] and (fit.m1, fit.m2) == fit.best[1:3]
            assert math.isnan(fit.censor)
        else:
            assert math.isnan(fit.t_star) and math.isnan(fit.m2)
            assert fit.censor == censor  # exactly: 720, 250, 920


# ---------------------------------------------------------------------------------------------- RTN


P01, P10, SIGMA = 8e-4, 2e-3, 0.01


def _closed_form(n, p01, p10):
    """Q01(n), Q10(n) of the two-state chain (module docstring)."""
    s = p01 + p10
    f = -np.expm1(n * math.log1p(-s)) / s
    return p01 * f, p10 * f


def _simulate(rng, devices, reads):
    """Per pulse chains (state 0 at pulse 0; geometric dwells, so no closed form is used) read every
    80-120 pulses: pulse counts, residuals (N(0, sigma^2) + state * A z, z = v v', A ~ U(100, 200) sigma)
    and the true states at the reads."""
    pulses, residuals, states = [], [], []
    for _ in range(devices):
        t = np.cumsum(rng.integers(80, 121, reads))
        dwell = np.empty(2 * (int(t[-1] * (P01 + P10)) + 40))
        dwell[0::2] = rng.geometric(P01, len(dwell) // 2)
        dwell[1::2] = rng.geometric(P10, len(dwell) // 2)
        switches = np.cumsum(dwell)
        assert switches[-1] > t[-1]
        s = np.searchsorted(switches, t, side="right") % 2  # the number of switches at or before t, mod 2
        z = rng.uniform(size=reads) * rng.uniform(size=reads)
        pulses.append(t)
        residuals.append(SIGMA * rng.standard_normal(reads) + s * rng.uniform(100, 200) * SIGMA * z)
        states.append(s)
    return pulses, residuals, states


def _information(pulses, states, p01, p10):
    """Fisher information on (p01, p10) of the read-to-read transitions were every read's state seen:
    a Bernoulli of probability Q01(n) (from state 0) or Q10(n) (from state 1) per gap of n pulses.
    Its inverse bounds the variance of any unbiased fit; the hidden chain's can only be larger.
    Also the counts of 0 -> 1 and 1 -> 0 seen, and their expected values and variances."""
    info = np.zeros((2, 2))
    seen, expected, variance = np.zeros(2), np.zeros(2), np.zeros(2)
    s_ = p01 + p10
    for t, s in zip(pulses, states):
        n = np.diff(np.concatenate([[0], t])).astype(np.float64)
        before = np.concatenate([[0], s[:-1]])
        lam_n = np.exp(n * math.log1p(-s_))
        f = (1 - lam_n) / s_
        df = (n * lam_n / (1 - s_) * s_ - (1 - lam_n)) / s_ ** 2  # d f / d (p01 + p10)
        for start, p in ((0, p01), (1, p10)):
            k = before == start
            q = p * f[k]
            grad = np.stack([p * df[k], p * df[k]])
            grad[start] += f[k]  # d q / d p of its own direction
            info += (grad[:, None, :] * grad[None, :, :] / (q * (1 - q))).sum(-1)
            seen[start] += np.sum(s[k] != start)
            expected[start] += q.sum()
            variance[start] += (q * (1 - q)).sum()
    return info, seen, expected, variance


@pytest.mark.slow
def test_rtn_rates_from_reads_a_hundred_pulses_apart():
    """800 devices x 250 reads 80-120 pulses apart (~10^4 switches each way between reads): fit_rtn's
    p01 and p10 are within 4 standard errors of the truth, the errors of a fit that saw every read's
    state (Cramer-Rao, ~1%); the same fit with n in place of (1 - lam^n) / (1 - lam) is ~12% low."""
    rng = np.random.default_rng(20211001)
    pulses, residuals, states = _simulate(rng, 800, 250)
    info, seen, expected, variance = _information(pulses, states, P01, P10)
    # the simulation's switches between reads follow the closed form (4 binomial standard errors)
    assert np.all(np.abs(seen - expected) <= 4 * np.sqrt(variance)), (seen, expected)
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    assert np.all(se / [P01, P10] < 0.015)  # tight enough that n for (1 - lam^n) / (1 - lam) fails
    # (1 - lam^n) / (1 - lam) at n = 100 is 13% below n: the two fits can be told apart
    q01_100, _ = _closed_form(100, P01, P10)
    assert q01_100 / (100 * P01) == pytest.approx(0.873, abs=0.002)

    fit = fit_rtn(pulses, residuals, sigma=SIGMA, order=0, p01=1.5 * P01, p10=0.7 * P10, rtn_threshold=10.0,
                  iterations=60)
    assert fit.iterations < 60  # converged from a start 50% and 30% off
    assert abs(fit.p01 - P01) <= 4 * se[0], (fit.p01, P01, se[0])
    assert abs(fit.p10 - P10) <= 4 * se[1], (fit.p10, P10, se[1])
    assert fit.detected.mean() > 0.95  # amplitudes of 100-200 sigma: RTN is seen in every device that switched


def test_rtn_transition_over_n_pulses_is_the_markov_chain_closed_form():
    """The n-pulse transition of the trap against the n-th power of its one-pulse matrix."""
    from rramk.fitting.rtn import transition_factor

    p01, p10 = 8e-4, 2e-3
    step = np.array([[1 - p01, p01], [p10, 1 - p10]])
    gaps = np.array([1, 2, 7, 100, 1000, 20000])
    q01, q10 = p01 * transition_factor(gaps, p01, p10), p10 * transition_factor(gaps, p01, p10)
    for n, a, b in zip(gaps, q01, q10):
        power = np.linalg.matrix_power(step, int(n))
        assert a == pytest.approx(power[0, 1], rel=1e-12) and b == pytest.approx(power[1, 0], rel=1e-12)
    assert (q01[0], q10[0]) == pytest.approx((p01, p10), rel=1e-12)
    assert q01[-1] == pytest.approx(p01 / (p01 + p10), rel=1e-12)  # the stationary occupancy of state 1
