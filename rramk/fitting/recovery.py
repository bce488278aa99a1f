"""Known devices, and how close a fit comes to them: the proof of ``python -m rramk.fit --demo``.

``DEMO_CASES``: the published preset and two far from it, simulated by rramk (the truth is known).
``recovery``: each fitted parameter's quantiles q read through the true CDF, F_true(x_q) - q, against
a bound derived from the n devices that inform it and each device's own estimation error (below);
``noise_recovery``: the 1/f and RTN numbers against the truth. (ln R of traces against devices
simulated from a preset, which needs no truth: ``rramk.fitting.adequacy``.)

The bound (``derived_bounds``). Device i sees its value with an error of sd s_i: the sd of its profile
likelihood (``device_errors``; for a Gaussian profile its sd: the least-squares standard error at a known
knee, widened by the knee's uncertainty). The n devices' estimates are then draws from the truth blurred
by those errors,

    G(x) = (1/n) sum_i  integral Phi((x - theta) / s_i) dF_true(theta),

and their empirical distribution puts its quantile q near x* = G^-1(q): an expected error
F_true(x*) - q (the *blur*), and by the delta method a sampling sd (f_true / g)(x*) sqrt(V(q) / n),
taken at least sqrt(V(q) / n) (no fit from noisy devices beats exact ones). V(q) = q (1 - q)
(binomial), or where knees are censored at their trace's censor point c_i (``two_slope.censor_point``)
Kaplan-Meier's V(q) = (1 - q)^2 integral_0^q dp / ((1 - p)^2 C(Q_true(p))), C(u) the share of the
devices with c_i > u (Greenwood's; q (1 - q) where none is censored). The bound is |blur| + z sd, z the
normal quantile of a 1 % family-wise chance over a case's comparisons (Bonferroni over LEVELS x
parameters, 25: z = 3.54; the levels of a parameter are correlated, so it is conservative). With
exact devices (s_i = 0, no censoring) it is z sqrt(q (1 - q) / n). The fit integrates each device's
likelihood (``populations``: it deconvolves the blur), so a fit within the bound is as close as the
devices' own estimates allow. Not modelled: gross per-device errors (a device many s_i off:
``error_calibration`` counts them) and a family that cannot take the truth's shape; not derived for
A_rtn (``NOT_DERIVED``), where the old 4 sqrt(q (1 - q) / n) stays as the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from ..device.config import HfOxWeakReset
from ..device.distributions import TruncatedExponential, TruncatedLognormal, TruncatedNormal, Uniform
from .two_slope import censor_point

LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
"""The quantile levels at which ``recovery`` compares a fitted distribution with the truth."""


@dataclass(frozen=True)
class DemoCase:
    """Simulated traces with a known truth: ``devices`` devices of ``config``, trace lengths drawn
    uniformly in ``lengths`` (pulses), ``pulses_per_update`` pulses per update, each device read
    after every update or every ``read_every[1]``-th (drawn per device)."""

    name: str
    config: HfOxWeakReset
    lengths: tuple[int, int]
    pulses_per_update: int
    read_every: tuple[int, int]
    seed: int
    description: str

    def simulate(self, devices: int = 300, backend: str = "reference", replicate: int = 0):
        """(traces, truth) of ``devices`` devices; ``replicate`` r > 0 draws another population of the same
        case (seed + REPLICATE_STRIDE r), r = 0 the case's own."""
        from ..device.traces import simulate_traces

        seed = self.seed + REPLICATE_STRIDE * replicate
        rng = np.random.default_rng(seed)
        lengths = rng.integers(self.lengths[0], self.lengths[1] + 1, devices)
        every = rng.integers(self.read_every[0], self.read_every[1] + 1, devices)
        return simulate_traces(self.config, lengths, pulses_per_update=self.pulses_per_update, read_every=every,
                               seed=seed, backend=backend)


REPLICATE_STRIDE = 1000
"""Seeds of a case's replicates: seed + 1000 r (cases' own seeds are 11-13, so replicates never meet)."""

DEMO_CASES = (
    DemoCase("published", HfOxWeakReset(), (400, 2000), 2, (1, 2), 11,
             "the published fit (MODEL.md): knees around 600 pulses, censored in short traces; reads every 2 or "
             "4 pulses"),
    DemoCase("fast", HfOxWeakReset(
        m1=TruncatedLognormal(s=0.5, loc=0.0, scale=2e-3, low=5e-4, high=8e-3, mean_truncated=2.2e-3),
        t_star=TruncatedNormal(loc=250.0, scale=80.0, low=60.0, high=500.0, mean_truncated=250.0),
        c1=Uniform(low=-0.1, high=0.1, mean_truncated=0.0),
        m2=TruncatedNormal(loc=1e-4, scale=4e-5, low=1e-5, high=2.5e-4, mean_truncated=1e-4),
        r0=TruncatedNormal(loc=20000.0, scale=1500.0, low=16000.0, high=24000.0, mean_truncated=20000.0),
        a_rtn=Uniform(low=0.2, high=0.8, mean_truncated=0.5),
        pink_alpha=0.04), (300, 1200), 1, (1, 1), 12,
        "3x steeper, early knees (normal), 4x steeper saturated slope, R0 ~ 20 kOhm, 1.6x the 1/f amplitude, "
        "RTN amplitudes 0.2-0.8; reads every pulse"),
    DemoCase("slow", HfOxWeakReset(
        m1=TruncatedExponential(loc=1e-5, scale=2e-4, low=1e-5, high=2e-3, mean_truncated=2e-4),
        t_star=TruncatedLognormal(s=0.4, loc=0.0, scale=1500.0, low=400.0, high=4000.0, mean_truncated=1600.0),
        c1=TruncatedNormal(loc=0.0, scale=0.12, low=-0.35, high=0.35, mean_truncated=0.0),
        m2=TruncatedExponential(loc=0.0, scale=5e-6, low=0.0, high=4e-5, mean_truncated=5e-6),
        r0=TruncatedNormal(loc=3000.0, scale=150.0, low=2600.0, high=3400.0, mean_truncated=3000.0),
        a_rtn=Uniform(low=0.0, high=1.0, mean_truncated=0.5),
        pink_alpha=0.012, pink_d=0.65, rtn_p01=2e-4, rtn_p10=1e-3), (1500, 5000), 4, (1, 1), 13,
        "3x shallower, late knees (many censored), 6x flatter saturated slope, wider c1, R0 ~ 3 kOhm, half the "
        "1/f amplitude with d = 0.65, rare RTN up to 1.0; reads every 4 pulses"),
)



def true_table(config: HfOxWeakReset, name: str) -> np.ndarray:
    """The values the simulator draws a parameter from (its 1024 quantiles; for c1, ln R0 + c1 over
    both tables, since only the sum shows in a trace), ascending."""
    q = lambda dist: np.sort(dist.quantile_table(1024).numpy())  # noqa: E731
    if name == "c1":
        return np.sort((np.log(q(config.r0))[:, None] + q(config.c1)[None, :]).ravel())
    return q(getattr(config, name))


def fitted_and_true(true: HfOxWeakReset, fit, name: str, pf) -> tuple[np.ndarray, np.ndarray]:
    """(fitted, true) ascending 1024-quantile tables of a parameter, c1 both as ln R0 + c1."""
    fitted = np.sort(pf.chosen.quantile_table(1024).numpy())
    return (fitted + math.log(fit.r0) if name == "c1" else fitted), true_table(true, name)


FAMILY_RATE = 0.01
"""The chance that a correct fit fails any comparison of one case's recovery table (``bonferroni_z``)."""

CENSORED_ABOVE = ("t_star",)
"""Parameters whose profile, within 1/2 of its maximum up to the grid's end, is a censored device (a knee
beyond its trace's censor point: Kaplan-Meier's variance, no error sd), not a wide error; elsewhere an open
end is a floor (m >= 0) or an outlier beyond the grid, and the likelihood's sd stands."""

NOT_DERIVED = {
    "a_rtn": "not derived: the detected devices are a selection (switches seen, A above a few 1/f sigma), and "
             "amplitude likelihoods open above (A bounded from below only) have no error sd; reference "
             "4 sqrt(q(1-q)/n)"}
"""Parameters without a derived bound, and why: ``recovery`` judges them by the reference k sqrt(q(1-q)/n)."""


def bonferroni_z(comparisons: int, rate: float = FAMILY_RATE) -> float:
    """The two-sided normal quantile at which ``comparisons`` tests of correct fits all pass with chance
    1 - ``rate`` or more (Bonferroni: each at rate / comparisons)."""
    return NormalDist().inv_cdf(1 - rate / (2 * comparisons))


def likelihood_moments(grid, loglik) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean and sd of its normalised likelihood exp(loglik) over ``grid`` (a flat prior's posterior);
    the sd at least the grid's resolution, spacing / sqrt(12)."""
    grid = np.asarray(grid, dtype=np.float64)
    ll = np.asarray(loglik, dtype=np.float64)
    w = np.exp(ll - ll.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    mean = w @ grid
    sd = np.sqrt(np.sum(w * (grid[None, :] - mean[:, None]) ** 2, 1))
    return mean, np.maximum(sd, abs(float(grid[1] - grid[0])) / math.sqrt(12) if len(grid) > 1 else 0.0)


def device_errors(grid, loglik) -> tuple[np.ndarray, np.ndarray]:
    """Each device's (row's) standard error s_i of a parameter from its profile log-likelihood on ``grid``: the sd
    of its normalised likelihood (``likelihood_moments``: a Gaussian profile's sd; where the profile has two
    peaks, a knee that could sit at either, their spread too, which the half-width at 1/2 below the maximum
    misses); and ``open_above``, whether the profile stays within 1/2 of its maximum from there up to the
    grid's upper end (``CENSORED_ABOVE``; at a floor, m >= 0, the sd is the truncated likelihood's)."""
    ll = np.asarray(loglik, dtype=np.float64)
    ll = ll - ll.max(1, keepdims=True)
    _, s = likelihood_moments(grid, ll)
    lowest_after = np.minimum.accumulate(ll[:, ::-1], axis=1)[:, ::-1]  # min over grid points j..end
    open_above = lowest_after[np.arange(len(ll)), np.argmax(ll, 1)] >= -0.5
    return s, open_above


def truth_knots(table, size: int = 257) -> np.ndarray:
    """``size`` points of an ascending table of mid-point quantiles at levels 0, 1/(size - 1), .., 1: the truth
    as a piecewise-linear CDF (equal mass between neighbours) for ``blurred``."""
    table = np.sort(np.asarray(table, dtype=np.float64))
    return np.interp(np.linspace(0.0, 1.0, size), (np.arange(len(table)) + 0.5) / len(table), table)


def _ndtr(z):
    return torch.special.ndtr(torch.as_tensor(z, dtype=torch.float64)).numpy()


def blurred(x, knots, s) -> tuple[np.ndarray, np.ndarray]:
    """G(x) and its density g(x): the piecewise-linear CDF through ``knots`` convolved with N(0, s_i^2), averaged
    over the devices' s (s = 0: the CDF itself, exactly). A cell [a, b] of mass m contributes
    m s / (b - a) (psi((x - a) / s) - psi((x - b) / s)), psi(z) = z Phi(z) + phi(z) (the integral of Phi)."""
    x = np.asarray(x, dtype=np.float64)[:, None, None]
    a, b = knots[None, None, :-1], knots[None, None, 1:]
    s = np.asarray(s, dtype=np.float64)[None, :, None]
    width = b - a
    wide = width > 1e-4 * s  # else the cell is a point at its middle (psi's difference would cancel)
    with np.errstate(divide="ignore", invalid="ignore"):
        za, zb, zm = (x - a) / s, (x - b) / s, (x - (a + b) / 2) / s
        psi = lambda z: z * _ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
        smooth_cdf = np.where(wide, s / width * (psi(za) - psi(zb)), _ndtr(zm))
        smooth_pdf = np.where(wide, (_ndtr(za) - _ndtr(zb)) / width,
                              np.exp(-0.5 * zm * zm) / (math.sqrt(2 * math.pi) * s))
        exact_cdf = np.where(width > 0, np.clip((x - a) / width, 0.0, 1.0), (x >= a).astype(np.float64))
        exact_pdf = np.where((width > 0) & (x >= a) & (x < b), 1 / width, 0.0)
    cdf = np.where(s > 0, smooth_cdf, exact_cdf).mean((1, 2))
    pdf = np.where(s > 0, smooth_pdf, exact_pdf).mean((1, 2))
    return cdf, pdf


def blur(knots, s, levels) -> tuple[np.ndarray, np.ndarray]:
    """At each level q, the blur F_true(x*) - q and the density ratio f_true(x*) / g(x*), x* = G^-1(q) (bisection:
    G is continuous and rising where the truth has mass). Both densities are the same central difference of
    their CDFs over two cells of the knots either side of x* (second order, and f / g = 1 exactly at s = 0)."""
    levels = np.asarray(levels, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if not len(s) or not s.any():
        return np.zeros(len(levels)), np.ones(len(levels))
    reach = 8 * float(s.max())
    lo, hi = np.full(len(levels), knots[0] - reach), np.full(len(levels), knots[-1] + reach)
    for _ in range(64):
        mid = (lo + hi) / 2
        low = blurred(mid, knots, s)[0] < levels
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    at = (lo + hi) / 2
    cell = np.clip(np.searchsorted(knots, at) - 1, 0, len(knots) - 2)
    h = np.maximum(2 * (knots[cell + 1] - knots[cell]), 1e-12 * max(abs(knots[-1] - knots[0]), 1e-300))
    exact = np.zeros(1)

    def density(errors):
        return (blurred(at + h, knots, errors)[0] - blurred(at - h, knots, errors)[0]) / (2 * h)

    f, g = density(exact), density(s)
    return blurred(at, knots, exact)[0] - levels, np.where(g > 0, f / np.maximum(g, 1e-300), 1.0)


def censored_variance(knots, censor, levels, points: int = 4096) -> np.ndarray:
    """V(q), n times the variance of the Kaplan-Meier estimate of F at the true quantile Q(q) where devices
    are seen only up to their censor points: (1 - q)^2 integral_0^q dp / ((1 - p)^2 C(Q(p))), C(u) the share
    of ``censor`` beyond u (midpoint rule; inf where no device reaches; ``censor`` None: q (1 - q))."""
    levels = np.asarray(levels, dtype=np.float64)
    if censor is None:
        return levels * (1 - levels)
    censor = np.sort(np.asarray(censor, dtype=np.float64))
    out = np.empty(len(levels))
    for i, q in enumerate(levels):
        p = (np.arange(points) + 0.5) / points * q
        at_risk = 1 - np.searchsorted(censor, np.interp(p, np.linspace(0, 1, len(knots)), knots),
                                      side="right") / len(censor)
        out[i] = math.inf if (at_risk <= 0).any() else (1 - q) ** 2 * q * float(np.mean(1 / ((1 - p) ** 2 * at_risk)))
    return out


def derived_bounds(knots, s, n: int, levels=LEVELS, censor=None, z: float | None = None) -> list[dict]:
    """The module docstring's bound at each level: ``blur`` (F_true(x*) - q); ``sd``, max(1, (f/g)(x*))
    sqrt(V(q) / n) (f/g widens it where the blur flattens the density, and is not let narrow it where the blur
    spreads a tail or puts x* beyond the truth's range, f = 0: no fit from noisy devices beats exact ones);
    ``sampling`` (z sd); ``bound`` (|blur| + z sd); ``n_eff`` (q (1 - q) / sd^2: the exact devices that would
    give that sd). knots: ``truth_knots``; s: the devices' errors (the censored left out); censor: every
    informing device's censor point, or None; z: default ``bonferroni_z`` of LEVELS x 5 parameters."""
    z = bonferroni_z(len(LEVELS) * 5) if z is None else z
    bias, ratio = blur(knots, s, levels)
    variance = censored_variance(knots, censor, levels)
    rows = []
    for q, b, r, v in zip(levels, bias, ratio, variance):
        sd = float(max(r, 1.0) * math.sqrt(v / max(n, 1)))  # noise adds no information: never below exact
        rows.append({"level": float(q), "blur": float(b), "sd": sd, "sampling": z * sd, "bound": abs(float(b)) + z * sd,
                     "n_eff": q * (1 - q) / sd ** 2 if sd > 0 else math.inf, "z": z})
    return rows


def _parameter_bounds(name: str, pf, fit, truth: np.ndarray, z: float) -> tuple[list[dict] | None, dict]:
    """The derived bounds of one fitted parameter (None where ``NOT_DERIVED``) and what they rest on: devices,
    censored ones, the devices' typical error against the truth's spread (median s_i / sd)."""
    informative = pf.loglik.min(1) < -2.0  # as ``populations.fit_distribution`` counts them
    s, open_above = device_errors(pf.grid, pf.loglik[informative])
    censored = open_above if name in CENSORED_ABOVE else np.zeros(len(s), dtype=bool)
    seen = s[~censored & np.isfinite(s)]
    info = {"censored": int(censored.sum()), "device_error": float(np.median(seen) / np.std(truth)) if len(seen)
            else math.nan}
    if name in NOT_DERIVED:
        return None, info
    censor = None
    if name in CENSORED_ABOVE:
        ends = [censor_point(np.asarray(t, dtype=np.float64)) for t in fit.traces.pulses]
        censor = np.asarray(ends)[informative]
    return derived_bounds(truth_knots(truth), seen, max(pf.informative, 1), censor=censor, z=z), info


def recovery(true: HfOxWeakReset, fit, k: float = 4.0, device_truth: dict | None = None) -> list[dict]:
    """Each fitted parameter's quantiles q in LEVELS read through the true CDF: F_true(x_q) - q (``error``),
    against the derived bound (module docstring; its parts ``blur``, ``sampling``, ``sd``, ``n_eff``), or where
    it is ``NOT_DERIVED`` the ``reference`` k sqrt(q (1 - q) / n), n the devices that inform the parameter.
    For A_rtn the truth is taken above the fitted lower end (amplitudes of a few 1/f sigma cannot be seen,
    and do not matter). ``device_truth`` (the simulated devices' values): add each parameter's
    ``calibration`` (``error_calibration``)."""
    z = bonferroni_z(len(LEVELS) * len(fit.parameters))
    calibration = error_calibration(fit, device_truth) if device_truth is not None else {}
    rows = []
    for name, pf in fit.parameters.items():
        fitted, truth = fitted_and_true(true, fit, name, pf)
        floor = 0.0
        if name == "a_rtn":
            floor = np.searchsorted(truth, pf.chosen.low, side="left") / len(truth)
        n = max(pf.informative, 1)
        derived, info = _parameter_bounds(name, pf, fit, truth[truth >= pf.chosen.low] if floor else truth, z)
        for i, q in enumerate(LEVELS):
            x = fitted[min(int(q * 1024), 1023)]
            f = np.searchsorted(truth, x, side="right") / len(truth)
            f = (f - floor) / (1 - floor)
            reference = k * math.sqrt(q * (1 - q) / n)
            parts = derived[i] if derived else {"blur": math.nan, "sd": math.sqrt(q * (1 - q) / n),
                                                "sampling": math.nan, "n_eff": math.nan, "bound": reference}
            rows.append({"parameter": name, "level": q, "error": f - q, "devices": n, "family": pf.family,
                         "true_family": type(getattr(true, name)).__name__, **parts, "reference": reference,
                         "derived": derived is not None, "z": z, "why": NOT_DERIVED.get(name, ""), **info,
                         "calibration": calibration.get(name)})
    return rows


def error_calibration(fit, device_truth: dict) -> dict:
    """Per parameter, whether each device's error s_i (``device_errors``) is its actual one: over the devices
    with an error (not censored), z_i = (likelihood mean - true value) / s_i, its robust sd (1.4826 x the
    median absolute deviation; 1: s_i is right, above 1: the blur is underestimated) and the share of devices
    with |z_i| > 4 (gross errors, which the bound does not model)."""
    out = {}
    for name, pf in fit.parameters.items():
        true = (device_truth["ln_r0"] + device_truth["c1"]) if name == "c1" else np.asarray(device_truth[name])
        grid = pf.grid + (math.log(fit.r0) if name == "c1" else 0.0)
        if name == "a_rtn":
            if fit.rtn.detected.sum() < 2:
                continue
            true = true[fit.rtn.detected]
        s, open_above = device_errors(grid, pf.loglik)
        centre, _ = likelihood_moments(grid, pf.loglik)
        keep = (pf.loglik.min(1) < -2.0) & np.isfinite(s) & ~(open_above & (name in CENSORED_ABOVE))
        zs = (centre - true)[keep] / s[keep]
        out[name] = {"robust_sd": float(1.4826 * np.median(np.abs(zs - np.median(zs)))),
                     "gross": float(np.mean(np.abs(zs) > 4)), "devices": int(keep.sum())}
    return out


def noise_recovery(true: HfOxWeakReset, fit, k: float = 4.0) -> list[dict]:
    """alpha, d, p01, p10: fitted against true, with a bound on |ln(fitted / true)|: for p01 and p10
    k / sqrt(switches per direction) plus 0.15 (the tempered chain merges short dwells,
    ``rramk.fitting.rtn``); for alpha 0.05, for d 0.05 in d."""
    half = max(fit.rtn.transitions / 2, 1.0)
    rows = []
    for name, bound in (("pink_alpha", 0.05), ("pink_d", 0.05), ("rtn_p01", k / math.sqrt(half) + 0.15),
                        ("rtn_p10", k / math.sqrt(half) + 0.15)):
        t, f = getattr(true, name), getattr(fit.config, name)
        error = f - t if name == "pink_d" else (math.log(f / t) if f > 0 else -math.inf)  # 0: read as white noise
        rows.append({"parameter": name, "true": t, "fitted": f, "error": error, "bound": bound})
    return rows


_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t975(df: int) -> float:
    """Student's t quantile 0.975 (tabulated to df 10, then Cornish-Fisher, within 3e-3; fitting sits below
    ``rramk.studies.welch``, which computes it for the studies)."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def across_replicates(rows_per_replicate: list[list[dict]]) -> list[dict]:
    """Per parameter and level (or noise parameter), the errors of every replicate's fit: mean, sd, the
    root mean square over sqrt(q (1 - q) / n) (``inflation``: 1 for exact devices' sampling alone), whether
    the mean differs from 0 beyond t_{0.975, R-1} sd / sqrt(R) (a bias the replicates resolve); where the
    rows carry derived bounds, their sampling sd sqrt(mean(sd^2)) (``derived_sd``) and the measured RMS over it
    (``explained``: near 1 where sampling, widened by the devices' errors, accounts for the error; the blur is
    left out, as the fit deconvolves it: it is an allowance, not an expected error), and the replicates beyond
    their bound (``beyond``)."""
    keys = [(r["parameter"], r.get("level")) for r in rows_per_replicate[0]]
    out = []
    for i, (name, level) in enumerate(keys):
        rows = [replicate[i] for replicate in rows_per_replicate]
        errors = np.array([r["error"] for r in rows])
        count = len(errors)
        mean, sd = float(errors.mean()), float(errors.std(ddof=1)) if count > 1 else math.nan
        row = {"parameter": name, "level": level, "replicates": count, "mean": mean, "sd": sd,
               "bias_resolved": bool(count > 1 and abs(mean) > t975(count - 1) * sd / math.sqrt(count))}
        if level is not None:
            n = np.mean([r["devices"] for r in rows])
            rms = float(np.sqrt(np.mean(errors ** 2)))
            row["inflation"] = rms / math.sqrt(level * (1 - level) / n)
            if all(r.get("derived") for r in rows):
                row["derived_sd"] = float(np.sqrt(np.mean([r["sd"] ** 2 for r in rows])))
                row["explained"] = rms / row["derived_sd"]
            if all("bound" in r for r in rows):
                row["beyond"] = int(sum(abs(r["error"]) > r["bound"] for r in rows))
        out.append(row)
    return out


TAIL_LEVELS = (0.95, 0.99)


def tails(true: HfOxWeakReset, fit) -> list[dict]:
    """The upper tail of each fitted parameter against the truth: the true and fitted quantiles at
    TAIL_LEVELS and the ends of both ranges, F_true at the fitted upper end (``reached``; 1: the fitted range
    reaches the true one) and what n informative devices can show (``visible`` = 1 - 2 / (n + 1): the largest
    of n draws sits at F ~ 1 - 1/(n + 1)). The LEVELS table stops at q = 0.9, where a few devices decide."""
    rows = []
    for name, pf in fit.parameters.items():
        fitted, truth = fitted_and_true(true, fit, name, pf)
        at = lambda table, q: float(table[min(int(q * len(table)), len(table) - 1)])  # noqa: E731
        rows.append({"parameter": name, **{f"true_{q}": at(truth, q) for q in TAIL_LEVELS},
                     **{f"fitted_{q}": at(fitted, q) for q in TAIL_LEVELS}, "true_high": float(truth[-1]),
                     "fitted_high": float(fitted[-1]),
                     "reached": float(np.searchsorted(truth, fitted[-1], side="right") / len(truth)),
                     "visible": 1 - 2 / (max(pf.informative, 1) + 1)})
    return rows
