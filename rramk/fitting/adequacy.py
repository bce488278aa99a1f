"""Does the fitted device family describe the traces at all?

A fit always returns numbers: traces of a device of another family (a PCM cell whose conductance
approaches a bound, an ECRAM cell stepping both ways) come out of the HfOx weak-RESET fit as a
preset that reproduces none of the measured population. So every fit is checked against its own
traces: the read quantity (ln R; a soft-bounds fit's conductance) of the traces against devices simulated
from the fitted preset, quantile by
quantile (q = 0.1, 0.5, 0.9) at pulse counts spread over the traces (``band_counts``).

``quantile_checks``: per count and q, F_sim(the traces' q-quantile) - q, against the bound
k sqrt(q (1 - q) (1/n + 1/N)) (n traces, N simulated devices; k = 4). ``check_family``: the verdict.
A check fails where the error exceeds both its bound and ``FLOOR`` (5 percentile points: with
thousands of measured devices the bound alone would flag misfits too small to matter); the family
describes the traces when no check fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..device.config import HfOxWeakReset

FAMILY = "HfOx weak RESET (two slopes, rramk.HfOxWeakReset)"
"""The HfOx family in words (``soft_bounds_fit``'s: SOFT_BOUNDS)."""
SOFT_BOUNDS = "soft bounds (conductance, rramk.device.soft_bounds.SoftBounds)"
LEVELS = (0.1, 0.5, 0.9)
K = 4.0
FLOOR = 0.05
POINTS = 8


def band_counts(traces, points: int = 80, min_devices: int = 20) -> list[int]:
    """Pulse counts where at least ``min_devices`` devices have a read, at most ``points`` of them."""
    counts, n = np.unique(np.concatenate(traces.pulses), return_counts=True)
    counts = counts[n >= min_devices]
    if len(counts) > points:
        counts = counts[np.unique(np.linspace(0, len(counts) - 1, points).round().astype(int))]
    return [int(c) for c in counts]


def quantile_checks(traces, config: HfOxWeakReset, at, *, devices: int = 4000, seed: int = 1,
                    k: float = K, read_noise: float = 0.0, quantity=np.log, relative: bool = False) -> list[dict]:
    """ln R of the traces against ``devices`` simulated from ``config`` at the pulse counts ``at``: per count
    (with at least 20 reads) and q in LEVELS, F_sim(data quantile) - q and its bound k sqrt(q (1 - q) (1/n + 1/N)).
    ``read_noise``: the sd of the white noise of each read the fit found (``PresetFit.read_noise``), added to the
    simulated reads as the instrument adds it to the measured ones. ``quantity``: the config's read quantity
    of a resistance (ln R; a fitted soft-bounds preset's: ``soft_bounds_fit.conductance``); ``relative``: the
    read noise is proportional to the read (its sd relative)."""
    from ..device.traces import reads_at, simulate_reads

    data = reads_at(traces, at, quantity)
    sim = simulate_reads(config, [c for c in at if len(data[c])], devices, seed=seed)
    if read_noise:
        rng = np.random.default_rng(seed)
        sim = {count: values * np.exp(rng.normal(0.0, read_noise, values.shape)) if relative
               else values + rng.normal(0.0, read_noise, values.shape) for count, values in sim.items()}
    rows = []
    for count, values in data.items():
        if len(values) < 20:
            continue
        s = np.sort(sim[count])
        for q in LEVELS:
            x = np.quantile(values, q)
            f = np.searchsorted(s, x) / len(s)
            rows.append({"pulses": count, "level": q, "data": x, "simulated": float(np.quantile(s, q)),
                         "error": f - q, "bound": k * math.sqrt(q * (1 - q) * (1 / len(values) + 1 / len(s))),
                         "devices": len(values)})
    return rows


def fails(row: dict) -> bool:
    """A check fails beyond its bound and beyond FLOOR."""
    return abs(row["error"]) > max(row["bound"], FLOOR)


@dataclass(frozen=True)
class Adequacy:
    """The checks of one fit and their verdict; ``family``: the family fitted, in words."""

    rows: tuple[dict, ...]
    family: str = FAMILY

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if fails(r)]

    @property
    def describes(self) -> bool:
        return bool(self.rows) and not self.failed

    def sentence(self) -> str:
        """One line for the fit's output: the verdict, the worst check, and what to do when it fails."""
        if not self.rows:
            return "not checked: no pulse count has reads of 20 devices"
        worst = max(self.rows, key=lambda r: abs(r["error"]) / max(r["bound"], FLOOR))  # nearest to failing
        where = (f"worst at {worst['pulses']} pulses, q = {worst['level']:g}: the traces' quantile lies at the "
                 f"simulated population's {100 * (worst['level'] + worst['error']):.0f} % "
                 f"(bound ±{100 * max(worst['bound'], FLOOR):.0f} points)")
        if self.describes:
            return (f"the {self.family} family describes these traces: {len(self.rows)} quantile checks within "
                    f"their bounds ({where})")
        return (f"the {self.family} family does NOT describe these traces: {len(self.failed)} of {len(self.rows)} "
                f"quantile checks fail ({where})")

    def record(self) -> dict:
        """For the preset file's ``fit`` section."""
        return {"family": self.family, "describes": self.describes, "checks": len(self.rows),
                "failed": len(self.failed), "rule": f"|F_sim(traces' q-quantile) - q| <= max({K:g} sd, {FLOOR:g}) "
                                                    f"at q = {', '.join(map(str, LEVELS))}",
                "worst_error": max((abs(r["error"]) for r in self.rows), default=None)}


def check_family(traces, config: HfOxWeakReset, *, points: int = POINTS, devices: int = 4000,
                 seed: int = 1, read_noise: float = 0.0, quantity=np.log, family: str = FAMILY,
                 relative: bool = False) -> Adequacy:
    """The quantile checks of ``config`` (read with white noise of sd ``read_noise``, in its read ``quantity``)
    against ``traces`` at ``points`` pulse counts, with their verdict."""
    return Adequacy(tuple(quantile_checks(traces, config, band_counts(traces, points=points), devices=devices,
                                          seed=seed, read_noise=read_noise, quantity=quantity, relative=relative)),
                    family)
