"""Random telegraph noise of many devices: a two-state hidden Markov chain over their residuals.

Each device's residuals below its line (t >= order) are read by a chain of states 0 and 1 with
switching probabilities p01 and p10 per pulse (reads grouped into blocks of 3% of a dwell);
emission N(0, sigma^2) in state 0 and its convolution with A z in state 1 (z = v v', density
-ln z on (0, 1); A the device's amplitude bound). Each read's log-likelihood is divided by the
device's 1/f correlation factor: 1/f-correlated reads carry less evidence than independent ones
(without the factor the 1/f wander reads as switches; with it, the chain finds dwells late and
merges short gaps, so the switching probabilities come out low where the 1/f noise is strong: on
simulated devices with alpha = 0.04 read every pulse, p01 -16% and p10 -21% at the published
rates, p10 -35% at p10 = 3e-3; unbiased within statistics at the published alpha. A chain with
autoregressive emissions would remove this).

Each device's bound A is integrated over a grid under a population distribution estimated with
p01 and p10 by EM, so devices that never switch or whose amplitude is too small to see weigh in
correctly (for p01 and p10). RTN is *detected* in a device whose best A beats A = 0 by
``rtn_threshold``; the distribution of A is fitted to the detected devices (amplitudes of a few
sigma go unseen: the fitted range starts there). Where RTN is detected, the next fit of the line
takes a Newton step of the full likelihood (``RtnFit.line_weights`` and ``offsets``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def transition_factor(gaps: np.ndarray, p01: float, p10: float) -> np.ndarray:
    """(1 - lambda^n) / (1 - lambda), lambda = 1 - p01 - p10, n = ``gaps``: the two-state trap's
    P(state 1 after n pulses | state 0) is p01 times it and P(0 | 1) p10 times it (n = 1: p01 and
    p10; n -> inf: the stationary occupancies)."""
    lam = 1 - p01 - p10
    return -np.expm1(gaps * math.log(lam)) / (1 - lam)


def fit_rtn(pulses, residuals, *, sigma: float, order: int, p01: float, p10: float, rtn_threshold: float,
            temper=None, grid: int = 25, fine: int = 10, iterations: int = 12, tolerance: float = 1e-3,
            chunk_lanes: int = 1 << 13) -> RtnFit:
    """The RTN fit (module docstring) on the residuals of every device's mean fit.

    ``temper[d]`` scales device d's read log-likelihoods (module docstring).
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
        eff = transition_factor(gaps, p01, p10)
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

