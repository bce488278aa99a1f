"""Fit a weak-RESET device (an ``HfOxWeakReset`` preset) to measured traces (MODEL.md section 1).

Each device's reads y_i = ln R at cumulative pulse counts t_i are modelled as

    y_i = b + m1 t_i + (m2 - m1)(t_i - t*)_+ + pink_mean(t_i) + e_i + s_i A z_i,   b = ln R0 + c1,
    pink_mean(t) = alpha/2 sum_{k < min(t, order)} b_k,  var(e_i) = alpha^2/12 sum_{k < min(t, order)} b_k^2,

with s_i the RTN trap state and z_i = v v' (density -ln z on (0, 1)). The fit alternates:

1. **Mean, per device**: weighted least squares of the continuous two-slope line, each read
   weighted by its probability of RTN state 0, profiled over the knee t* (every read, then a fine
   grid around the best). The noise variance of a device is its residual variance times the
   factor by which the 1/f correlation of its reads inflates the variance of slow components
   (1 + 2 sum_j rho(j * spacing)). The knee is *observed* (for the tables and histograms) when
   two slopes beat one by ``knee_threshold`` noise variances and it lies more than max(50 pulses,
   10% of the trace) before the last read; the device is otherwise *censored* there.
2. **1/f noise**: from the state-0 residuals (t >= order), the fractional order d and the share
   k of the variance that fitting the lines takes away (autocorrelation at lags below twice the
   order, where reads that close exist: (rho_d(j) - k) / (1 - k)), and alpha (variance of the
   residuals below the line, which RTN cannot reach, over the filter's times 1 - k).
3. **RTN**: a two-state hidden Markov chain over those residuals (reads grouped into blocks of
   3% of a dwell), emission N(0, sigma^2) in state 0 and its convolution with A z in state 1,
   each read's log-likelihood divided by the correlation factor: 1/f-correlated reads carry less
   evidence than independent ones (without the factor the 1/f wander reads as switches; with
   it, the chain finds dwells late and merges short gaps, so the switching probabilities come
   out low where the 1/f noise is strong: on simulated devices with alpha = 0.04 read every
   pulse, p01 -16% and p10 -21% at the published rates, p10 -35% at p10 = 3e-3; unbiased within
   statistics at the published alpha. A chain with autoregressive emissions would remove
   this). Each device's bound A is integrated over a grid under
   a population distribution estimated with p01 and p10 by EM, so devices that never switch or
   whose amplitude is too small to see weigh in correctly (for p01 and p10). RTN is *detected* in
   a device whose best A beats A = 0 by ``rtn_threshold``; the distribution of A is fitted to
   the detected devices (amplitudes of a few sigma go unseen: the fitted range starts there).
4. **Device-to-device distributions**: every device gives, for each parameter, a profile
   log-likelihood on a grid: for t* the least-squares likelihood of each knee with m1 and m2
   integrated over their fitted populations (a knee within the trace with m2 ~ m1 is the
   one-slope line, so only the populations' slopes tell it from a knee beyond the trace: flat
   beyond the trace's end, censoring without a separate rule); for m1, m2 and b the
   profile over the knee of the Gaussian of each knee's estimate (m2 is flat where no knee is
   possible); for A_rtn the chain's likelihood. Each family of ``rramk.device.distributions``,
   truncated to the range of the nonparametric maximum-likelihood estimate (NPMLE) of the
   population, is fitted by maximum marginal likelihood, and the least AIC (or BIC) wins. The
   empirical candidate is that NPMLE (the empirical distribution for precise values,
   Kaplan-Meier for censored ones), smoothed by a Gaussian kernel (Silverman's bandwidth), and
   scored by its 5-fold cross-validated log-likelihood, which like leave-one-out is
   asymptotically AIC (Stone 1977). t*'s grid ends at the longest trace: no trace shows a later
   knee, so the fitted knees all come before it.

**R0 and c1** enter ln R only as their sum b = ln R0 + c1, which one trace cannot split. The
preset fixes R0 at exp(median b) (an ``Empirical`` point mass, rounded to 0.1 ohm) and gives c1
= b - ln R0 the whole device-to-device spread, so the distribution of ln R at t = 0 is that of
the data for every family (the simulation depends on the sum only).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import HfOxWeakReset
from .distributions import Empirical, TruncatedExponential, TruncatedLognormal, TruncatedNormal, Uniform
from .traces import Traces

FAMILIES = ("TruncatedExponential", "TruncatedLognormal", "TruncatedNormal", "Uniform", "Empirical")
FITTED = ("m1", "t_star", "m2", "c1", "a_rtn")
"""The parameters whose device-to-device distribution is chosen among FAMILIES (R0 is fixed, see above)."""
GRID = 600
"""Points of the grid on which each device's profile likelihood of a parameter is evaluated."""


# ---------------------------------------------------------------------------------------------- pink noise

def pink_sums(b: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum_{k < min(t, order)} b_k, sum_{k < min(t, order)} b_k^2) at pulse counts t."""
    k = np.minimum(t, len(b)).astype(np.int64)
    return np.concatenate([[0.0], np.cumsum(b)])[k], np.concatenate([[0.0], np.cumsum(b * b)])[k]


def pink_coefficients(order: int, d: float) -> np.ndarray:
    b = [1.0]
    for k in range(1, order):
        b.append(b[-1] * (k - d) / k)
    return np.array(b)


def pink_autocorrelation(b: np.ndarray, lags) -> np.ndarray:
    """Correlation of the stationary 1/f term (t >= order) between reads ``lags`` pulses apart."""
    full = np.correlate(b, b, mode="full")[len(b) - 1:] / np.dot(b, b)
    lags = np.abs(np.asarray(lags))
    return np.where(lags < len(b), full[np.minimum(lags, len(b) - 1)], 0.0)


def correlation_factor(b: np.ndarray, spacing: float) -> float:
    """Long-run variance over variance of the 1/f term read every ``spacing`` pulses: 1 + 2 sum rho(j s)."""
    s = max(int(round(spacing)), 1)
    return float(1 + 2 * pink_autocorrelation(b, np.arange(s, len(b), s)).sum())


# ---------------------------------------------------------------------------------------------- one device

@dataclass
class TwoSlope:
    """A device's mean fit: point values (m2 and t* nan unless the knee is observed) and its profile over the knee.

    ``knees`` are the candidate knees of the profile (the last one inf: no knee within the trace),
    ``cost`` their (SSE - min SSE) / (2 var), ``coef`` their (b, m1, m2) and ``se`` the standard
    errors; ``t_profile`` is minus the cost at the knees of the common t* grid.
    """

    b: float
    m1: float
    m2: float
    t_star: float
    censor: float
    bend: float
    knees: np.ndarray = field(repr=False)
    cost: np.ndarray = field(repr=False)
    coef: np.ndarray = field(repr=False)
    se: np.ndarray = field(repr=False)
    t_profile: np.ndarray = field(repr=False)
    best: tuple = field(repr=False)  # (b, m1, m2, knee) of the least-squares optimum, for residuals
    grid_cost: np.ndarray = field(repr=False)  # at the t* grid's knees within the trace (nan elsewhere)
    grid_slopes: np.ndarray = field(repr=False)  # (grid, 4): m1, se, m2, se at those knees
    noknee_cost: float = 0.0
    noknee_m1: tuple = (0.0, 0.0)  # m1 and its standard error of the one-slope line


def _solve(t, y, w, knees):
    """Weighted least squares of y on [1, t, (t - knee)_+] for each knee: coefficients (K, 3), SSE (K,)
    and the normal matrices (K, 3, 3)."""
    wt, wtt, wy, wty = w * t, w * t * t, w * y, w * t * y

    def suffix(x):  # sums over the reads with t_i > knee
        return np.concatenate([np.cumsum(x[::-1])[::-1], [0.0]])

    sw, swt, swtt, swy, swty = (suffix(x) for x in (w, wt, wtt, wy, wty))
    s = np.searchsorted(t, knees, side="right")
    c = knees
    sh = swt[s] - c * sw[s]
    sth = swtt[s] - c * swt[s]
    shh = swtt[s] - 2 * c * swt[s] + c * c * sw[s]
    shy = swty[s] - c * swy[s]
    W, T, TT, Y, TY, YY = w.sum(), wt.sum(), wtt.sum(), wy.sum(), wty.sum(), (w * y * y).sum()
    M = np.empty((len(c), 3, 3))
    M[:, 0, 0], M[:, 0, 1], M[:, 0, 2] = W, T, sh
    M[:, 1, 0], M[:, 1, 1], M[:, 1, 2] = T, TT, sth
    M[:, 2, 0], M[:, 2, 1], M[:, 2, 2] = sh, sth, shh
    rhs = np.stack([np.full(len(c), Y), np.full(len(c), TY), shy], axis=1)
    ok = np.abs(np.linalg.det(M)) > 1e-14 * max(W, 1.0) ** 3
    M[~ok] = np.eye(3)
    beta = np.linalg.solve(M, rhs[..., None])[..., 0]
    sse = np.maximum(YY - (beta * rhs).sum(1), 0.0)
    sse[~ok] = np.inf
    return beta, sse, M


def fit_two_slope(t, y, w, *, noise_factor: float, knee_threshold: float, knee_grid: np.ndarray,
                  min_side: int = 3, profile_knees: int = 48, min_tail: float = 50.0,
                  tail_fraction: float = 0.1) -> TwoSlope:
    """The mean fit of one device (module docstring, step 1); t ascending, w the state-0 weights."""
    scale = max(float(t[-1]), 1.0)
    ts = t / scale
    A = np.stack([np.ones_like(ts), ts], 1)
    G1 = A.T @ (w[:, None] * A)
    beta1 = np.linalg.solve(G1, A.T @ (w * y))
    sse1 = float(np.sum(w * (y - A @ beta1) ** 2))
    n_eff = float(w.sum())
    censor = float(t[-1] - max(min_tail, tail_fraction * (t[-1] - t[0])))
    heavy = np.flatnonzero(w > 0.5)
    if len(heavy) > 2 * min_side + 4:
        candidates = ts[heavy[min_side:-min_side]]
        beta, sse, M = _solve(ts, y, w, candidates)
        j = int(np.argmin(sse))
        fine = np.linspace(candidates[max(j - 1, 0)], candidates[min(j + 1, len(candidates) - 1)], 41)
        beta_f, sse_f, M_f = _solve(ts, y, w, fine)
        k = int(np.argmin(sse_f))
        knees = np.concatenate([candidates, fine[k:k + 1]])
        beta, sse, M = np.concatenate([beta, beta_f[k:k + 1]]), np.concatenate([sse, sse_f[k:k + 1]]), \
            np.concatenate([M, M_f[k:k + 1]])
        grid_in = (knee_grid > t[heavy[min_side - 1]]) & (knee_grid < t[heavy[-min_side]])
        beta_grid, sse_grid, M_grid = _solve(ts, y, w, knee_grid[grid_in] / scale)
    else:
        knees, beta, sse, M = np.zeros(0), np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3, 3))
        grid_in, sse_grid = np.zeros(len(knee_grid), dtype=bool), np.zeros(0)
        beta_grid, M_grid = np.zeros((0, 3)), np.zeros((0, 3, 3))
    sse_min = min(float(sse.min()) if len(sse) else math.inf, sse1)
    var = max(sse_min / max(n_eff - 4, 1.0), 1e-300) * noise_factor
    # the profile's candidates: the best knees, then "no knee within the trace"
    order = np.argsort(sse)[:profile_knees]
    cov = np.linalg.inv(M[order]) * var
    coef = np.stack([beta[order, 0], beta[order, 1] / scale, (beta[order, 1] + beta[order, 2]) / scale], 1)
    se = np.stack([np.sqrt(np.maximum(cov[:, 0, 0], 0)), np.sqrt(np.maximum(cov[:, 1, 1], 0)) / scale,
                   np.sqrt(np.maximum(cov[:, 1, 1] + cov[:, 2, 2] + 2 * cov[:, 1, 2], 0)) / scale], 1)
    cov1 = np.linalg.inv(G1) * var
    coef = np.concatenate([coef, [[beta1[0], beta1[1] / scale, math.nan]]])
    se = np.concatenate([se, [[math.sqrt(cov1[0, 0]), math.sqrt(cov1[1, 1]) / scale, math.inf]]])
    cost = (np.concatenate([sse[order], [sse1]]) - sse_min) / (2 * var)
    profile_knees_at = np.concatenate([knees[order] * scale, [math.inf]])
    # at the knees of the common grid: the cost and the estimate of m2 with its standard error
    grid_cost = np.full(len(knee_grid), math.nan)
    grid_slopes = np.full((len(knee_grid), 4), math.nan)  # m1, its standard error, m2, its standard error
    if grid_in.any():
        cov_g = np.linalg.inv(M_grid) * var
        grid_cost[grid_in] = (sse_grid - sse_min) / (2 * var)
        grid_slopes[grid_in] = np.stack([
            beta_grid[:, 1] / scale, np.sqrt(np.maximum(cov_g[:, 1, 1], 0)) / scale,
            (beta_grid[:, 1] + beta_grid[:, 2]) / scale,
            np.sqrt(np.maximum(cov_g[:, 1, 1] + cov_g[:, 2, 2] + 2 * cov_g[:, 1, 2], 0)) / scale], 1)
    t_profile = np.full(len(knee_grid), -(sse1 - sse_min) / (2 * var))
    t_profile[grid_in] = -(np.minimum(sse_grid, sse1) - sse_min) / (2 * var)
    bend = (sse1 - sse_min) / (2 * var) * 2
    if len(sse):
        i = int(np.argmin(sse))
        best = (float(beta[i, 0]), float(beta[i, 1] / scale), float((beta[i, 1] + beta[i, 2]) / scale),
                float(knees[i] * scale))
    else:
        best = (float(beta1[0]), float(beta1[1] / scale), float(beta1[1] / scale), math.inf)
    if bend > knee_threshold and best[3] <= censor:
        point = dict(b=best[0], m1=best[1], m2=best[2], t_star=best[3])
    else:
        point = dict(b=float(beta1[0]), m1=float(beta1[1] / scale), m2=math.nan, t_star=math.nan)
    return TwoSlope(**point, censor=censor if math.isnan(point["t_star"]) else math.nan, bend=float(bend),
                    knees=profile_knees_at, cost=cost, coef=coef, se=se, t_profile=t_profile, best=best,
                    grid_cost=grid_cost, grid_slopes=grid_slopes, noknee_cost=float((sse1 - sse_min) / (2 * var)),
                    noknee_m1=(float(beta1[1] / scale), math.sqrt(cov1[1, 1]) / scale))


def _integral(grid, mass, mu, se):
    """sum_g mass_g exp(-(grid_g - mu)^2 / (2 (se^2 + spacing^2 / 4))) for arrays mu, se."""
    spacing = float(grid[1] - grid[0]) if len(grid) > 1 else 0.0
    keep = mass > 1e-12
    var = np.asarray(se, dtype=np.float64) ** 2 + spacing ** 2 / 4
    return np.exp(-0.5 * (grid[keep][None, :] - np.asarray(mu)[:, None]) ** 2 / var[:, None]) @ mass[keep]


def knee_profile(fit: TwoSlope, slopes) -> np.ndarray:
    """A device's log-likelihood of its knee on the t* grid, with m1 and m2 integrated over the
    population's distributions (``slopes`` = ((m1 grid, mass), (m2 grid, mass))), not maximised: a
    knee within the trace with m2 ~ m1 is the one-slope line, and only the populations' slopes tell
    it from a knee beyond the trace (each model pays for the slopes it fits)."""
    (g1, p1), (g2, p2) = slopes
    noknee = -fit.noknee_cost + math.log(max(_integral(g1, p1, [fit.noknee_m1[0]], [fit.noknee_m1[1]])[0], 1e-300))
    out = np.full(len(fit.grid_cost), noknee)
    inside = np.isfinite(fit.grid_cost)
    if inside.any():
        s = fit.grid_slopes[inside]
        out[inside] = (-fit.grid_cost[inside] + np.log(np.maximum(_integral(g1, p1, s[:, 0], s[:, 1]), 1e-300))
                       + np.log(np.maximum(_integral(g2, p2, s[:, 2], s[:, 3]), 1e-300)))
    return out - out.max()


def two_slope_mean(t, best) -> np.ndarray:
    """b + m1 t + (m2 - m1)(t - t*)_+ for best = (b, m1, m2, t*)."""
    b, m1, m2, knee = best
    t = np.asarray(t, dtype=np.float64)
    return b + m1 * t + ((m2 - m1) * np.maximum(t - knee, 0.0) if math.isfinite(knee) else 0.0)


def profile(fit: TwoSlope, column: int, grid: np.ndarray) -> np.ndarray:
    """A device's profile log-likelihood of b (column 0), m1 (1) or m2 (2) on ``grid``: the best, over
    its candidate knees, of minus the knee's cost minus the Gaussian of the knee's estimate."""
    spacing = (grid[-1] - grid[0]) / max(len(grid) - 1, 1)
    mu, se = fit.coef[:, column], fit.se[:, column]
    se2 = se ** 2 + spacing ** 2 / 4
    finite = np.isfinite(mu) & np.isfinite(se2)
    ll = np.full((len(mu), len(grid)), -np.inf)
    ll[finite] = -fit.cost[finite, None] - 0.5 * (grid[None, :] - mu[finite, None]) ** 2 / se2[finite, None]
    ll[~finite] = -fit.cost[~finite, None]  # no knee: this parameter is free
    return ll.max(0)


# ---------------------------------------------------------------------------------------------- RTN

def _rtn_table(sigma: float, a_max: float, rows: int):
    """log p(r | state 1, A) on a regular (A, r) grid: N(0, sigma^2) convolved with A z, z ~ -ln z on (0, 1);
    and E[A z | r, state 1, A], the expected RTN term of a read in state 1."""
    dr = sigma / 8
    r = np.arange(-10 * sigma, a_max + 10 * sigma + dr, dr)
    amps = np.linspace(0.0, a_max, rows)
    kx = np.arange(-8 * sigma, 8 * sigma + dr / 2, dr)
    kernel = np.exp(-0.5 * (kx / sigma) ** 2)
    kernel /= kernel.sum() * dr
    table = np.empty((rows, len(r)))
    expected = np.zeros((rows, len(r)))

    def fz(z):
        z = np.clip(z, 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(z > 0, z - z * np.log(np.where(z > 0, z, 1.0)), 0.0)

    for i, a in enumerate(amps):
        if a < dr:
            mass = np.zeros(len(r))
            mass[np.argmin(np.abs(r))] = 1.0
        else:
            mass = fz((r + dr / 2) / a) - fz((r - dr / 2) / a)
        density = np.convolve(mass, kernel, mode="same")
        table[i] = np.log(np.maximum(density, 1e-300))
        expected[i] = np.convolve(mass * np.maximum(r, 0.0), kernel, mode="same") / np.maximum(density, 1e-300)
        expected[i] = np.clip(expected[i], 0.0, a)
    return amps, r, table, expected


def _lookup(table_r, table, rows: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Table rows ``rows`` at residuals r (linear in r; far outside the grid: the Gaussian tail)."""
    dr = table_r[1] - table_r[0]
    x = (r - table_r[0]) / dr
    i = np.clip(np.floor(x).astype(np.int64), 0, len(table_r) - 2)
    f = np.clip(x - i, 0.0, 1.0)
    value = table[rows, i] * (1 - f) + table[rows, i + 1] * f
    beyond = np.maximum(np.maximum(table_r[0] - r, r - table_r[-1]), 0.0)
    return value - 0.5 * (beyond / (dr * 8)) ** 2 - beyond * np.abs(table_r[0]) / (dr * 8) ** 2


@dataclass
class RtnFit:
    p01: float
    p10: float
    amplitudes: np.ndarray  # (devices,) maximum-likelihood A (nan where not detected)
    detected: np.ndarray  # (devices,) bool
    state0: list  # per device, P(state 0) of every read (1 for t < order)
    transitions: float  # expected number of switches seen (both directions)
    population: tuple  # (grid, weights) of the amplitude distribution over all devices
    iterations: int
    grid: np.ndarray  # amplitudes of ``loglik``
    loglik: np.ndarray  # (devices, grid): each device's log-likelihood of its residuals given its bound A
    line_weights: list  # per device, the weight of every read in the next fit of the line
    offsets: list  # per device, what to subtract from every read for that fit (0 where RTN is not detected)


def fit_rtn(pulses, residuals, *, sigma: float, order: int, p01: float, p10: float, rtn_threshold: float,
            temper=None, grid: int = 25, fine: int = 10, iterations: int = 12, tolerance: float = 1e-3,
            chunk_lanes: int = 1 << 13) -> RtnFit:
    """The RTN fit (module docstring, step 3) on the residuals of every device's mean fit.

    ``temper[d]`` scales device d's read log-likelihoods (module docstring, step 3).
    """
    temper = np.ones(len(pulses)) if temper is None else np.asarray(temper, dtype=np.float64)
    devices = len(pulses)
    use = [np.asarray(t) >= order for t in pulses]
    t_h = [np.asarray(t)[u].astype(np.int64) for t, u in zip(pulses, use)]
    r_h = [np.asarray(r)[u] for r, u in zip(residuals, use)]
    a_max = max(max((float(r.max()) for r in r_h if len(r)), default=0.0) + 4 * sigma, 10 * sigma)
    amps, table_r, table, expected = _rtn_table(sigma, a_max, (grid - 1) * fine + 1)
    coarse = np.arange(grid) * fine
    log_p0 = -0.5 * np.log(2 * np.pi * sigma * sigma)
    pi = np.full(grid, 1.0 / grid)
    state0 = [np.ones(len(t)) for t in pulses]

    layouts = {}

    def blocks(p01, p10):
        span = int(np.clip(0.03 / (p01 + p10), 1, 64))
        if span in layouts:
            return layouts[span]
        out = layouts[span] = []
        for t in t_h:
            if len(t) == 0:
                out.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
                continue
            key = (t - t[0]) // span
            starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
            out.append((starts, t[starts]))
        return out

    cache = {}

    def emissions(block, ids, lanes):
        """Per device of ``ids``: log e0 (B,), log e1 (lanes, B) summed over each block's reads (cached)."""
        key = (id(block), tuple(ids), len(lanes))
        if key in cache:
            return cache[key]
        e0, e1 = [], []
        for d in ids:
            starts, _ = block[d]
            r = r_h[d]
            if len(r) == 0:
                e0.append(np.zeros(0))
                e1.append(np.zeros((len(lanes), 0)))
                continue
            lp0 = (log_p0 - 0.5 * (r / sigma) ** 2) * temper[d]
            lp1 = _lookup(table_r, table, lanes[:, None], r[None, :]) * temper[d]
            e0.append(np.add.reduceat(lp0, starts))
            e1.append(np.add.reduceat(lp1, starts, axis=1))
        cache[key] = (e0, e1)
        return e0, e1

    def forward_backward(ids, block, p01, p10, want_states, lanes=coarse, backward=True):
        lam = 1 - p01 - p10
        grid = len(lanes)
        D, B = len(ids), max((len(block[d][0]) for d in ids), default=0)
        gaps = np.zeros((B, D))
        le0 = np.zeros((B, D))
        le1 = np.zeros((B, D, grid))
        e0s, e1s = emissions(block, ids, lanes)
        for k, d in enumerate(ids):
            starts, tb = block[d]
            nb = len(starts)
            gaps[:nb, k] = np.diff(np.concatenate([[0], tb]))
            le0[:nb, k] = e0s[k]
            le1[:nb, k, :] = e1s[k].T
        eff = -np.expm1(gaps * math.log(lam)) / (1 - lam)  # (1 - lam^n) / (1 - lam): q01 = p01 eff
        q01, q10 = (p01 * eff)[..., None], (p10 * eff)[..., None]
        m = np.maximum(le0[..., None], le1)  # per lane, so that no lane underflows
        e0 = np.exp(le0[..., None] - m)
        e1 = np.exp(le1 - m)
        a0 = np.zeros((B + 1, D, grid))
        a1 = np.zeros((B + 1, D, grid))
        c = np.ones((B, D, grid))
        a0[0] = 1.0
        for j in range(B):
            p0 = a0[j] * (1 - q01[j]) + a1[j] * q10[j]
            p1 = a0[j] * q01[j] + a1[j] * (1 - q10[j])
            x0, x1 = p0 * e0[j], p1 * e1[j]
            c[j] = x0 + x1
            a0[j + 1], a1[j + 1] = x0 / c[j], x1 / c[j]
        loglik = (np.log(c) + m).sum(0)  # (D, G)
        if not backward:
            return loglik
        b0 = np.ones((D, grid))
        b1 = np.ones((D, grid))
        n01 = np.zeros((D, grid))
        n10 = np.zeros((D, grid))
        exp0 = np.zeros((D, grid))
        exp1 = np.zeros((D, grid))
        post0 = np.zeros((B, D, grid)) if want_states else None
        for j in range(B - 1, -1, -1):
            g0, g1 = e0[j] * b0 / c[j], e1[j] * b1 / c[j]
            n01 += a0[j] * q01[j] * g1
            n10 += a1[j] * q10[j] * g0
            exp0 += (a0[j] * (1 - q01[j]) * g0 + a0[j] * q01[j] * g1) * eff[j][:, None]
            exp1 += (a1[j] * (1 - q10[j]) * g1 + a1[j] * q10[j] * g0) * eff[j][:, None]
            if want_states:
                post0[j] = a0[j + 1] * b0
            b0, b1 = (1 - q01[j]) * g0 + q01[j] * g1, q10[j] * g0 + (1 - q10[j]) * g1
        return loglik, n01, n10, exp0, exp1, post0

    per_chunk = max(chunk_lanes // grid, 1)
    chunks = [list(range(i, min(i + per_chunk, devices))) for i in range(0, devices, per_chunk)]
    previous = None
    for iteration in range(1, iterations + 1):
        block = blocks(p01, p10)
        totals = np.zeros(4)
        weights_sum = np.zeros(grid)
        for ids in chunks:
            loglik, n01, n10, exp0, exp1, _ = forward_backward(ids, block, p01, p10, False)
            logw = loglik + np.log(np.maximum(pi, 1e-300))
            w = np.exp(logw - logw.max(1, keepdims=True))
            w /= w.sum(1, keepdims=True)
            totals += [(w * n01).sum(), (w * n10).sum(), (w * exp0).sum(), (w * exp1).sum()]
            weights_sum += w.sum(0)
        p01 = float(np.clip(totals[0] / max(totals[2], 1e-300), 1e-8, 0.3))
        p10 = float(np.clip(totals[1] / max(totals[3], 1e-300), 1e-8, 0.3))
        pi = weights_sum / devices
        if previous is not None and abs(p01 / previous[0] - 1) < tolerance and abs(p10 / previous[1] - 1) < tolerance:
            break
        previous = (p01, p10)
    # final pass: states, then each device's likelihood over a fine grid of bounds: detection and the bound
    block = blocks(p01, p10)
    fine_rows = np.arange(0, len(amps), max(fine // 4, 1))
    loglik_fine = np.zeros((devices, len(fine_rows)))
    transitions = 0.0
    for ids in chunks:
        loglik, n01, n10, _, _, post0 = forward_backward(ids, block, p01, p10, True)
        logw = loglik + np.log(np.maximum(pi, 1e-300))
        w = np.exp(logw - logw.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        transitions += float((w * (n01 + n10)).sum())
        for k, d in enumerate(ids):
            starts, _ = block[d]
            if len(starts) == 0:
                continue
            p_block = (post0[:len(starts), k, :] * w[k]).sum(-1)
            counts = np.diff(np.concatenate([starts, [len(r_h[d])]]))
            state0[d][use[d]] = np.repeat(np.clip(p_block, 0.0, 1.0), counts)
    for ids in [list(range(i, min(i + max(chunk_lanes // len(fine_rows), 1), devices)))
                for i in range(0, devices, max(chunk_lanes // len(fine_rows), 1))]:
        loglik_fine[ids] = forward_backward(ids, block, p01, p10, False, lanes=fine_rows, backward=False)
    best = np.argmax(loglik_fine, axis=1)
    detected = (best > 0) & (loglik_fine[np.arange(devices), best] - loglik_fine[:, 0] >= rtn_threshold)
    amplitudes = np.where(detected, amps[fine_rows][best], np.nan)
    # the line's Newton step where RTN is detected: weight -d2 log p / d line2, working response line + g / H
    # (state 0: weight 1, the read itself; state 1: the slope of log p(r | 1, A), steep only near r = 0)
    dr = table_r[1] - table_r[0]
    slope1, curve1 = np.gradient(table, dr, axis=1), np.gradient(np.gradient(table, dr, axis=1), dr, axis=1)
    line_weights = [w.copy() for w in state0]
    offsets = [np.zeros(len(t)) for t in pulses]
    for d in np.flatnonzero(detected):
        row = fine_rows[best[d]]
        r = r_h[d]
        x = np.clip((r - table_r[0]) / dr, 0, len(table_r) - 1)
        at = lambda table_row: np.interp(x, np.arange(len(table_r)), table_row)  # noqa: E731
        s0 = state0[d][use[d]]
        g = s0 * r / sigma ** 2 - (1 - s0) * at(slope1[row])
        h = s0 / sigma ** 2 + (1 - s0) * np.maximum(-at(curve1[row]), 1e-3 / sigma ** 2)
        line_weights[d][use[d]] = h * sigma ** 2
        offsets[d][use[d]] = r - g / h
    return RtnFit(p01=p01, p10=p10, amplitudes=amplitudes, detected=detected, state0=state0,
                  transitions=transitions, population=(amps[coarse], pi), iterations=iteration,
                  grid=amps[fine_rows], loglik=loglik_fine - loglik_fine.max(1, keepdims=True),
                  line_weights=line_weights, offsets=offsets)


# ---------------------------------------------------------------------------------------------- distributions

@dataclass
class Candidate:
    """One family fitted to a parameter: the distribution, its log-likelihood, free parameters, AIC, BIC."""

    family: str
    distribution: object
    loglik: float
    parameters: int
    aic: float
    bic: float


@dataclass
class ParameterFit:
    """The distribution chosen for one parameter, every candidate, and the data they were fitted to."""

    name: str
    chosen: object
    candidates: dict
    grid: np.ndarray  # where the profiles are evaluated
    loglik: np.ndarray  # (devices, grid): each device's profile log-likelihood
    npmle: np.ndarray  # (grid,): the population's nonparametric maximum-likelihood estimate
    values: np.ndarray  # point values of the devices that show the parameter clearly (for display)
    informative: int  # devices whose profile is not flat
    criterion: str

    @property
    def family(self) -> str:
        return type(self.chosen).__name__


def _edges(grid):
    mid = (grid[1:] + grid[:-1]) / 2
    return np.concatenate([[grid[0] - (grid[1] - grid[0]) / 2], mid, [grid[-1] + (grid[-1] - grid[-2]) / 2]])


def _cell_masses(family, theta, edges, low, high):
    """Probability of each grid cell under ``family(theta)`` truncated to [low, high] (torch, sums to 1)."""
    lo = edges[:-1].clamp(low, high)
    hi = edges[1:].clamp(low, high)
    if family == "Uniform":
        m = hi - lo
    elif family == "TruncatedExponential":
        rate = torch.exp(theta[0])
        m = torch.exp(-rate * (lo - low)) * -torch.expm1(-rate * (hi - lo))
    else:
        mu, sd = theta[0], torch.exp(theta[1])
        if family == "TruncatedLognormal":
            lo, hi = torch.log(lo.clamp(min=1e-300)), torch.log(hi.clamp(min=1e-300))
        zl, zh = (lo - mu) / sd, (hi - mu) / sd
        upper = (zl + zh) > 0
        m = torch.where(upper, torch.special.ndtr(-zl) - torch.special.ndtr(-zh),
                        torch.special.ndtr(zh) - torch.special.ndtr(zl))
    m = m.clamp(min=0.0)
    return m / m.sum()


def _marginal(lik, shift, masses):
    """sum_d log sum_g exp(loglik_dg) p_g, with lik = exp(loglik - shift) (torch)."""
    return (torch.log((lik @ masses).clamp(min=1e-300)) + shift).sum()


def _npmle(lik, iterations: int = 150, start=None):
    """The nonparametric maximum-likelihood population distribution on the grid (EM on its weights)."""
    p = np.full(lik.shape[1], 1.0 / lik.shape[1]) if start is None else start.copy()
    for _ in range(iterations):
        p = p * (lik.T @ (1.0 / np.maximum(lik @ p, 1e-300))) / lik.shape[0]
        p /= p.sum()
    return p


def _smooth(grid, p, n, low, high, floor: float = 0.0):
    """p convolved with a Gaussian kernel of Silverman's bandwidth (at least ``floor``), cut to [low, high];
    and that bandwidth."""
    cdf = np.cumsum(p)
    q = lambda level: float(np.interp(level, cdf, grid))  # noqa: E731
    mean = float(np.sum(p * grid))
    sd = math.sqrt(max(float(np.sum(p * (grid - mean) ** 2)), 0.0))
    iqr = (q(0.75) - q(0.25)) / 1.34
    h = max(0.9 * (min(sd, iqr) or sd) * max(n, 1) ** -0.2, floor)
    inside = (grid >= low) & (grid <= high)
    if h <= 0:
        out = np.where(inside, p, 0.0)
        return out / max(out.sum(), 1e-300), 0.0
    kernel = np.exp(-0.5 * ((grid[:, None] - grid[None, :]) / h) ** 2)
    out = np.where(inside, kernel @ p, 0.0)
    return out / max(out.sum(), 1e-300), h


def _hazen_quantiles(grid, p, n):
    """The n quantiles at levels (i + 1/2)/n of the distribution p on the grid (linear CDF between points)."""
    cdf = np.concatenate([[0.0], np.cumsum(p)])
    edges = _edges(grid)
    levels = (np.arange(n) + 0.5) / n
    keep = np.concatenate([[True], np.diff(cdf) > 0])
    return np.interp(levels, cdf[keep], edges[keep])


def nelder_mead(f, x0, step: float = 0.5, iterations: int = 400, tolerance: float = 1e-9):
    """Minimise f over a few parameters from x0 (the simplex method); returns (x, f(x))."""
    n = len(x0)
    simplex = [x0] + [x0 + step * np.eye(n)[i] for i in range(n)]
    values = [f(x) for x in simplex]
    for _ in range(iterations):
        order = np.argsort(values)
        simplex, values = [simplex[i] for i in order], [values[i] for i in order]
        if abs(values[-1] - values[0]) <= tolerance * (abs(values[0]) + 1e-12):
            break
        centre = np.mean(simplex[:-1], axis=0)
        reflected = centre + (centre - simplex[-1])
        fr = f(reflected)
        if fr < values[0]:
            expanded = centre + 2 * (centre - simplex[-1])
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = centre + 0.5 * (simplex[-1] - centre)
            fc = f(contracted)
            if fc < values[-1]:
                simplex[-1], values[-1] = contracted, fc
            else:
                simplex = [simplex[0] + 0.5 * (x - simplex[0]) for x in simplex]
                values = [values[0]] + [f(x) for x in simplex[1:]]
    i = int(np.argmin(values))
    return simplex[i], values[i]


def _start(family, grid, p, low, high):
    mean = float(np.sum(p * grid))
    sd = math.sqrt(max(float(np.sum(p * (grid - mean) ** 2)), 1e-300))
    width = high - low
    if family == "TruncatedExponential":
        return [[math.log(1 / max(mean - low, 1e-6 * width))], [math.log(1 / width)]]
    if family == "TruncatedNormal":
        return [[mean, math.log(max(sd, 1e-3 * width))]]
    pos = grid > 0
    lg = np.log(grid[pos])
    pl = p[pos] / max(p[pos].sum(), 1e-300)
    lm = float(np.sum(pl * lg))
    ls = math.sqrt(max(float(np.sum(pl * (lg - lm) ** 2)), 1e-12))
    return [[lm, math.log(ls)]]


def _distribution(family, theta, low, high):
    if family == "TruncatedExponential":
        dist = TruncatedExponential(loc=low, scale=float(1 / math.exp(theta[0])), low=low, high=high,
                                    mean_truncated=(low + high) / 2)
    elif family == "TruncatedNormal":
        dist = TruncatedNormal(loc=float(theta[0]), scale=float(math.exp(theta[1])), low=low, high=high,
                               mean_truncated=(low + high) / 2)
    elif family == "TruncatedLognormal":
        dist = TruncatedLognormal(s=float(math.exp(theta[1])), loc=0.0, scale=float(math.exp(theta[0])), low=low,
                                  high=high, mean_truncated=(low + high) / 2)
    else:
        return Uniform(low=low, high=high, mean_truncated=(low + high) / 2)
    try:
        dist.validate("fit")
    except ValueError:
        return None
    return dataclasses.replace(dist, mean_truncated=min(max(dist.truncated_mean(1 << 14), low), high))


def fit_distribution(name: str, grid, loglik, *, values=(), criterion: str = "aic", families=FAMILIES,
                     folds: int = 5) -> ParameterFit:
    """Choose the distribution of one parameter among ``families`` (module docstring, step 4).

    grid: (G,) ascending; loglik: (devices, G) each device's profile log-likelihood there.
    """
    grid = np.asarray(grid, dtype=np.float64)
    ll = np.asarray(loglik, dtype=np.float64)
    ll = ll - ll.max(1, keepdims=True)
    informative = ll.min(1) < -2.0
    n = int(informative.sum())
    values = np.sort(np.asarray(values, dtype=np.float64))
    lik = np.exp(ll)
    p = _npmle(lik)
    cdf = np.cumsum(p)
    tail = 0.5 / max(n, 1)
    # the range: the devices' values without the outermost 0.5% on each side, widened to where the
    # population estimate puts mass beyond them (censored devices)
    support = (float(grid[min(np.searchsorted(cdf, tail), len(grid) - 1)]),
               float(grid[min(np.searchsorted(cdf, 1 - tail), len(grid) - 1)]))
    finite = values[np.isfinite(values)]
    if len(finite) >= 2:
        low = min(float(np.quantile(finite, 0.005)), support[0])
        high = max(float(np.quantile(finite, 0.995)), support[1])
        low, high = max(low, float(grid[0])), min(high, float(grid[-1]))
    else:
        low, high = support
    # the resolution of the data: the median half-width of the informative devices' profiles at -1/2
    spacing = float(grid[1] - grid[0])
    resolution = float(np.median([(row > -0.5).sum() * spacing / 2 for row in ll[informative]])) if n else 0.0
    candidates = {}
    if n < 2 or high <= low:
        point = float(np.sum(p * grid))
        dist = Empirical((point,))
        candidates["Empirical"] = Candidate("Empirical", dist, math.nan, 0, math.nan, math.nan)
        return ParameterFit(name, dist, candidates, grid, ll, p, values, n, criterion)
    edges_np = _edges(grid)
    edges = torch.tensor(edges_np, dtype=torch.float64)
    lik_t = torch.tensor(lik[informative], dtype=torch.float64)
    shift = torch.zeros(n, dtype=torch.float64)
    for family in families:
        if family == "Empirical":
            smooth, _ = _smooth(grid, p, n, low, high, resolution)
            dist = Empirical(tuple(np.clip(_hazen_quantiles(grid, smooth, n), low, high)))
            idx = np.flatnonzero(informative)
            cv = 0.0
            for fold in range(folds):
                held = idx[fold::folds]
                train = np.setdiff1d(np.arange(len(ll)), held)
                pf = _npmle(lik[train], iterations=40, start=p)
                sm, _ = _smooth(grid, pf, len(np.intersect1d(train, idx)), low, high, resolution)
                cv += float(np.sum(np.log(np.maximum(lik[held] @ sm, 1e-300))))
            candidates[family] = Candidate(family, dist, cv, 0, -2 * cv, -2 * cv)
            continue
        if family == "TruncatedLognormal" and low <= 0:
            continue
        if family == "Uniform":
            ll_u = float(_marginal(lik_t, shift, _cell_masses(family, None, edges, low, high)))
            candidates[family] = Candidate(family, _distribution(family, None, low, high), ll_u, 0, -2 * ll_u,
                                           -2 * ll_u)
            continue
        best = None
        with torch.no_grad():
            for start in _start(family, grid, p, low, high):
                objective = lambda th: -float(_marginal(lik_t, shift, _cell_masses(  # noqa: E731
                    family, torch.tensor(th, dtype=torch.float64), edges, low, high)))
                theta, value = nelder_mead(objective, np.array(start, dtype=np.float64))
                if math.isfinite(value) and (best is None or -value > best[1]):
                    best = (theta, -value)
        if best is None:
            continue
        dist = _distribution(family, best[0], low, high)
        if dist is None:
            continue
        k = len(best[0])
        candidates[family] = Candidate(family, dist, best[1], k, -2 * best[1] + 2 * k, -2 * best[1] + k * math.log(n))
    chosen = min(candidates.values(), key=lambda cand: getattr(cand, criterion))
    return ParameterFit(name, chosen.distribution, candidates, grid, ll, p, values, n, criterion)


def _value_grid(values, se, floor=None, size: int = GRID) -> np.ndarray:
    """A grid for b, m1 or m2: the devices' point values from their 0.5% to their 99.5% quantile, widened
    by four typical standard errors (a few wild fits do not stretch it)."""
    values, se = np.asarray(values, dtype=np.float64), np.asarray(se, dtype=np.float64)
    ok = np.isfinite(values)
    values = values[ok]
    typical = float(np.median(se[ok & np.isfinite(se)])) if (ok & np.isfinite(se)).any() else 0.0
    lo = float(np.quantile(values, 0.005)) - 4 * typical
    hi = float(np.quantile(values, 0.995)) + 4 * typical
    if floor is not None:
        lo = max(lo, floor)
    if hi <= lo:
        hi = lo + max(abs(lo), 1.0) * 1e-6
    return np.linspace(lo, hi, size)


# ---------------------------------------------------------------------------------------------- the whole fit

@dataclass
class PresetFit:
    """What ``fit_preset`` found: the preset, each device's fit, each parameter's choice, the noise."""

    config: HfOxWeakReset
    devices: list  # TwoSlope per device
    parameters: dict  # name -> ParameterFit
    rtn: RtnFit
    r0: float
    pink_d_estimated: bool
    residuals: list  # per device: ln R minus the fitted mean and the 1/f mean
    traces: Traces
    notes: list = field(default_factory=list)

    def per_device(self) -> dict:
        """Each device's point values as arrays: b = ln R0 + c1, c1, m1, t_star and m2 (nan: knee not
        observed), censor (t* beyond it, nan: observed), a_rtn (nan: RTN not detected)."""
        get = lambda key: np.array([getattr(f, key) for f in self.devices])  # noqa: E731
        b = get("b")
        return {"b": b, "c1": b - math.log(self.r0), "m1": get("m1"), "t_star": get("t_star"),
                "censor": get("censor"), "m2": get("m2"), "a_rtn": self.rtn.amplitudes}

    def record(self) -> dict:
        """The fit's summary as plain values (the ``fit`` section of the preset file)."""
        out = {"devices": len(self.devices), "reads": self.traces.reads, "r0_ohm": self.r0,
               "r0_c1_split": "R0 is fixed at exp(median of ln R0 + c1); c1 carries the device-to-device spread "
                              "of ln R0 + c1 (one trace cannot split them)",
               "criterion": self.parameters["m1"].criterion, "parameters": {}, "noise": {
                   "pink_alpha": self.config.pink_alpha, "pink_d": self.config.pink_d,
                   "pink_d_estimated": self.pink_d_estimated, "rtn_p01": self.config.rtn_p01,
                   "rtn_p10": self.config.rtn_p10, "rtn_switches_seen": round(self.rtn.transitions, 1),
                   "rtn_devices_detected": int(self.rtn.detected.sum())},
               "notes": list(self.notes)}
        for name, pf in self.parameters.items():
            out["parameters"][name] = {
                "family": pf.family, "informative_devices": pf.informative,
                "candidates": {k: {"loglik": round(v.loglik, 3), "parameters": v.parameters, "aic": round(v.aic, 3),
                                   "bic": round(v.bic, 3)} for k, v in pf.candidates.items()}}
        return out

    def summary(self) -> str:
        """Plain-text tables: each parameter's chosen family, devices and quantiles; then the noise."""
        from tabulate import tabulate

        rows = []
        observed = int(np.isfinite(self.per_device()["t_star"]).sum())
        for name, pf in self.parameters.items():
            q = pf.chosen.quantile_table(1024)
            qs = [q[int(p * 1024)].item() for p in (0.1, 0.5, 0.9)]
            ranked = sorted(pf.candidates.values(), key=lambda cand: getattr(cand, pf.criterion))
            runner = (f"{ranked[1].family} +{getattr(ranked[1], pf.criterion) - getattr(ranked[0], pf.criterion):.1f}"
                      if len(ranked) > 1 else "")
            rows.append([name, pf.family, pf.informative, *(f"{v:.4g}" for v in qs), f"{pf.chosen.low:.4g}",
                         f"{pf.chosen.high:.4g}", runner])
        crit = self.parameters["m1"].criterion.upper()
        table = tabulate(rows, headers=["parameter", "family", "devices", "10%", "median", "90%", "low", "high",
                                        f"runner-up (+{crit})"], tablefmt="github")
        cfg = self.config
        noise = tabulate([["devices, reads", f"{len(self.devices)}, {self.traces.reads}"],
                          ["knees observed (others censored)", f"{observed}"],
                          ["R0 (ohm, fixed; c1 carries ln R0 + c1)", f"{self.r0:.1f}"],
                          ["pink_alpha", f"{cfg.pink_alpha:.4g}"],
                          ["pink_d" + (" (estimated)" if self.pink_d_estimated else " (kept)"), f"{cfg.pink_d:.3g}"],
                          ["rtn_p01 (per pulse)", f"{cfg.rtn_p01:.3g}"], ["rtn_p10 (per pulse)", f"{cfg.rtn_p10:.3g}"],
                          ["RTN switches seen", f"{self.rtn.transitions:.0f}"],
                          ["devices with RTN detected", f"{int(self.rtn.detected.sum())}"]],
                         headers=["", ""], tablefmt="github")
        return table + "\n\n" + noise + ("\n\n" + "\n".join(f"note: {n}" for n in self.notes) if self.notes else "")


def _estimate_pink_d(pulses, residuals, weights, order: int, min_pairs: int = 2000):
    """(d, k): the fractional order d and the detrending loss k from the residual autocorrelation.

    Fitting a line to each trace removes slow power: the residuals' autocovariance is close to
    the model's minus a constant, rho_residual(j) = (rho_d(j) - k) / (1 - k): the lags from the
    order to twice the order (where the model's correlation is 0) give k, the lags below give d.
    None without enough pairs at two lags below the order.
    """
    lags_max = 2 * order
    cov = np.zeros(lags_max)
    count = np.zeros(lags_max)
    for t, r, w in zip(pulses, residuals, weights):
        ok = (t >= order) & (w > 0.99)
        t, r = t[ok].astype(np.int64), r[ok]
        cov[0] += np.sum(r * r)
        count[0] += len(r)
        for o in range(1, lags_max):
            if len(t) <= o:
                break
            gap = t[o:] - t[:-o]
            near = gap < lags_max
            if not near.any():
                break
            np.add.at(cov, gap[near], r[o:][near] * r[:-o][near])
            np.add.at(count, gap[near], 1)
    lags = np.flatnonzero(count[1:] >= min_pairs) + 1
    if (lags < order).sum() < 2:
        return None
    rho = (cov[lags] / count[lags]) / (cov[0] / count[0])
    # k from the lags where the model's correlation is 0 (-k / (1 - k) there), then d with k fixed
    beyond = lags >= order
    mean_beyond = float(np.average(rho[beyond], weights=count[lags][beyond])) if beyond.any() else 0.0
    k = min(max(-mean_beyond / (1 - mean_beyond), 0.0), 0.5)
    near = ~beyond
    ds = np.linspace(0.0, 0.95, 191)
    model = np.stack([pink_autocorrelation(pink_coefficients(order, d), lags[near]) for d in ds])
    err = (count[lags][near] * (rho[near] - (model - k) / (1 - k)) ** 2).sum(-1)
    return float(ds[int(np.argmin(err))]), k


def fit_preset(traces: Traces, *, base: HfOxWeakReset | None = None, criterion: str = "aic", rounds: int = 3,
               knee_threshold: float = 30.0, rtn_threshold: float = 10.0, estimate_pink_d: bool = True,
               families=FAMILIES, progress=None) -> PresetFit:
    """Fit an ``HfOxWeakReset`` to measured traces (module docstring); returns a PresetFit whose
    ``config`` is the preset (every imperfection on; pink_order and max_pulses from ``base``).

    Args:
        traces: the reads (``rramk.device.traces.read_traces`` or ``simulate_traces``).
        base: the device whose filter order and pulse limit are kept (default ``HfOxWeakReset()``).
        criterion: "aic" or "bic": how the family of each parameter is chosen.
        rounds: alternations of the mean fit and the noise fit.
        knee_threshold: how far two slopes must beat one (in noise variances) for an observed knee.
        rtn_threshold: log-likelihood gain of the best RTN amplitude over none for a detected RTN.
        estimate_pink_d: estimate the 1/f order d where reads fewer than ``order`` pulses apart allow it.
        progress: called with a short text at each stage (e.g. ``print``), or None.
    """
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion: expected 'aic' or 'bic', got {criterion!r}")
    base = base or HfOxWeakReset()
    say = progress or (lambda text: None)
    order = base.pink_order
    pink_d, pink_d_estimated = base.pink_d, False
    pulses = [np.asarray(t, dtype=np.float64) for t in traces.pulses]
    logs = [traces.log_resistance(i) for i in range(len(traces))]
    spacing = [float(np.median(np.diff(t))) if len(t) > 1 else 1.0 for t in pulses]
    longest = float(max(t[-1] for t in pulses))
    knee_grid = np.linspace(0.0, longest, GRID)
    weights = [np.ones(len(t)) for t in pulses]  # of each read in the line's fit
    offsets = [np.zeros(len(t)) for t in pulses]  # subtracted from each read in the line's fit
    states = weights  # P(RTN state 0) of each read, for the 1/f noise
    alpha, p01, p10 = 0.0, base.rtn_p01, base.rtn_p10
    loss = 0.0  # the share of the 1/f variance that the lines' fits take away (``_estimate_pink_d``)
    rtn = None

    def mean_fits(alpha, b):
        """Each device's line; reads of a device with RTN count minus their expected RTN term (the EM step)."""
        fits, residuals = [], []
        for t, y, w, s, o in zip(pulses, logs, weights, spacing, offsets):
            s1, _ = pink_sums(b, t)
            z = y - 0.5 * alpha * s1
            f = fit_two_slope(t, z - o, w, noise_factor=correlation_factor(b, s), knee_threshold=knee_threshold,
                              knee_grid=knee_grid)
            fits.append(f)
            residuals.append(z - two_slope_mean(t, f.best))
        return fits, residuals

    def estimate_alpha(residuals, b):
        """From the residuals below the line only: RTN adds positive values, the 1/f term is symmetric."""
        num = den = reads = 0.0
        for t, r, w in zip(pulses, residuals, states):
            _, s2 = pink_sums(b, t)
            ok = (t >= 1) & (r < 0)
            num += np.sum(w[ok] * r[ok] ** 2)
            den += np.sum(w[ok] * s2[ok]) / 12
            reads += w.sum()
        dof = reads - 4 * len(pulses)
        return math.sqrt(num / den * reads / max(dof, 1.0) / (1 - loss)) if den > 0 else 0.0

    for round_ in range(rounds):
        b = pink_coefficients(order, pink_d)
        say(f"round {round_ + 1}/{rounds}: mean of {len(pulses)} devices")
        fits, residuals = mean_fits(alpha, b)
        if round_ == 0:  # robust start: leave out the reads far above the line (RTN state 1)
            for _ in range(2):
                pooled = np.concatenate(residuals)
                centre = np.median(pooled)
                scale = centre - np.quantile(pooled, 0.1587)
                weights = states = [(r < centre + 3 * scale).astype(np.float64) for r in residuals]
                fits, residuals = mean_fits(alpha, b)
        if estimate_pink_d:
            found = _estimate_pink_d(pulses, residuals, states, order)
            if found is not None:
                (pink_d, loss), pink_d_estimated = found, True
                b = pink_coefficients(order, pink_d)
        alpha = estimate_alpha(residuals, b)
        fits, residuals = mean_fits(alpha, b)
        sigma = alpha * math.sqrt(np.sum(b * b) / 12)
        if sigma <= 0:
            sigma = float(np.std(np.concatenate(residuals))) or 1e-6
        say(f"round {round_ + 1}/{rounds}: RTN (alpha {alpha:.4g}, d {pink_d:.3g})")
        rtn = fit_rtn(pulses, residuals, sigma=sigma, order=order, p01=p01, p10=p10, rtn_threshold=rtn_threshold,
                      temper=[1 / correlation_factor(b, s) for s in spacing])
        p01, p10 = rtn.p01, rtn.p10
        weights, offsets, states = rtn.line_weights, rtn.offsets, rtn.state0
    b = pink_coefficients(order, pink_d)
    fits, residuals = mean_fits(alpha, b)
    notes = []

    say("device-to-device distributions")
    point = {k: np.array([getattr(f, k) for f in fits]) for k in ("b", "m1", "m2", "t_star")}
    r0 = round(math.exp(float(np.median(point["b"]))), 1)
    parameters = {}
    observed = np.isfinite(point["t_star"])
    best_se = np.array([f.se[int(np.argmin(f.cost))] for f in fits])  # (devices, 3): b, m1, m2
    grids = {"m1": _value_grid(point["m1"], best_se[:, 1], floor=0.0),
             "m2": _value_grid(point["m2"], np.where(observed, best_se[:, 2], np.nan), floor=0.0),
             "c1": _value_grid(point["b"], best_se[:, 0]) - math.log(r0)}
    shown = {"m1": point["m1"], "m2": point["m2"][observed], "c1": point["b"] - math.log(r0),
             "t_star": point["t_star"][observed], "a_rtn": rtn.amplitudes[rtn.detected]}
    for name, column in (("m1", 1), ("m2", 2), ("c1", 0)):
        shifted = grids[name] + (math.log(r0) if name == "c1" else 0.0)
        loglik = np.stack([profile(f, column, shifted) for f in fits])
        parameters[name] = fit_distribution(name, grids[name], loglik, values=shown[name], criterion=criterion,
                                            families=families)
    slopes = []
    for name in ("m1", "m2"):
        grid = parameters[name].grid
        mass = np.histogram(parameters[name].chosen.quantile_table(1 << 14).numpy(), bins=_edges(grid))[0]
        slopes.append((grid, mass / max(mass.sum(), 1)))
    parameters["t_star"] = fit_distribution("t_star", knee_grid, np.stack([knee_profile(f, slopes) for f in fits]),
                                            values=shown["t_star"], criterion=criterion, families=families)
    if rtn.detected.sum() >= 2:
        parameters["a_rtn"] = fit_distribution("a_rtn", rtn.grid, rtn.loglik[rtn.detected], values=shown["a_rtn"],
                                               criterion=criterion, families=families)
    else:
        parameters["a_rtn"] = fit_distribution("a_rtn", rtn.grid, np.zeros((1, len(rtn.grid))) - (rtn.grid > 0)
                                               * 1e3, criterion=criterion, families=families)
    parameters = {name: parameters[name] for name in FITTED}
    if not observed.any():
        notes.append("no device shows its knee within its trace: t* lies at the end of the longest trace and m2 "
                     "is not constrained by the data")
    if not rtn.detected.any():
        notes.append("RTN detected in no device")
    config = HfOxWeakReset(
        m1=parameters["m1"].chosen, t_star=parameters["t_star"].chosen, c1=parameters["c1"].chosen,
        m2=parameters["m2"].chosen, r0=Empirical((r0,)), a_rtn=parameters["a_rtn"].chosen,
        pink_alpha=float(alpha), pink_order=order, pink_d=float(pink_d),
        rtn_p01=float(np.clip(rtn.p01, 1e-9, 0.5)), rtn_p10=float(np.clip(rtn.p10, 1e-9, 0.5)),
        max_pulses=base.max_pulses)
    return PresetFit(config=config, devices=fits, parameters=parameters, rtn=rtn, r0=r0,
                     pink_d_estimated=pink_d_estimated, residuals=residuals, traces=traces, notes=notes)
