"""Random telegraph noise of many devices: a two-state hidden Markov chain over their residuals.

Each device's residuals below its line (t >= order) are read by a chain of states 0 and 1 switching
with probabilities p01, p10 per pulse (reads grouped in blocks of 3% of a dwell); emission
N(0, sigma^2) in state 0, convolved with A z in state 1 (z = v v', density -ln z on (0, 1); A the
device's amplitude bound). Each read's log-likelihood is divided by the device's 1/f correlation
factor, as correlated reads carry less evidence (without it 1/f wander reads as switches), so where 1/f
noise is strong, dwells are found late and short gaps merged, and p01, p10 come out low (alpha = 0.04,
read every pulse: p01 -16%, p10 -21% at the published rates, p10 -35% at p10 = 3e-3; unbiased at the
published alpha; autoregressive emissions would fix it). A is integrated over a grid under a population
distribution estimated with p01, p10 by EM: devices that never switch, or too weakly to see, weigh in.
RTN is *detected* where the best A beats A = 0 by ``rtn_threshold``; A's distribution is fitted to the
detected devices (its range starts at a few sigma: smaller ones go unseen), and their line's next fit
takes a Newton step of the full likelihood (``RtnFit.line_weights``, ``offsets``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


@dataclass
class _ChainReads:
    """What the chain reads: per device, the pulse counts (int64) and residuals of its reads at t >= order
    and its temper; sigma and the state-1 table of ``_rtn_table``; the caches of ``_blocks`` and
    ``_block_emissions`` (the EM revisits the same blocks)."""

    pulses: list
    residuals: list
    temper: np.ndarray
    sigma: float
    table_r: np.ndarray
    table: np.ndarray
    layouts: dict = field(default_factory=dict)  # span -> ``_blocks``
    emissions: dict = field(default_factory=dict)  # (id(block), ids, lanes) -> ``_block_emissions``


def _blocks(reads: _ChainReads, p01: float, p10: float) -> list:
    """Per device, its reads grouped into blocks of span = 3% of 1 / (p01 + p10) pulses (1 to 64): the index
    of each block's first read and that read's pulse count."""
    span = int(np.clip(0.03 / (p01 + p10), 1, 64))
    if span in reads.layouts:
        return reads.layouts[span]
    out = reads.layouts[span] = []
    for t in reads.pulses:
        if len(t) == 0:
            out.append((np.zeros(0, np.int64), np.zeros(0, np.int64)))
            continue
        key = (t - t[0]) // span
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        out.append((starts, t[starts]))
    return out


def _block_emissions(reads: _ChainReads, block, ids, lanes):
    """Per device of ``ids``: log e0 (B,) and log e1 (lanes, B), its tempered log-likelihoods of the reads in
    state 0 and in state 1 at each lane's bound, summed over each block."""
    key = (id(block), tuple(ids), len(lanes))
    if key in reads.emissions:
        return reads.emissions[key]
    sigma = reads.sigma
    log_p0 = -0.5 * np.log(2 * np.pi * sigma * sigma)
    e0, e1 = [], []
    for d in ids:
        starts, _ = block[d]
        r = reads.residuals[d]
        if len(r) == 0:
            e0.append(np.zeros(0))
            e1.append(np.zeros((len(lanes), 0)))
            continue
        lp0 = (log_p0 - 0.5 * (r / sigma) ** 2) * reads.temper[d]
        lp1 = _lookup(reads.table_r, reads.table, lanes[:, None], r[None, :]) * reads.temper[d]
        e0.append(np.add.reduceat(lp0, starts))
        e1.append(np.add.reduceat(lp1, starts, axis=1))
    reads.emissions[key] = (e0, e1)
    return e0, e1


def _stacked_emissions(reads: _ChainReads, ids, block, lanes):
    """The chain's inputs for devices ``ids``, (blocks, devices[, lanes]), zero past a device's last block:
    the pulses since the previous block, log e0 and log e1 (``_block_emissions``)."""
    D, B = len(ids), max((len(block[d][0]) for d in ids), default=0)
    gaps = np.zeros((B, D))
    le0 = np.zeros((B, D))
    le1 = np.zeros((B, D, len(lanes)))
    e0s, e1s = _block_emissions(reads, block, ids, lanes)
    for k, d in enumerate(ids):
        starts, tb = block[d]
        nb = len(starts)
        gaps[:nb, k] = np.diff(np.concatenate([[0], tb]))
        le0[:nb, k] = e0s[k]
        le1[:nb, k, :] = e1s[k].T
    return gaps, le0, le1


def _forward(e0, e1, q01, q10):
    """The scaled forward pass over (blocks, devices, lanes): a0[j + 1], a1[j + 1] = P(state 0, 1 at block j
    | blocks 0..j) (a0[0] = 1: state 0 before the first) and c[j] = p(block j | the blocks before it)."""
    B, shape = len(e0), e0.shape[1:]
    a0 = np.zeros((B + 1, *shape))
    a1 = np.zeros((B + 1, *shape))
    c = np.ones((B, *shape))
    a0[0] = 1.0
    for j in range(B):
        p0 = a0[j] * (1 - q01[j]) + a1[j] * q10[j]
        p1 = a0[j] * q01[j] + a1[j] * (1 - q10[j])
        x0, x1 = p0 * e0[j], p1 * e1[j]
        c[j] = x0 + x1
        a0[j + 1], a1[j + 1] = x0 / c[j], x1 / c[j]
    return a0, a1, c


def _backward(a0, a1, c, e0, e1, q01, q10, eff, want_states: bool):
    """The backward pass, summing per device and lane the expected switches 0 -> 1 and 1 -> 0 and the
    exposures exp0, exp1 (P(state 0, 1 at a gap's start) times its transition factor ``eff``: the EM's
    p01 = n01 / exp0); and where ``want_states``, P(state 0 at block j | all blocks)."""
    shape = c.shape[1:]
    b0 = np.ones(shape)
    b1 = np.ones(shape)
    n01 = np.zeros(shape)
    n10 = np.zeros(shape)
    exp0 = np.zeros(shape)
    exp1 = np.zeros(shape)
    post0 = np.zeros(c.shape) if want_states else None
    for j in range(len(c) - 1, -1, -1):
        g0, g1 = e0[j] * b0 / c[j], e1[j] * b1 / c[j]
        n01 += a0[j] * q01[j] * g1
        n10 += a1[j] * q10[j] * g0
        exp0 += (a0[j] * (1 - q01[j]) * g0 + a0[j] * q01[j] * g1) * eff[j][:, None]
        exp1 += (a1[j] * (1 - q10[j]) * g1 + a1[j] * q10[j] * g0) * eff[j][:, None]
        if want_states:
            post0[j] = a0[j + 1] * b0
        b0, b1 = (1 - q01[j]) * g0 + q01[j] * g1, q10[j] * g0 + (1 - q10[j]) * g1
    return n01, n10, exp0, exp1, post0


def _forward_backward(reads: _ChainReads, ids, block, p01, p10, lanes, *, want_states=False, backward=True):
    """The chain over the blocks of devices ``ids`` at each lane's bound: the log-likelihoods (devices,
    lanes), then unless not ``backward`` the expected counts and state posteriors of ``_backward``."""
    gaps, le0, le1 = _stacked_emissions(reads, ids, block, lanes)
    eff = transition_factor(gaps, p01, p10)
    q01, q10 = (p01 * eff)[..., None], (p10 * eff)[..., None]
    m = np.maximum(le0[..., None], le1)  # per lane, so that no lane underflows
    e0 = np.exp(le0[..., None] - m)
    e1 = np.exp(le1 - m)
    a0, a1, c = _forward(e0, e1, q01, q10)
    loglik = (np.log(c) + m).sum(0)  # (D, G)
    if not backward:
        return loglik
    return (loglik, *_backward(a0, a1, c, e0, e1, q01, q10, eff, want_states))


def _chunks(devices: int, lanes: int, chunk_lanes: int) -> list:
    """The devices in runs of about ``chunk_lanes`` chains (device x lane) each, to bound the memory."""
    per_chunk = max(chunk_lanes // lanes, 1)
    return [list(range(i, min(i + per_chunk, devices))) for i in range(0, devices, per_chunk)]


def _lane_posterior(loglik, pi):
    """Each device's posterior over the grid of bounds: its likelihood there times the population pi."""
    logw = loglik + np.log(np.maximum(pi, 1e-300))
    w = np.exp(logw - logw.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    return w


def _fit_rates(reads: _ChainReads, chunks, coarse, p01: float, p10: float, pi, iterations: int,
               tolerance: float):
    """EM of p01, p10 and the population pi over the coarse bounds, until both rates change by less than
    ``tolerance`` (relative): (p01, p10, pi, iterations done)."""
    devices = len(reads.pulses)
    previous = None
    for iteration in range(1, iterations + 1):
        block = _blocks(reads, p01, p10)
        totals = np.zeros(4)
        weights_sum = np.zeros(len(coarse))
        for ids in chunks:
            loglik, n01, n10, exp0, exp1, _ = _forward_backward(reads, ids, block, p01, p10, coarse)
            w = _lane_posterior(loglik, pi)
            totals += [(w * n01).sum(), (w * n10).sum(), (w * exp0).sum(), (w * exp1).sum()]
            weights_sum += w.sum(0)
        p01 = float(np.clip(totals[0] / max(totals[2], 1e-300), 1e-8, 0.3))
        p10 = float(np.clip(totals[1] / max(totals[3], 1e-300), 1e-8, 0.3))
        pi = weights_sum / devices
        if previous is not None and abs(p01 / previous[0] - 1) < tolerance and abs(p10 / previous[1] - 1) < tolerance:
            break
        previous = (p01, p10)
    return p01, p10, pi, iteration


def _read_states(reads: _ChainReads, chunks, block, p01: float, p10: float, pi, coarse, use):
    """P(state 0) of every read of every device (1 where t < order, ``use`` false), and the expected
    number of switches seen."""
    state0 = [np.ones(len(u)) for u in use]
    transitions = 0.0
    for ids in chunks:
        loglik, n01, n10, _, _, post0 = _forward_backward(reads, ids, block, p01, p10, coarse, want_states=True)
        w = _lane_posterior(loglik, pi)
        transitions += float((w * (n01 + n10)).sum())
        for k, d in enumerate(ids):
            starts, _ = block[d]
            if len(starts) == 0:
                continue
            p_block = (post0[:len(starts), k, :] * w[k]).sum(-1)
            counts = np.diff(np.concatenate([starts, [len(reads.residuals[d])]]))
            state0[d][use[d]] = np.repeat(np.clip(p_block, 0.0, 1.0), counts)
    return state0, transitions


def _bound_loglik(reads: _ChainReads, block, p01: float, p10: float, rows, chunk_lanes: int) -> np.ndarray:
    """Each device's log-likelihood of its residuals at the bounds of the table's ``rows`` (devices, rows)."""
    devices = len(reads.pulses)
    loglik = np.zeros((devices, len(rows)))
    for ids in _chunks(devices, len(rows), chunk_lanes):
        loglik[ids] = _forward_backward(reads, ids, block, p01, p10, rows, backward=False)
    return loglik


def _line_step(reads: _ChainReads, use, state0, detected, rows):
    """The line's Newton step where RTN is detected (device d at its best bound, table row ``rows[d]``): per
    device, each read's weight -d2 log p / d line2 (times sigma^2) and the offset that makes the read minus
    it the working response line + g / H; elsewhere the weight P(state 0) and offset 0."""
    sigma, table_r, table = reads.sigma, reads.table_r, reads.table
    # state 0: weight 1, the read itself; state 1: the slope of log p(r | 1, A), steep only near r = 0
    dr = table_r[1] - table_r[0]
    slope1, curve1 = np.gradient(table, dr, axis=1), np.gradient(np.gradient(table, dr, axis=1), dr, axis=1)
    line_weights = [w.copy() for w in state0]
    offsets = [np.zeros(len(u)) for u in use]
    for d in np.flatnonzero(detected):
        row = rows[d]
        r = reads.residuals[d]
        x = np.clip((r - table_r[0]) / dr, 0, len(table_r) - 1)
        at = lambda table_row: np.interp(x, np.arange(len(table_r)), table_row)  # noqa: E731
        s0 = state0[d][use[d]]
        g = s0 * r / sigma ** 2 - (1 - s0) * at(slope1[row])
        h = s0 / sigma ** 2 + (1 - s0) * np.maximum(-at(curve1[row]), 1e-3 / sigma ** 2)
        line_weights[d][use[d]] = h * sigma ** 2
        offsets[d][use[d]] = r - g / h
    return line_weights, offsets


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
    amps, table_r, table, _ = _rtn_table(sigma, a_max, (grid - 1) * fine + 1)
    reads = _ChainReads(t_h, r_h, temper, sigma, table_r, table)
    coarse = np.arange(grid) * fine  # the EM's bounds: every ``fine``-th row of the table
    chunks = _chunks(devices, grid, chunk_lanes)
    p01, p10, pi, iteration = _fit_rates(reads, chunks, coarse, p01, p10, np.full(grid, 1.0 / grid), iterations,
                                         tolerance)
    # final pass: states, then each device's likelihood over a fine grid of bounds: detection and the bound
    block = _blocks(reads, p01, p10)
    state0, transitions = _read_states(reads, chunks, block, p01, p10, pi, coarse, use)
    fine_rows = np.arange(0, len(amps), max(fine // 4, 1))
    loglik_fine = _bound_loglik(reads, block, p01, p10, fine_rows, chunk_lanes)
    best = np.argmax(loglik_fine, axis=1)
    detected = (best > 0) & (loglik_fine[np.arange(devices), best] - loglik_fine[:, 0] >= rtn_threshold)
    amplitudes = np.where(detected, amps[fine_rows][best], np.nan)
    line_weights, offsets = _line_step(reads, use, state0, detected, fine_rows[best])
    return RtnFit(p01=p01, p10=p10, amplitudes=amplitudes, detected=detected, state0=state0,
                  transitions=transitions, population=(amps[coarse], pi), iterations=iteration,
                  grid=amps[fine_rows], loglik=loglik_fine - loglik_fine.max(1, keepdims=True),
                  line_weights=line_weights, offsets=offsets)
