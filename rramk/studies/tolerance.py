"""A knob's sweep read as a tolerance: ``sensitivity`` (the loss against the mean model per swept value),
``tolerance`` (the largest value within a loss, interpolated) and ``tolerance_interval`` (its bootstrap
interval over the seeds of every cell, open ends said).
"""

from __future__ import annotations

import math
import random
import statistics

from rramk.studies.configs import Study
from rramk.studies.statistics import difference
from rramk.studies.welch import LEVEL

def sensitivity(rows: list[dict], study: Study, measures: dict[str, float]) -> list[dict]:
    """The sweep of a sensitivity study by factor: accuracy (mean, standard error, seeds), its measure
    (``measures``: label -> the knob in the unit a device engineer measures) and the loss against the
    mean model, mean(mean model) - mean(this), with its standard error."""
    points = []
    for r in rows:
        if r["config"] not in study.values:
            continue
        loss, loss_se = difference(rows, study.mean, r["config"]) if r["config"] != study.mean else (0.0, 0.0)
        points.append({"config": r["config"], "factor": study.values[r["config"]],
                       "measure": measures.get(r["config"], float("nan")), "mean": r["mean"], "se": r["se"],
                       "seeds": r["seeds"], "loss": loss, "loss_se": loss_se, "past_t_star": r["past_t_star"],
                       "values": r["values"], "is_mean": r["config"] == study.mean})
    return sorted(points, key=lambda p: p["factor"])


def tolerance(points: list[dict], points_of_loss: float, key: str = "factor", shift: float = 0.0) -> dict:
    """The largest knob value whose loss stays within ``points_of_loss`` (a fraction: 0.005 = 0.5 point).

    Going up the sweep from its smallest factor, the first point whose loss (+ ``shift`` standard
    errors) exceeds the tolerance ends the range; the answer is interpolated linearly between it and
    the point before, in ``key`` (``factor`` or ``measure``). Returns {"value", "kind"}: kind
    ``interpolated``, ``beyond`` (no point exceeds it: value is the largest swept, a lower bound) or
    ``none`` (the smallest swept point already exceeds it).
    """
    previous = None
    for p in points:
        loss = p["loss"] + shift * (0.0 if math.isnan(p["loss_se"]) else p["loss_se"])
        if loss > points_of_loss:
            if previous is None:
                return {"value": p[key], "kind": "none"}
            q, q_loss = previous
            t = (points_of_loss - q_loss) / (loss - q_loss)
            return {"value": q[key] + t * (p[key] - q[key]), "kind": "interpolated"}
        previous = (p, loss)
    return {"value": points[-1][key] if points else float("nan"), "kind": "beyond" if points else "none"}


def tolerance_interval(points: list[dict], mean_values: list[float], points_of_loss: float, key: str = "factor",
                       draws: int = 2000, level: float = LEVEL, seed: int = 0) -> dict:
    """The bootstrap interval of ``tolerance``: resample the seeds of every cell (the mean model's
    ``mean_values`` and each point's ``values``, with replacement, independently), read the tolerance
    again, ``draws`` times (a fixed generator: the same interval every time), and take the central
    ``level`` of the values read. {"low", "high", "open_low", "open_high"}: an end is open when more
    than (1 - level) / 2 of the draws read no tolerance at all (``none``: below the smallest factor
    swept) or only a bound (``beyond``: past the largest): the data do not bound it on that side.
    With one seed in a cell there is nothing to resample: nan."""
    if len(mean_values) < 2 or any(len(p["values"]) < 2 for p in points):
        return {"low": math.nan, "high": math.nan, "open_low": True, "open_high": True}
    rng = random.Random(seed)
    reads = []
    for _ in range(draws):
        base = statistics.fmean(rng.choices(mean_values, k=len(mean_values)))
        resampled = [{**p, "loss_se": math.nan, "loss": 0.0 if p["is_mean"] else
                      base - statistics.fmean(rng.choices(p["values"], k=len(p["values"])))} for p in points]
        t = tolerance(resampled, points_of_loss, key)
        reads.append(-math.inf if t["kind"] == "none" else math.inf if t["kind"] == "beyond" else t["value"])
    reads.sort()
    tail = (1 - level) / 2
    low, high = reads[int(tail * draws)], reads[min(int((1 - tail) * draws), draws - 1)]
    return {"low": low, "high": high, "open_low": math.isinf(low), "open_high": math.isinf(high)}
