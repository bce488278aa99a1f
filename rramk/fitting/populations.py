"""The device-to-device distribution of one parameter, chosen among rramk's families.

Every device gives a profile log-likelihood of the parameter on a grid (``rramk.fitting.two_slope``,
``rramk.fitting.rtn``). Each family of ``rramk.device.distributions``, truncated to the range of
the nonparametric maximum-likelihood estimate (NPMLE) of the population, is fitted by maximum
marginal likelihood, and the least AIC (or BIC) wins. The empirical candidate is that NPMLE (the
empirical distribution for precise values, Kaplan-Meier for censored ones), smoothed by a Gaussian
kernel (Silverman's bandwidth), and scored by its 5-fold cross-validated log-likelihood, which like
leave-one-out is asymptotically AIC (Stone 1977).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..device.distributions import Empirical, TruncatedExponential, TruncatedLognormal, TruncatedNormal, Uniform

FAMILIES = ("TruncatedExponential", "TruncatedLognormal", "TruncatedNormal", "Uniform", "Empirical")


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


def cell_edges(grid):
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
    edges = cell_edges(grid)
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


def _population_range(grid, p, n: int, values) -> tuple[float, float]:
    """The range every family is truncated to: the devices' values without the outermost 0.5% on each side,
    widened to where the population estimate ``p`` puts mass beyond them (censored devices)."""
    cdf = np.cumsum(p)
    tail = 0.5 / max(n, 1)
    support = (float(grid[min(np.searchsorted(cdf, tail), len(grid) - 1)]),
               float(grid[min(np.searchsorted(cdf, 1 - tail), len(grid) - 1)]))
    finite = values[np.isfinite(values)]
    if len(finite) >= 2:
        low = min(float(np.quantile(finite, 0.005)), support[0])
        high = max(float(np.quantile(finite, 0.995)), support[1])
        low, high = max(low, float(grid[0])), min(high, float(grid[-1]))
    else:
        low, high = support
    return low, high


def _resolution(grid, ll, informative, n: int) -> float:
    """The resolution of the data: the median half-width of the informative devices' profiles at -1/2."""
    spacing = float(grid[1] - grid[0])
    return float(np.median([(row > -0.5).sum() * spacing / 2 for row in ll[informative]])) if n else 0.0


def _empirical_candidate(grid, lik, p, informative, n: int, low, high, resolution: float,
                         folds: int) -> Candidate:
    """The NPMLE smoothed (``_smooth``) as an ``Empirical`` of n values, scored by its ``folds``-fold
    cross-validated log-likelihood (the folds: every folds-th informative device)."""
    smooth, _ = _smooth(grid, p, n, low, high, resolution)
    dist = Empirical(tuple(np.clip(_hazen_quantiles(grid, smooth, n), low, high)))
    idx = np.flatnonzero(informative)
    cv = 0.0
    for fold in range(folds):
        held = idx[fold::folds]
        train = np.setdiff1d(np.arange(len(lik)), held)
        pf = _npmle(lik[train], iterations=40, start=p)
        sm, _ = _smooth(grid, pf, len(np.intersect1d(train, idx)), low, high, resolution)
        cv += float(np.sum(np.log(np.maximum(lik[held] @ sm, 1e-300))))
    return Candidate("Empirical", dist, cv, 0, -2 * cv, -2 * cv)


def _family_candidate(family: str, lik_t, shift, edges, grid, p, low, high, n: int) -> Candidate | None:
    """``family`` truncated to [low, high], fitted by maximum marginal likelihood on the grid's cells
    (Nelder-Mead from each of ``_start``'s points; Uniform has no parameter); None where no fit is
    finite or valid."""
    if family == "Uniform":
        ll_u = float(_marginal(lik_t, shift, _cell_masses(family, None, edges, low, high)))
        return Candidate(family, _distribution(family, None, low, high), ll_u, 0, -2 * ll_u, -2 * ll_u)
    best = None
    with torch.no_grad():
        for start in _start(family, grid, p, low, high):
            objective = lambda th: -float(_marginal(lik_t, shift, _cell_masses(  # noqa: E731
                family, torch.tensor(th, dtype=torch.float64), edges, low, high)))
            theta, value = nelder_mead(objective, np.array(start, dtype=np.float64))
            if math.isfinite(value) and (best is None or -value > best[1]):
                best = (theta, -value)
    if best is None:
        return None
    dist = _distribution(family, best[0], low, high)
    if dist is None:
        return None
    k = len(best[0])
    return Candidate(family, dist, best[1], k, -2 * best[1] + 2 * k, -2 * best[1] + k * math.log(n))


def fit_distribution(name: str, grid, loglik, *, values=(), criterion: str = "aic", families=FAMILIES,
                     folds: int = 5) -> ParameterFit:
    """Choose the distribution of one parameter among ``families`` (module docstring).

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
    low, high = _population_range(grid, p, n, values)
    resolution = _resolution(grid, ll, informative, n)
    candidates = {}
    if n < 2 or high <= low:
        point = float(np.sum(p * grid))
        dist = Empirical((point,))
        candidates["Empirical"] = Candidate("Empirical", dist, math.nan, 0, math.nan, math.nan)
        return ParameterFit(name, dist, candidates, grid, ll, p, values, n, criterion)
    edges = torch.tensor(cell_edges(grid), dtype=torch.float64)
    lik_t = torch.tensor(lik[informative], dtype=torch.float64)
    shift = torch.zeros(n, dtype=torch.float64)
    for family in families:
        if family == "TruncatedLognormal" and low <= 0:
            continue  # a lognormal lives on x > 0
        if family == "Empirical":
            candidate = _empirical_candidate(grid, lik, p, informative, n, low, high, resolution, folds)
        else:
            candidate = _family_candidate(family, lik_t, shift, edges, grid, p, low, high, n)
        if candidate is not None:
            candidates[family] = candidate
    chosen = min(candidates.values(), key=lambda cand: getattr(cand, criterion))
    return ParameterFit(name, chosen.distribution, candidates, grid, ll, p, values, n, criterion)
