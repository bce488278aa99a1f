"""Fit a weak-RESET device (an ``HfOxWeakReset`` preset) to measured traces (MODEL.md section 1).

A device's reads y_i = ln R at pulse counts t_i (e_i: 1/f; s_i: RTN state; z_i = v v') are modelled as

    y_i = b + m1 t_i + (m2 - m1)(t_i - t*)_+ + pink_mean(t_i) + e_i + s_i A z_i,   b = ln R0 + c1.

``fit_preset`` alternates, ``rounds`` times: (1) per device the two-slope line, profiled over the knee,
reads weighted by their chance of RTN state 0 (``rramk.fitting.two_slope``); (2) from the state-0
residuals the 1/f order d, the share k of variance the lines take away, and alpha (variance below the
line, which RTN cannot reach, over the filter's times 1 - k; ``.pink_noise``); (3) RTN, a two-state
hidden Markov chain (``.rtn``). Then the device-to-device distributions (``.populations``): of m1, m2,
c1 from each device's profile likelihood, of t* from its knee likelihood with m1, m2 integrated over
their populations (on a grid ending at the longest trace), of A_rtn from the detected devices. One trace
cannot split b: the preset fixes R0 = exp(median b) (to 0.1 ohm); c1 = b - ln R0 takes all the spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..device.config import HfOxWeakReset
from ..device.distributions import Empirical
from ..device.traces import Traces
from .pink_noise import correlation_factor, pink_coefficients, pink_d_and_loss, pink_sums
from .populations import FAMILIES, cell_edges, fit_distribution
from .rtn import RtnFit, fit_rtn
from .two_slope import fit_two_slope, knee_profile, profile, two_slope_mean

FITTED = ("m1", "t_star", "m2", "c1", "a_rtn")
"""The parameters whose device-to-device distribution is chosen among FAMILIES (R0 is fixed, see above)."""
GRID = 600
"""Points of the grid on which each device's profile likelihood of a parameter is evaluated."""


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
    read_noise: float = 0.0  # sd of ln R of each read's white noise, where it replaced the 1/f term
    pink_mean_test: "PinkMeanTest | None" = None

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
                   "rtn_devices_detected": int(self.rtn.detected.sum()), "read_noise_sd": self.read_noise,
                   "pink_mean_test": self.pink_mean_test.record() if self.pink_mean_test else None},
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
                          ["1/f mean in the reads (kappa; 1 = rramk's, 0 = none)",
                           f"{self.pink_mean_test.scale:.2f} ± {self.pink_mean_test.se:.2f}" if self.pink_mean_test
                           else "not tested"],
                          ["white read noise (sd of ln R; not simulated in training)", f"{self.read_noise:.3g}"],
                          ["pink_d" + (" (estimated)" if self.pink_d_estimated else " (kept)"), f"{cfg.pink_d:.3g}"],
                          ["rtn_p01 (per pulse)", f"{cfg.rtn_p01:.3g}"], ["rtn_p10 (per pulse)", f"{cfg.rtn_p10:.3g}"],
                          ["RTN switches seen", f"{self.rtn.transitions:.0f}"],
                          ["devices with RTN detected", f"{int(self.rtn.detected.sum())}"]],
                         headers=["", ""], tablefmt="github")
        return table + "\n\n" + noise + ("\n\n" + "\n".join(f"note: {n}" for n in self.notes) if self.notes else "")



@dataclass
class _DeviceReads:
    """The traces as every mean fit reads them, with the settings those fits share."""

    pulses: list  # per device, the pulse counts of its reads (float64)
    logs: list  # per device, ln R of its reads
    spacing: list  # per device, the median number of pulses between its reads
    knee_grid: np.ndarray  # the common t* grid: 0 to the end of the longest trace
    knee_threshold: float


@dataclass
class _NoiseFit:
    """What the alternation of the mean and noise fits ends with: the 1/f term, the last RTN fit, and the
    weight and offset of every read in the next fit of the lines (``RtnFit.line_weights``, ``offsets``)."""

    alpha: float
    pink_d: float
    pink_d_estimated: bool
    rtn: RtnFit | None
    weights: list
    offsets: list
    mean_test: "PinkMeanTest | None" = None
    read_noise: float = 0.0  # sd of ln R of the white read noise found instead of the 1/f term (0: none)


@dataclass(frozen=True)
class PinkMeanTest:
    """Does the traces' mean rise over the first pulses as rramk's 1/f term makes it (MODEL.md 1.3)?

    The term's uniform draws are not zero-mean: its mean alpha/2 sum_{k < min(t, order)} b_k ramps up
    over the first ``order`` pulses of a device, tied to its variance. White read noise (zero mean,
    present at t = 0 too) has the same short-lag residuals and no ramp. ``scale`` is the least-squares
    share kappa of the ramp the reads carry (from the early reads' residuals, :func:`_pink_mean_test`), ``se``
    its bootstrap standard error over devices. rramk's model (kappa = 1) stands unless the reads put
    kappa nearer 0 (squared error quadratic in kappa: nearer of 0 and 1 below 1/2) by more than 3 se:
    then ``white``, and the residual noise is read noise, not a 1/f term. (3 se: where the 1/f fit itself
    is poor, e.g. sparse reads of a weak term, kappa wanders near 1/2 and the model is kept.)"""

    scale: float
    se: float
    devices: int

    @property
    def white(self) -> bool:
        return self.scale + 3 * self.se < 0.5

    def record(self) -> dict:
        return {"pink_mean_scale": round(self.scale, 4), "pink_mean_scale_se": round(self.se, 4),
                "devices": self.devices, "chosen": "white read noise" if self.white else "1/f term (rramk's)",
                "rule": "zero-mean read noise where kappa + 3 se < 1/2, else rramk's 1/f term (kappa = 1)"}


def _pink_mean_test(reads: "_DeviceReads", residuals, weights, alpha: float, b: np.ndarray,
                    resamples: int = 400) -> PinkMeanTest | None:
    """The :class:`PinkMeanTest` of the reads (None without reads inside the first ``len(b)`` pulses or
    without a 1/f term). With the lines fitted to the reads less the full ramp c(t) = alpha/2 sum b_k, reads
    that carry kappa of it leave residuals (1 - kappa) g(t) at the early reads, g = c(order) - c(t) (the
    lines, fixed by the later reads, absorb the constant): 1 - kappa = sum w r g / sum w g^2 over t < order.
    ``residuals``: those of the full model's lines (refitting them could move a knee and swamp the ramp)."""
    if alpha <= 0 or not any((t < len(b)).any() for t in reads.pulses):
        return None
    full = 0.5 * alpha * float(np.sum(b))
    cross, square = np.zeros(len(residuals)), np.zeros(len(residuals))
    for i, (t, r, w) in enumerate(zip(reads.pulses, residuals, weights)):
        early = t < len(b)
        g = full - 0.5 * alpha * pink_sums(b, t[early])[0]
        cross[i], square[i] = np.sum(w[early] * r[early] * g), np.sum(w[early] * g * g)
    if square.sum() <= 0:
        return None
    rng = np.random.default_rng(0)  # the bootstrap is part of the fit: the same traces give the same se
    picks = rng.integers(0, len(cross), (resamples, len(cross)))
    boot = 1 - cross[picks].sum(1) / np.maximum(square[picks].sum(1), 1e-300)
    return PinkMeanTest(float(1 - cross.sum() / square.sum()), float(np.std(boot)), len(cross))


def _mean_fits(reads: _DeviceReads, weights, offsets, alpha: float, b: np.ndarray):
    """Each device's line (step 1) after taking the 1/f mean off its reads; reads of a device with RTN count
    minus their expected RTN term (``offsets``: the EM step). Returns the fits and the residuals."""
    fits, residuals = [], []
    for t, y, w, s, o in zip(reads.pulses, reads.logs, weights, reads.spacing, offsets):
        s1, _ = pink_sums(b, t)
        z = y - 0.5 * alpha * s1
        f = fit_two_slope(t, z - o, w, noise_factor=correlation_factor(b, s), knee_threshold=reads.knee_threshold,
                          knee_grid=reads.knee_grid)
        fits.append(f)
        residuals.append(z - two_slope_mean(t, f.best))
    return fits, residuals


def _robust_start(reads: _DeviceReads, residuals, offsets, alpha: float, b: np.ndarray):
    """The first round's weights, before any RTN fit: twice, leave out the reads more than three lower-side
    standard deviations above the pooled median residual (RTN state 1) and refit the lines. Returns the
    weights and the residuals."""
    for _ in range(2):
        pooled = np.concatenate(residuals)
        centre = np.median(pooled)
        scale = centre - np.quantile(pooled, 0.1587)
        weights = [(r < centre + 3 * scale).astype(np.float64) for r in residuals]
        _, residuals = _mean_fits(reads, weights, offsets, alpha, b)
    return weights, residuals


def _estimate_alpha(pulses, residuals, states, b: np.ndarray, loss: float) -> float:
    """The 1/f amplitude (step 2) from the residuals below the line only: RTN adds positive values, the 1/f
    term is symmetric. ``loss``: the share of the 1/f variance that the lines' fits take away."""
    num = den = reads = 0.0
    for t, r, w in zip(pulses, residuals, states):
        _, s2 = pink_sums(b, t)
        ok = (t >= 1) & (r < 0)
        num += np.sum(w[ok] * r[ok] ** 2)
        den += np.sum(w[ok] * s2[ok]) / 12
        reads += w.sum()
    dof = reads - 4 * len(pulses)
    return math.sqrt(num / den * reads / max(dof, 1.0) / (1 - loss)) if den > 0 else 0.0


def _fit_noise(reads: _DeviceReads, base: HfOxWeakReset, *, rounds: int, rtn_threshold: float,
               estimate_pink_d: bool, say) -> _NoiseFit:
    """Steps 1 to 3 of the module docstring, ``rounds`` times: the lines, the 1/f noise, the RTN chain."""
    order = base.pink_order
    pink_d, pink_d_estimated = base.pink_d, False
    pulses = reads.pulses
    weights = [np.ones(len(t)) for t in pulses]  # of each read in the line's fit
    offsets = [np.zeros(len(t)) for t in pulses]  # subtracted from each read in the line's fit
    states = weights  # P(RTN state 0) of each read, for the 1/f noise
    alpha, p01, p10 = 0.0, base.rtn_p01, base.rtn_p10
    mean_alpha, mean_test, white = 0.0, None, False  # the 1/f amplitude whose mean the lines take off
    loss = 0.0  # the share of the 1/f variance that the lines' fits take away (``pink_noise.pink_d_and_loss``)
    rtn = None
    for round_ in range(rounds):
        b = pink_coefficients(order, pink_d)
        say(f"round {round_ + 1}/{rounds}: mean of {len(pulses)} devices")
        _, residuals = _mean_fits(reads, weights, offsets, mean_alpha, b)
        if round_ == 0:
            weights, residuals = _robust_start(reads, residuals, offsets, mean_alpha, b)
            states = weights
        if estimate_pink_d:
            found = pink_d_and_loss(pulses, residuals, states, order)
            if found is not None:
                (pink_d, loss), pink_d_estimated = found, True
                b = pink_coefficients(order, pink_d)
        alpha = _estimate_alpha(pulses, residuals, states, b, loss)
        sigma = alpha * math.sqrt(np.sum(b * b) / 12)  # the residual noise, 1/f or read noise
        _, residuals = _mean_fits(reads, weights, offsets, alpha, b)
        if round_ == rounds - 1:  # decided once the RTN weights have settled (earlier rounds' kappa wanders)
            mean_test = _pink_mean_test(reads, residuals, weights, alpha, b)
            white = mean_test is not None and mean_test.white
        mean_alpha = 0.0 if white else alpha
        if white:  # the lines again, without the 1/f mean
            _, residuals = _mean_fits(reads, weights, offsets, mean_alpha, b)
        if sigma <= 0:
            sigma = float(np.std(np.concatenate(residuals))) or 1e-6
        ramp = f"; 1/f mean kappa {mean_test.scale:.2f} ± {mean_test.se:.2f}" if mean_test else ""
        say(f"round {round_ + 1}/{rounds}: RTN ("
            + (f"white read noise {sigma:.3g}" if white else f"alpha {alpha:.4g}, d {pink_d:.3g}") + f"{ramp})")
        rtn = fit_rtn(pulses, residuals, sigma=sigma, order=order, p01=p01, p10=p10, rtn_threshold=rtn_threshold,
                      temper=[1 / correlation_factor(b, s) for s in reads.spacing])
        p01, p10 = rtn.p01, rtn.p10
        weights, offsets, states = rtn.line_weights, rtn.offsets, rtn.state0
    return _NoiseFit(mean_alpha, pink_d, pink_d_estimated, rtn, weights, offsets, mean_test, sigma if white else 0.0)


def _slope_populations(parameters: dict) -> list:
    """The fitted populations of m1 and m2 as (grid, mass) on their profile grids (for ``knee_profile``)."""
    slopes = []
    for name in ("m1", "m2"):
        grid = parameters[name].grid
        mass = np.histogram(parameters[name].chosen.quantile_table(1 << 14).numpy(), bins=cell_edges(grid))[0]
        slopes.append((grid, mass / max(mass.sum(), 1)))
    return slopes


def _fit_populations(fits, rtn: RtnFit, knee_grid: np.ndarray, r0: float, *, criterion: str, families) -> dict:
    """The device-to-device distribution of each parameter of FITTED (module docstring), in that order."""
    point = {k: np.array([getattr(f, k) for f in fits]) for k in ("b", "m1", "m2", "t_star")}
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
    slopes = _slope_populations(parameters)
    parameters["t_star"] = fit_distribution("t_star", knee_grid, np.stack([knee_profile(f, slopes) for f in fits]),
                                            values=shown["t_star"], criterion=criterion, families=families)
    if rtn.detected.sum() >= 2:
        parameters["a_rtn"] = fit_distribution("a_rtn", rtn.grid, rtn.loglik[rtn.detected], values=shown["a_rtn"],
                                               criterion=criterion, families=families)
    else:  # RTN in fewer than two devices: one profile that puts the bound at 0 (no RTN)
        parameters["a_rtn"] = fit_distribution("a_rtn", rtn.grid, np.zeros((1, len(rtn.grid))) - (rtn.grid > 0)
                                               * 1e3, criterion=criterion, families=families)
    return {name: parameters[name] for name in FITTED}


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
    pulses = [np.asarray(t, dtype=np.float64) for t in traces.pulses]
    reads = _DeviceReads(pulses=pulses, logs=[traces.log_resistance(i) for i in range(len(traces))],
                         spacing=[float(np.median(np.diff(t))) if len(t) > 1 else 1.0 for t in pulses],
                         knee_grid=np.linspace(0.0, float(max(t[-1] for t in pulses)), GRID),
                         knee_threshold=knee_threshold)
    noise = _fit_noise(reads, base, rounds=rounds, rtn_threshold=rtn_threshold, estimate_pink_d=estimate_pink_d,
                       say=say)
    fits, residuals = _mean_fits(reads, noise.weights, noise.offsets, noise.alpha,
                                 pink_coefficients(base.pink_order, noise.pink_d))
    rtn = noise.rtn

    say("device-to-device distributions")
    r0 = round(math.exp(float(np.median(np.array([f.b for f in fits])))), 1)
    parameters = _fit_populations(fits, rtn, reads.knee_grid, r0, criterion=criterion, families=families)
    notes = []
    if not np.isfinite(np.array([f.t_star for f in fits])).any():
        notes.append("no device shows its knee within its trace: t* lies at the end of the longest trace and m2 "
                     "is not constrained by the data")
    if not rtn.detected.any():
        notes.append("RTN detected in no device")
    if noise.read_noise:
        notes.append(f"the reads' mean does not rise over the first {base.pink_order} pulses as rramk's 1/f term would "
                     f"make it (kappa {noise.mean_test.scale:.2f} ± {noise.mean_test.se:.2f} of its ramp): the noise "
                     f"around each line is white read noise (sd {noise.read_noise:.3g} of ln R), not a 1/f term; the "
                     f"preset has no 1/f term, and rramk's device model does not add read noise in training")
    config = HfOxWeakReset(
        m1=parameters["m1"].chosen, t_star=parameters["t_star"].chosen, c1=parameters["c1"].chosen,
        m2=parameters["m2"].chosen, r0=Empirical((r0,)), a_rtn=parameters["a_rtn"].chosen,
        pink_alpha=float(noise.alpha), pink_order=base.pink_order, pink_d=float(noise.pink_d),
        rtn_p01=float(np.clip(rtn.p01, 1e-9, 0.5)), rtn_p10=float(np.clip(rtn.p10, 1e-9, 0.5)),
        max_pulses=base.max_pulses)
    return PresetFit(config=config, devices=fits, parameters=parameters, rtn=rtn, r0=r0,
                     pink_d_estimated=noise.pink_d_estimated, residuals=residuals, traces=traces, notes=notes,
                     read_noise=noise.read_noise, pink_mean_test=noise.mean_test)
