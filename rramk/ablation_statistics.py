"""The numbers and sentences of an ablation study: per configuration, per imperfection, per epoch.

A study is {configuration label: [run summary, one per seed]} (rramk.ablation_report.load_summaries).
Rows give each configuration's final test accuracy over seeds and its drop against the ideal BNN;
costs give each imperfection's cost in both views of the study (added alone to ``none``, removed
alone from ``all``) with standard errors over seeds; the verdict, the interaction and the
identical-to-none sentences say in words what the costs show; curves follow accuracy per epoch.
"""

from __future__ import annotations

import math
import statistics

from .ablation_configs import ABLATIONS


def ablation_rows(study: dict) -> list[dict]:
    """Per configuration with runs, in the order of ABLATIONS: final test accuracy over seeds (mean, std,
    range), the mean best epoch, the drop against the ideal mean, and the devices at the end."""
    ideal = [s["final_test_accuracy"] for s in study.get("ideal", [])]
    ideal_mean = statistics.fmean(ideal) if ideal else None
    rows = []
    for label in ABLATIONS:
        runs = study.get(label)
        if not runs:
            continue
        acc = [s["final_test_accuracy"] for s in runs]
        mean = statistics.fmean(acc)
        std = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        rows.append({"config": label, "imperfections": runs[0]["imperfections"], "seeds": len(acc), "mean": mean,
                     "std": std, "min": min(acc), "max": max(acc),
                     "drop": (ideal_mean - mean) if ideal_mean is not None else float("nan"),
                     "best": statistics.fmean([s.get("best_test_accuracy", float("nan")) for s in runs]),
                     "past_t_star": statistics.fmean([s["history"][-1].get("fraction_past_t_star", float("nan"))
                                                      for s in runs]) if runs[0]["history"] else float("nan"),
                     "pulses": statistics.fmean([s["history"][-1].get("pulses_per_device", float("nan"))
                                                 for s in runs]) if runs[0]["history"] else float("nan")})
    return rows


def imperfection_costs(rows: list[dict]) -> list[dict]:
    """Accuracy cost of each imperfection, in both views of the study, with standard errors.

    added: acc(none) - acc(only X), the cost of X on the mean device alone;
    removed: acc(all but X) - acc(all), what removing X from the full model gives back.
    Standard errors are over seeds: sqrt(s1^2/n1 + s2^2/n2) (nan with one seed).
    """
    by_name = {r["config"]: r for r in rows}

    def diff(a: str, b: str):
        if a not in by_name or b not in by_name:
            return float("nan"), float("nan")
        ra, rb = by_name[a], by_name[b]
        se = math.sqrt(ra["std"] ** 2 / ra["seeds"] + rb["std"] ** 2 / rb["seeds"])
        return ra["mean"] - rb["mean"], se

    costs = []
    for name in ABLATIONS:
        if not name.startswith("only "):
            continue
        x = name.removeprefix("only ")
        added, added_se = diff("none", f"only {x}")
        removed, removed_se = diff(f"all but {x}", "all")
        costs.append({"imperfection": x, "added": added, "added_se": added_se, "removed": removed,
                      "removed_se": removed_se})
    return costs


def verdict(costs: list[dict]) -> list[str]:
    """Plain sentences: which imperfection is the most damaging, and is the difference resolved?

    A cost is resolved when it exceeds 2 standard errors over seeds; with one seed per cell there
    is no error bar and the sentence says so.
    """
    usable = [c for c in costs if not math.isnan(c["added"]) and not math.isnan(c["removed"])]
    if not usable:
        return []

    def resolved(cost, se):
        return not math.isnan(se) and cost > 2 * se

    lines, worst = [], {}
    for view, key in (("added alone to the mean device", "added"), ("removed alone from the full model", "removed")):
        w = worst[key] = max(usable, key=lambda c: c[key])
        cost, se = w[key], w[f"{key}_se"]
        if math.isnan(se):
            lines.append(f"- {view}: **{w['imperfection']}** costs the most, {100 * cost:+.2f} points "
                         "(one seed: no error bar).")
        elif resolved(cost, se):
            runner = max((c for c in usable if c is not w), key=lambda c: c[key], default=None)
            lead = ""
            if runner is not None:
                gap, gap_se = cost - runner[key], math.hypot(se, runner[f"{key}_se"])
                lead = (f"; ahead of **{runner['imperfection']}** by {100 * gap:+.2f} ± {100 * gap_se:.2f}"
                        + ("" if resolved(gap, gap_se) else ", not resolved"))
            lines.append(f"- {view}: **{w['imperfection']}** costs the most, {100 * cost:+.2f} points "
                         f"(more than 2 standard errors: ± {100 * se:.2f}){lead}.")
        else:
            lines.append(f"- {view}: no imperfection costs accuracy beyond 2 standard errors (largest: "
                         f"**{w['imperfection']}**, {100 * cost:+.2f} ± {100 * se:.2f} points).")
    helps = [c["imperfection"] for c in usable if c["added"] < 0 and resolved(-c["added"], c["added_se"])]
    if helps:
        lines.append(f"- at this budget, adding {', '.join(helps)} alone *raises* accuracy beyond 2 standard errors.")
    d2d_worst = all(w["imperfection"] == "d2d" for w in worst.values())
    d2d_resolved = all(resolved(w[k], w[f"{k}_se"]) for k, w in worst.items())
    if d2d_worst and d2d_resolved:
        lines.append("- **Most damaging: device-to-device variability (d2d)**, as in the published study.")
    elif d2d_worst:
        lines.append("- d2d costs the most in both views, as in the published study, but the difference is not "
                     "resolved by these seeds.")
    else:
        lines.append("- The published study found device-to-device variability (d2d) most damaging; this study does "
                     "not single it out in both views: the costs above are the evidence.")
    return lines


def interaction(rows: list[dict], costs: list[dict]) -> list[str]:
    """Compare what all imperfections cost together (none - all) with the sum of their costs alone."""
    by_name = {r["config"]: r for r in rows}
    if "none" not in by_name or "all" not in by_name or any(math.isnan(c["added"]) for c in costs):
        return []
    none, full = by_name["none"], by_name["all"]
    together = none["mean"] - full["mean"]
    alone = sum(c["added"] for c in costs)
    se = math.sqrt(none["std"] ** 2 / none["seeds"] + full["std"] ** 2 / full["seeds"])
    line = (f"- together, the imperfections cost {100 * together:+.2f} points against the mean device (none - all"
            + ("" if math.isnan(se) else f", ± {100 * se:.2f}") + f"); the sum of their costs alone is "
            f"{100 * alone:+.2f}.")
    if together > 2 * max(alone, 0) and (math.isnan(se) or together > 2 * se):
        line += " Most of the loss comes from their combination, not from any one of them."
    return [line]


def identical_to_none(study: dict) -> list[str]:
    """A sentence for each imperfection that, alone, trained exactly like ``none`` in every seed."""
    def by_seed(label):
        return {s["seed"]: s["final_test_accuracy"] for s in study.get(label, [])}

    none = by_seed("none")
    lines = []
    for label in ABLATIONS:
        if label.startswith("only "):
            alone = by_seed(label)
            if alone and all(seed in none and none[seed] == acc for seed, acc in alone.items()):
                lines.append(f"- {label.removeprefix('only ')} alone gives exactly the accuracy of none in every seed "
                             f"({len(alone)}): on identical, noise-free devices it changes no weight "
                             "(W = sign(t_BL - t_BLb) for any increasing ln R(t)).")
    return lines


def learning_curves(study: dict) -> dict[str, dict]:
    """Per configuration: epoch numbers and, over seeds, the mean/min/max test accuracy and the mean
    fraction of devices past t*, for the epochs every seed of that configuration has finished."""
    curves = {}
    for label in ABLATIONS:
        runs = study.get(label)
        if not runs or not all(s["history"] for s in runs):
            continue
        n = min(len(s["history"]) for s in runs)
        acc = [[s["history"][e]["test_accuracy"] for s in runs] for e in range(n)]
        past = [[s["history"][e].get("fraction_past_t_star", float("nan")) for s in runs] for e in range(n)]
        curves[label] = {"epoch": [runs[0]["history"][e]["epoch"] for e in range(n)],
                         "mean": [statistics.fmean(a) for a in acc], "min": [min(a) for a in acc],
                         "max": [max(a) for a in acc], "past_t_star": [statistics.fmean(p) for p in past],
                         "seeds": len(runs)}
    return curves
