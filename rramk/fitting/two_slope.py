"""One device's mean: the continuous two-slope line of ln R against pulses, its knee, and censoring.

A device's reads y_i = ln R at pulse counts t_i follow

    y_i = b + m1 t_i + (m2 - m1)(t_i - t*)_+ + noise,   b = ln R0 + c1.

``fit_two_slope``: least squares, reads weighted by their chance of RTN state 0, profiled over t*
(every read, then finer); noise variance: the residuals' times the 1/f inflation of slow components
(``pink_noise.correlation_factor``). A knee is *observed* if two slopes beat one by ``knee_threshold``
noise variances and it lies more than max(50 pulses, 10% of the trace) before the last read, else
*censored* there. For the population fit: ``profile`` (m1, m2, b: profiled over the knee, each knee's
Gaussian estimate; m2 flat where no knee fits) and ``knee_profile`` (t*: each knee's least-squares
likelihood, m1 and m2 integrated over their populations; a knee in the trace with m2 ~ m1 is the
one-slope line, so only the populations' slopes tell it from a later knee: flat beyond the trace).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


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


def _knee_solutions(t, ts, y, w, knee_grid, scale: float, min_side: int):
    """The least squares (``_solve``) at the candidate knees: every heavy read (weight > 1/2) but the
    ``min_side`` at each end, then the best of a fine grid around the best of them; and at the knees of
    the common t* grid between those reads. Returns (knees, beta, sse, M) and (grid_in, beta, sse, M) of
    the grid's knees, empty where too few heavy reads allow a knee."""
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
    return (knees, beta, sse, M), (grid_in, beta_grid, sse_grid, M_grid)


def _profile_candidates(knees, beta, sse, M, beta1, cov1, sse1: float, sse_min: float, var: float, scale: float,
                        profile_knees: int):
    """The knee profile's candidates, the ``profile_knees`` best knees then "no knee within the trace"
    (inf): their knees, costs (SSE - min SSE) / (2 var), (b, m1, m2) and standard errors."""
    order = np.argsort(sse)[:profile_knees]
    cov = np.linalg.inv(M[order]) * var
    coef = np.stack([beta[order, 0], beta[order, 1] / scale, (beta[order, 1] + beta[order, 2]) / scale], 1)
    se = np.stack([np.sqrt(np.maximum(cov[:, 0, 0], 0)), np.sqrt(np.maximum(cov[:, 1, 1], 0)) / scale,
                   np.sqrt(np.maximum(cov[:, 1, 1] + cov[:, 2, 2] + 2 * cov[:, 1, 2], 0)) / scale], 1)
    coef = np.concatenate([coef, [[beta1[0], beta1[1] / scale, math.nan]]])
    se = np.concatenate([se, [[math.sqrt(cov1[0, 0]), math.sqrt(cov1[1, 1]) / scale, math.inf]]])
    cost = (np.concatenate([sse[order], [sse1]]) - sse_min) / (2 * var)
    return np.concatenate([knees[order] * scale, [math.inf]]), cost, coef, se


def _grid_profile(knee_grid, grid_in, beta_grid, sse_grid, M_grid, sse1: float, sse_min: float, var: float,
                  scale: float):
    """At the knees of the common t* grid within the trace: the cost and (m1, se, m2, se) (nan elsewhere);
    and ``t_profile``, minus the cost of the better of the knee there and no knee."""
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
    return grid_cost, grid_slopes, t_profile


def censor_point(t, min_tail: float = 50.0, tail_fraction: float = 0.1) -> float:
    """The last knee a trace read at pulses t (ascending) can show: max(``min_tail``, ``tail_fraction`` of the
    trace) before its last read; a knee beyond it is censored there (``fit_two_slope``, and the Kaplan-Meier
    variance of ``rramk.fitting.recovery``)."""
    return float(t[-1] - max(min_tail, tail_fraction * (t[-1] - t[0])))


def fit_two_slope(t, y, w, *, noise_factor: float, knee_threshold: float, knee_grid: np.ndarray,
                  min_side: int = 3, profile_knees: int = 48, min_tail: float = 50.0,
                  tail_fraction: float = 0.1) -> TwoSlope:
    """The mean fit of one device (module docstring); t ascending, w the state-0 weights."""
    scale = max(float(t[-1]), 1.0)
    ts = t / scale
    # the one-slope line
    A = np.stack([np.ones_like(ts), ts], 1)
    G1 = A.T @ (w[:, None] * A)
    beta1 = np.linalg.solve(G1, A.T @ (w * y))
    sse1 = float(np.sum(w * (y - A @ beta1) ** 2))
    n_eff = float(w.sum())
    censor = censor_point(t, min_tail, tail_fraction)
    (knees, beta, sse, M), on_grid = _knee_solutions(t, ts, y, w, knee_grid, scale, min_side)
    sse_min = min(float(sse.min()) if len(sse) else math.inf, sse1)
    var = max(sse_min / max(n_eff - 4, 1.0), 1e-300) * noise_factor
    cov1 = np.linalg.inv(G1) * var
    profile_knees_at, cost, coef, se = _profile_candidates(knees, beta, sse, M, beta1, cov1, sse1, sse_min, var,
                                                           scale, profile_knees)
    grid_cost, grid_slopes, t_profile = _grid_profile(knee_grid, *on_grid, sse1, sse_min, var, scale)
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

