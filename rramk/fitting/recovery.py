"""Known devices, and how close a fit comes to them: the proof of ``python -m rramk.fit --demo``.

``DEMO_CASES``: the published preset and two far from it, simulated by rramk (the truth is known).
``recovery``: each fitted parameter's quantiles q read through the true CDF, F_true(x_q) - q,
against k sqrt(q (1 - q) / n) with n the devices that inform it; ``noise_recovery``: the 1/f and
RTN numbers against the truth. (ln R of traces against devices simulated from a preset, which
needs no truth: ``rramk.fitting.adequacy``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..device.config import HfOxWeakReset
from ..device.distributions import TruncatedExponential, TruncatedLognormal, TruncatedNormal, Uniform

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


def recovery(true: HfOxWeakReset, fit, k: float = 4.0) -> list[dict]:
    """Each fitted parameter's quantiles q in LEVELS read through the true CDF: F_true(x_q) - q, and
    the bound k sqrt(q (1 - q) / n) with n the devices that inform it. For A_rtn the truth is taken
    above the fitted lower end (amplitudes of a few 1/f sigma cannot be seen, and do not matter)."""
    rows = []
    for name, pf in fit.parameters.items():
        fitted, truth = fitted_and_true(true, fit, name, pf)
        floor = 0.0
        if name == "a_rtn":
            floor = np.searchsorted(truth, pf.chosen.low, side="left") / len(truth)
        n = max(pf.informative, 1)
        for q in LEVELS:
            x = fitted[min(int(q * 1024), 1023)]
            f = np.searchsorted(truth, x, side="right") / len(truth)
            f = (f - floor) / (1 - floor)
            bound = k * math.sqrt(q * (1 - q) / n)
            rows.append({"parameter": name, "level": q, "error": f - q, "bound": bound, "devices": n,
                         "family": pf.family, "true_family": type(getattr(true, name)).__name__})
    return rows


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
    root mean square over sqrt(q (1 - q) / n) (the inflation of the quantile's error by each device's
    estimation error: 1 with exact per-device values), and whether the mean differs from 0 beyond
    t_{0.975, R-1} sd / sqrt(R) (a bias the replicates resolve)."""
    keys = [(r["parameter"], r.get("level")) for r in rows_per_replicate[0]]
    out = []
    for i, (name, level) in enumerate(keys):
        errors = np.array([rows[i]["error"] for rows in rows_per_replicate])
        count = len(errors)
        mean, sd = float(errors.mean()), float(errors.std(ddof=1)) if count > 1 else math.nan
        row = {"parameter": name, "level": level, "replicates": count, "mean": mean, "sd": sd,
               "bias_resolved": bool(count > 1 and abs(mean) > t975(count - 1) * sd / math.sqrt(count))}
        if level is not None:
            n = np.mean([rows[i]["devices"] for rows in rows_per_replicate])
            row["inflation"] = float(np.sqrt(np.mean(errors ** 2)) / math.sqrt(level * (1 - level) / n))
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
