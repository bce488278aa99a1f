"""The 1/f (pink) term of a trace, as the fit sees it (MODEL.md section 1.3).

A device's reads carry, beyond its line, the fractional-integration filter's term

    pink_mean(t) = alpha/2 sum_{k < min(t, order)} b_k,  var(t) = alpha^2/12 sum_{k < min(t, order)} b_k^2,

correlated between reads fewer than ``order`` pulses apart. Here: those sums, the correlation of
the stationary term, the factor by which it inflates the variance of slow components, and the
estimate of the fractional order d from the residuals of the lines' fits: fitting a line to each
trace takes away a share k of the 1/f variance, so the residuals' autocorrelation is
(rho_d(j) - k) / (1 - k) (the lags from the order to twice the order, where rho_d is 0, give k;
the lags below give d).
"""

from __future__ import annotations

import numpy as np


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



def pink_d_and_loss(pulses, residuals, weights, order: int, min_pairs: int = 2000):
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

