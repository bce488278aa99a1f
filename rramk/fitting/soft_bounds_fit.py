"""A soft-bounds preset (``rramk.device.soft_bounds.SoftBounds``) fitted to measured traces.

The read quantity is the conductance in microsiemens, y = 1e6 / R, which a soft-bounds device raises
pulse by pulse: per device y_i = g0 + (g_max - g0)(1 - (1 - rate)^t_i) + white read noise. For a rate on
a log grid the model is linear in (g0, g_max - g0): least squares gives the sum of squares SSE(rate)
(closed form, every device and rate at once), so rate is profiled exactly; its profile log-likelihood
-n/2 ln SSE feeds ``populations.fit_distribution`` as the HfOx fit's knees do, and g0 and g_max (their
least-squares values and standard errors at the best rate, Gaussian profiles) likewise. The read noise is
of one sd, or proportional to the conductance (reads weighted by 1 / y^2): the likelier of the two. A device whose
trace has not yet bent (rate t_max << 1) has a flat profile toward small rates: it informs the
population only as far as it can. The residual noise is read noise (zero mean), reported, not put into
the preset's noise terms (whose white term is a programming noise with mean alpha / 2, MODEL.md 1.3).
``log_likelihood`` is the traces' Gaussian log-likelihood in ohm (the Jacobian of y = 1e6 / R included),
so that the families' fits, each in its own read quantity, compare by AIC or BIC (``family_choice``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..device.soft_bounds import SoftBounds
from .populations import fit_distribution

MICROSIEMENS = 1e6
"""y = MICROSIEMENS / R: the read quantity of a fitted soft-bounds preset, in microsiemens."""
RATE_GRID = np.geomspace(1e-5, 0.5, 240)
"""Rates per pulse the profile is evaluated at."""


def conductance(resistance) -> np.ndarray:
    """The read quantity of a fitted soft-bounds preset: 1e6 / R (microsiemens for R in ohm)."""
    return MICROSIEMENS / np.asarray(resistance, dtype=np.float64)


@dataclass
class DeviceProfile:
    """One device: SSE over RATE_GRID, the best rate, and (g0, g_max) with their standard errors there."""

    sse: np.ndarray
    rate: float
    g0: float
    g_max: float
    se_g0: float
    se_g_max: float
    reads: int


def device_profile(t, y, relative: bool = False) -> DeviceProfile:
    """Least squares of y on (1, 1 - (1 - r)^t) at every rate r of RATE_GRID (module docstring); ``relative``:
    each read weighted by 1 / y^2 (read noise proportional to the conductance), ``sse`` then of y / y_read."""
    t, y = np.asarray(t, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = 1.0 / y ** 2 if relative else np.ones_like(y)
    x = -np.expm1(t[None, :] * np.log1p(-RATE_GRID[:, None]))  # (rates, reads): 1 - (1 - r)^t
    n, total = len(t), w.sum()
    xm, ym = (x * w).sum(1, keepdims=True) / total, (y * w).sum() / total
    sxx = (w * (x - xm) ** 2).sum(1)
    sxy = (w * (x - xm) * (y - ym)).sum(1)
    window = np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), 0.0)
    g0 = ym - window * xm[:, 0]
    sse = (w * (y[None, :] - g0[:, None] - window[:, None] * x) ** 2).sum(1)
    best = int(np.argmin(sse))
    var = sse[best] / max(n - 3, 1)
    design = np.stack([np.ones(n), x[best]], 1)  # covariance of (g0, window) at the best rate; g_max = g0 + window
    inv = np.linalg.pinv(design.T @ (design * w[:, None])) * var
    se_g0 = math.sqrt(max(inv[0, 0], 0.0))
    se_g_max = math.sqrt(max(inv[0, 0] + inv[1, 1] + 2 * inv[0, 1], 0.0))
    return DeviceProfile(sse, float(RATE_GRID[best]), float(g0[best]), float(g0[best] + window[best]), se_g0,
                         se_g_max, n)


def _log_likelihood(traces, devices, relative: bool) -> tuple[float, float]:
    """(log-likelihood of the resistances, the read noise's sd: of y, or relative) of the devices' best fits."""
    reads = sum(d.reads for d in devices)
    sse = sum(float(d.sse.min()) for d in devices)
    sigma2 = sse / max(reads - 3 * len(devices), 1)
    ys = [conductance(r) for r in traces.resistance]
    jacobian = sum(float(np.sum(np.log(MICROSIEMENS / np.asarray(r, dtype=np.float64) ** 2)))
                   for r in traces.resistance)  # ln |dy/dR| of every read
    scale = sum(float(np.sum(np.log(y))) for y in ys) if relative else 0.0  # the sd of read i is sigma y_i
    ll = -0.5 * reads * math.log(2 * math.pi * sigma2) - scale - 0.5 * sse / sigma2 + jacobian
    return ll, math.sqrt(sigma2)


@dataclass
class SoftBoundsFit:
    """What ``fit_soft_bounds`` found: the preset, each device's profile, each parameter's choice, the noise."""

    config: SoftBounds | None  # None where no soft-bounds device has these traces (a bound below a reset state)
    devices: list
    parameters: dict
    read_noise: float  # sd of each read's white noise: of y (microsiemens), or relative (``relative``)
    log_likelihood: float  # of the traces' resistances (ohm), Gaussian read noise of sd read_noise in y
    free_parameters: int
    reads: int
    problem: str = ""
    relative: bool = False  # read noise proportional to the conductance (read_noise its relative sd)

    def summary(self) -> str:
        if self.config is None:
            return f"soft bounds (y = 1e6 / R, microsiemens): no preset ({self.problem})"
        lines = ["soft bounds (y = 1e6 / R, microsiemens):"]
        for name, p in self.parameters.items():
            d = p.chosen
            lines.append(f"  {name}: {type(d).__name__} on [{d.low:.4g}, {d.high:.4g}], mean {d.mean_truncated:.4g}")
        unit = "of the conductance (relative)" if self.relative else "microsiemens"
        lines.append(f"  read noise: sd {self.read_noise:.4g} {unit} (white, zero mean; not in the preset)")
        return "\n".join(lines)


def _gaussian_profile(grid, values, se) -> np.ndarray:
    se = np.maximum(np.asarray(se), 1e-12 + 1e-9 * np.abs(np.asarray(values)))
    return -0.5 * ((grid[None, :] - np.asarray(values)[:, None]) / se[:, None]) ** 2


def _grid(values, se, size: int = 200) -> np.ndarray:
    typical = float(np.median(se))
    return np.linspace(float(np.quantile(values, 0.005)) - 4 * typical,
                       float(np.quantile(values, 0.995)) + 4 * typical, size)


def fit_soft_bounds(traces, *, criterion: str = "aic") -> SoftBoundsFit:
    """The soft-bounds preset of ``traces`` (``rramk.device.traces.Traces``), module docstring."""
    ys = [conductance(r) for r in traces.resistance]
    fits = {}
    for relative in (False, True):  # read noise of one sd, or proportional to the conductance: the likelier
        devices = [device_profile(t, y, relative) for t, y in zip(traces.pulses, ys)]
        fits[relative] = (devices, *_log_likelihood(traces, devices, relative))
    relative = fits[True][1] > fits[False][1]
    devices, loglik, noise = fits[relative]
    k = 3 * len(devices) + 1
    reads = sum(d.reads for d in devices)
    rate_ll = np.stack([-0.5 * d.reads * np.log(np.maximum(d.sse, 1e-300) / d.reads) for d in devices])
    parameters = {"rate": fit_distribution("rate", RATE_GRID, rate_ll, values=[d.rate for d in devices],
                                           criterion=criterion)}
    for name in ("g_max", "g0"):
        values = np.array([getattr(d, name) for d in devices])
        se = np.array([getattr(d, f"se_{name}") for d in devices])
        grid = _grid(values, se)
        parameters[name] = fit_distribution(name, grid, _gaussian_profile(grid, values, se), values=values,
                                            criterion=criterion)
    falling = float(np.median([d.g_max - d.g0 for d in devices])) <= 0
    try:
        if falling:
            raise ValueError("the conductance falls with the pulses in most devices (a RESET-like device); a "
                             "soft-bounds device's rises toward its bound")
        config = SoftBounds(rate=parameters["rate"].chosen, g_max=parameters["g_max"].chosen,
                            g0=parameters["g0"].chosen, pink=False, rtn=False)
        problem = ""
    except ValueError as e:
        config, problem = None, str(e)
    return SoftBoundsFit(config, devices, parameters, noise, loglik, k, reads, problem, relative)
