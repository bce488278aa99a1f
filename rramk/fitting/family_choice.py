"""Which device family describes the traces: each family's fit, their goodness of fit side by side, one chosen.

Each family is fitted in its own read quantity (HfOx: ln R; soft bounds: the conductance); their Gaussian
log-likelihoods are of the same data, the resistances in ohm (each with the Jacobian of its quantity:
-ln R for ln R, ln(1e6 / R^2) for 1e6 / R), so AIC and BIC compare them (free parameters: HfOx 4 per
device (b, m1, m2, t*), soft bounds 3 (g0, g_max, rate), and each one noise sd). A family is eligible when
its adequacy checks pass (``rramk.fitting.adequacy``: the traces' quantiles against its simulated devices);
the eligible one of least criterion is chosen; where none is eligible, the least criterion is chosen and the
choice says plainly that no family of rramk describes the traces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def hfox_log_likelihood(fit) -> tuple[float, int, int]:
    """(log-likelihood of the resistances, free parameters, reads) of an HfOx ``PresetFit``: its residuals of ln R
    (mean and 1/f mean removed) as white Gaussian noise of one pooled sd."""
    reads = sum(len(r) for r in fit.residuals)
    k = 4 * len(fit.residuals) + 1
    sse = sum(float(np.sum(np.asarray(r) ** 2)) for r in fit.residuals)
    sigma2 = sse / max(reads - k + 1, 1)
    jacobian = -sum(float(np.sum(np.log(np.asarray(r, dtype=np.float64)))) for r in fit.traces.resistance)
    return -0.5 * reads * math.log(2 * math.pi * sigma2) - 0.5 * sse / sigma2 + jacobian, k, reads


@dataclass
class FamilyRow:
    """One family's fit: its name, log-likelihood, free parameters, reads, AIC, BIC and adequacy."""

    family: str
    log_likelihood: float
    parameters: int
    reads: int
    adequacy: object  # rramk.fitting.adequacy.Adequacy, or None where the family gave no preset
    note: str = ""

    @property
    def aic(self) -> float:
        return -2 * self.log_likelihood + 2 * self.parameters

    @property
    def bic(self) -> float:
        return -2 * self.log_likelihood + self.parameters * math.log(self.reads)

    @property
    def describes(self) -> bool:
        return self.adequacy is not None and self.adequacy.describes


@dataclass
class FamilyChoice:
    """The families' rows and the chosen one (module docstring)."""

    rows: list
    chosen: FamilyRow
    criterion: str

    @property
    def describes(self) -> bool:
        return self.chosen.describes

    def sentence(self) -> str:
        others = ", ".join(f"{r.family}: {getattr(r, self.criterion):.1f}" for r in self.rows
                           if r.adequacy is not None)
        if self.describes:
            return (f"chosen: {self.chosen.family} (it describes the traces; {self.criterion.upper()} {others}; "
                    f"lower is better)")
        return (f"NO device family of rramk describes these traces (each fails its quantile checks); the least "
                f"{self.criterion.upper()} is {self.chosen.family} ({others}), written for inspection only: a study "
                f"run on it answers for another device than the one measured")

    def table(self) -> str:
        lines = ["| family | log-likelihood (ohm) | free parameters | AIC | BIC | quantile checks failed |",
                 "|---|---|---|---|---|---|"]
        for r in self.rows:
            checks = "no preset: " + r.note if r.adequacy is None else f"{len(r.adequacy.failed)} of {len(r.adequacy.rows)}"
            mark = " (chosen)" if r is self.chosen else ""
            lines.append(f"| {r.family}{mark} | {r.log_likelihood:.1f} | {r.parameters} | {r.aic:.1f} | {r.bic:.1f} "
                         f"| {checks} |")
        return "\n".join(lines)

    def record(self) -> dict:
        return {"criterion": self.criterion, "chosen": self.chosen.family, "describes": self.describes,
                "families": [{"family": r.family, "log_likelihood": r.log_likelihood, "parameters": r.parameters,
                              "aic": r.aic, "bic": r.bic, "describes": r.describes} for r in self.rows]}


def choose_family(rows: list, criterion: str = "aic") -> FamilyChoice:
    """The eligible family of least ``criterion`` (module docstring)."""
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion: expected aic or bic, got {criterion!r}")
    fitted = [r for r in rows if r.adequacy is not None]
    if not fitted:
        raise ValueError("rows: no family gave a preset")
    eligible = [r for r in fitted if r.describes] or fitted
    return FamilyChoice(rows, min(eligible, key=lambda r: getattr(r, criterion)), criterion)
