"""The numbers and sentences of an ablation study: per configuration, per imperfection, per knob, per epoch.

A study's runs are {label: [run summary, one per seed]} (rramk.reporting.ablation.study_runs), under
the labels of a ``Study`` (rramk.studies.configs). Rows give each configuration's final test
accuracy over seeds and its drop against the ideal BNN; costs give each ranked imperfection's cost
in both views of the study (added alone to the mean model, removed alone from the full model) with
standard errors over seeds; the verdict, the interaction and the saturation sentences say in words
what the costs show; ``lr_rows`` reads a learning-rate study (a knob's sweep: rramk.studies.tolerance);
curves follow accuracy per epoch. Every standard error is over seeds, sqrt(s1^2/n1 + s2^2/n2 + ...)
for a difference of means (nan with one seed: no error bar); a claim is "resolved" when Welch's
two-sided 95 % interval excludes 0 (rramk.studies.welch).
"""

from __future__ import annotations

import math
import statistics

from rramk.studies.configs import STUDIES, Study
from rramk.studies.welch import LEVEL, welch

ADDED_VIEW = "added alone to the mean model"
SELECTION_RULES = {"validation": "test accuracy at the epoch of highest validation accuracy",
                   "last epoch": "test accuracy at the last epoch (these runs have no validation split)"}
"""What a run's reported accuracy is, by the ``selection`` its summary records (rramk.training.loop)."""


def reported_accuracy(summary: dict) -> float:
    """A run's reported test accuracy: at the epoch chosen on validation, or the last epoch for runs
    without a validation split (summaries older than the split record no ``selection``)."""
    if summary.get("selection") == "validation":
        return summary["selected_test_accuracy"]
    return summary["final_test_accuracy"]


def best_validation(summary: dict) -> float:
    """A run's highest validation accuracy over its epochs (nan without a validation split)."""
    values = [h["validation_accuracy"] for h in summary.get("history", []) if h.get("validation_accuracy") is not None]
    return max(values) if values else math.nan


def choose_lr(runs_by_lr: dict[float, dict]) -> dict[str, float]:
    """Per configuration, the pulse learning rate of the highest mean validation accuracy over seeds
    (``best_validation``; the smaller rate of equals): {label: lr}, for labels whose runs at every rate
    have a validation split. Test accuracy never chooses."""
    chosen = {}
    labels = {label for runs in runs_by_lr.values() for label in runs}
    for label in sorted(labels):
        means = {lr: statistics.fmean(best_validation(s) for s in runs[label])
                 for lr, runs in sorted(runs_by_lr.items()) if runs.get(label)}
        if means and not any(math.isnan(v) for v in means.values()):
            chosen[label] = max(means, key=lambda lr: (means[lr], -lr))
    return chosen


def selection_rule(summaries) -> str:
    """The rule of ``reported_accuracy`` for these runs in words (both, if they mix)."""
    rules = sorted({"validation" if s.get("selection") == "validation" else "last epoch" for s in summaries})
    return "; ".join(SELECTION_RULES[r] for r in rules) if rules else ""

REMOVED_VIEW = "removed alone from the full model"


def ablation_rows(runs: dict, labels: list[str] | None = None, ideal: str = "ideal") -> list[dict]:
    """Per configuration with runs, in the order of ``labels`` (default: the order of ``runs``): final
    test accuracy over seeds (mean, std, range), the mean best epoch, the drop against the ideal
    mean, and the devices at the end."""
    ideal_acc = [reported_accuracy(s) for s in runs.get(ideal, [])]
    ideal_mean = statistics.fmean(ideal_acc) if ideal_acc else None
    rows = []
    for label in labels if labels is not None else list(runs):
        summaries = runs.get(label)
        if not summaries:
            continue
        acc = [reported_accuracy(s) for s in summaries]
        mean = statistics.fmean(acc)
        std = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        last = [s["history"][-1] for s in summaries if s.get("history")]
        rows.append({"config": label, "imperfections": summaries[0]["imperfections"], "seeds": len(acc), "mean": mean,
                     "std": std, "se": std / math.sqrt(len(acc)), "min": min(acc), "max": max(acc), "values": acc,
                     "drop": (ideal_mean - mean) if ideal_mean is not None else float("nan"),
                     "best": statistics.fmean([s.get("best_test_accuracy", float("nan")) for s in summaries]),
                     "last": statistics.fmean([s["final_test_accuracy"] for s in summaries]),
                     "epoch": statistics.fmean([s.get("selected_epoch") or s["epochs"] for s in summaries]),
                     "validation": statistics.fmean([best_validation(s) for s in summaries]),
                     "past_t_star": statistics.fmean([h.get("fraction_past_t_star", float("nan")) for h in last])
                     if len(last) == len(summaries) else float("nan"),
                     "pulses": statistics.fmean([h.get("pulses_per_device", float("nan")) for h in last])
                     if len(last) == len(summaries) else float("nan")})
    return rows


# ----------------------------------------------------------------------------- Welch's t-test

def difference_test(rows: list[dict], plus: str, minus: str) -> dict:
    """mean(plus) - mean(minus) with Welch's test (``welch``); value nan if either has no runs."""
    by_name = {r["config"]: r for r in rows}
    if plus not in by_name or minus not in by_name:
        return {"value": math.nan, "se": math.nan, "df": math.nan, "p": math.nan, "half_width": math.nan}
    a, b = by_name[plus], by_name[minus]
    return welch([(a["mean"], a["std"], a["seeds"]), (b["mean"], b["std"], b["seeds"])], [1, -1])


def difference(rows: list[dict], plus: str, minus: str) -> tuple[float, float]:
    """mean(plus) - mean(minus) and its standard error over seeds ((nan, nan) if either has no runs)."""
    by_name = {r["config"]: r for r in rows}
    if plus not in by_name or minus not in by_name:
        return float("nan"), float("nan")
    a, b = by_name[plus], by_name[minus]
    return a["mean"] - b["mean"], math.sqrt(a["std"] ** 2 / a["seeds"] + b["std"] ** 2 / b["seeds"])


def imperfection_costs(rows: list[dict], study: Study = STUDIES["legacy"]) -> list[dict]:
    """Accuracy cost of each imperfection the study ranks, in both views, with Welch's test of each.

    added: acc(mean) - acc(mean + X), the cost of X on the mean device alone;
    removed: acc(full but X) - acc(full), what removing X from the full model gives back. Each view
    carries ``<view>`` (the cost), ``<view>_se``, ``_df``, ``_p``, ``_ci`` (half-width of the LEVEL
    interval) and ``_cells`` (the two configurations, better first).
    """
    costs = []
    for x in study.ranked:
        cost = {"imperfection": x}
        for view, cells in (("added", (study.mean, study.added.format(x))),
                            ("removed", (study.removed.format(x), study.full))):
            test = difference_test(rows, *cells)
            cost |= {view: test["value"], f"{view}_se": test["se"], f"{view}_df": test["df"],
                     f"{view}_p": test["p"], f"{view}_ci": test["half_width"], f"{view}_cells": cells}
        costs.append(cost)
    return costs


def _resolved(value: float, test: dict) -> bool:
    """``value`` > 0 and the LEVEL interval of Welch's test excludes 0 (never with one seed)."""
    return not math.isnan(test["half_width"]) and value > test["half_width"]


def _beyond_two_se(value: float, se: float) -> bool:
    """The older, looser rule (about 85 % confidence with 3 seeds), still used by the saturation and
    learning-rate sentences until they carry Welch's test too."""
    return not math.isnan(se) and value > 2 * se


def _view_test(c: dict, key: str) -> dict:
    return {"se": c[f"{key}_se"], "half_width": c[f"{key}_ci"], "p": c[f"{key}_p"]}


def _gap(rows: list[dict], worst: dict, runner: dict, key: str) -> dict:
    """How much more the costliest imperfection costs than the runner-up, tested on the cells that
    differ: the shared cell (the mean model, or the full model) cancels."""
    if key == "added":  # (mean - mean+w) - (mean - mean+r) = mean+r - mean+w
        return difference_test(rows, runner["added_cells"][1], worst["added_cells"][1])
    return difference_test(rows, worst["removed_cells"][0], runner["removed_cells"][0])


def _ci_words(test: dict) -> str:
    return f"± {100 * test['half_width']:.2f}, {100 * LEVEL:.0f} % interval, p = {test['p']:.2g}"


def verdict(costs: list[dict], views: tuple[str, str] = (ADDED_VIEW, REMOVED_VIEW),
            rows: list[dict] | None = None) -> list[str]:
    """Plain sentences: which imperfection is the most damaging in each view, is it resolved, and is it d2d?

    A cost is resolved when Welch's LEVEL interval over seeds excludes 0, and so is the lead of the
    costliest over the runner-up (tested on ``rows``, the cells that differ); with one seed per cell
    there is no interval and the sentences say so. The last sentence answers "is d2d the most
    damaging?" in one word first: yes, not resolved, or no.
    """
    lines, worst, lead_resolved = [], {}, {}
    for view, key in zip(views, ("added", "removed")):
        usable = [c for c in costs if not math.isnan(c[key])]
        if not usable:
            continue
        w = worst[key] = max(usable, key=lambda c: c[key])
        cost, test = w[key], _view_test(w, key)
        runner = max((c for c in usable if c is not w), key=lambda c: c[key], default=None)
        gap = _gap(rows, w, runner, key) if runner is not None and rows is not None else None
        lead_resolved[key] = _resolved(cost, test) and (gap is None or _resolved(gap["value"], gap))
        if math.isnan(test["se"]):
            lines.append(f"- {view}: **{w['imperfection']}** costs the most, {100 * cost:+.2f} points "
                         "(one seed: no interval).")
        elif _resolved(cost, test):
            lead = "" if gap is None else (
                f"; ahead of **{runner['imperfection']}** by {100 * gap['value']:+.2f} ({_ci_words(gap)})"
                + ("" if _resolved(gap["value"], gap) else ", not resolved"))
            lines.append(f"- {view}: **{w['imperfection']}** costs the most, {100 * cost:+.2f} points "
                         f"({_ci_words(test)}){lead}.")
        else:
            lines.append(f"- {view}: no imperfection's cost is resolved at {100 * LEVEL:.0f} % (largest: "
                         f"**{w['imperfection']}**, {100 * cost:+.2f} points, {_ci_words(test)}).")
    if not worst:
        return []
    for view, key in zip(views, ("added", "removed")):
        order = sorted((c for c in costs if not math.isnan(c[key])), key=lambda c: -c[key])
        if len(order) > 1:
            lines.append(f"- ranking, {view}: " + " > ".join(
                f"{c['imperfection']} ({100 * c[key]:+.2f}{'' if _resolved(c[key], _view_test(c, key)) else ', not resolved'})"
                for c in order) + ".")
    helps = [c["imperfection"] for c in costs if not math.isnan(c["added"]) and c["added"] < 0
             and _resolved(-c["added"], _view_test(c, "added"))]
    if helps:
        lines.append(f"- at this budget, adding {', '.join(helps)} alone *raises* accuracy "
                     f"(resolved at {100 * LEVEL:.0f} %).")
    lines.append(_d2d_answer(worst, lead_resolved, views))
    if len(worst) < 2:
        lines.append("- only one view is available yet: the other needs its runs (see 'Not finished yet').")
    return lines


def _d2d_answer(worst: dict, lead_resolved: dict, views: tuple[str, str]) -> str:
    """The last sentence of ``verdict``: "is d2d the most damaging?", answered yes, no or not resolved."""
    views_done = " and ".join(v for v, k in zip(views, ("added", "removed")) if k in worst)
    one_seed = any(math.isnan(w[f"{k}_se"]) for k, w in worst.items())
    costly = {k: one_seed or _resolved(w[k], _view_test(w, k)) for k, w in worst.items()}  # a cost worth naming
    others = sorted({w["imperfection"] for k, w in worst.items() if w["imperfection"] != "d2d" and costly[k]})
    if one_seed:
        largest = " and ".join(sorted({w["imperfection"] for w in worst.values()}))
        return (f"- **Is d2d the most damaging? Not resolved**: one seed per cell, no interval yet (largest cost "
                f"so far: {largest}).")
    if others:
        return (f"- **Is d2d the most damaging? No**: {' and '.join(others)} costs more; the published study "
                "found device-to-device variability (d2d) most damaging.")
    if not any(costly.values()):
        return ("- **Is d2d the most damaging? Not resolved**: at this budget no imperfection's cost is "
                f"resolved at {100 * LEVEL:.0f} % in any view.")
    if all(w["imperfection"] == "d2d" for w in worst.values()) and all(lead_resolved.values()):
        answer = "Yes" if len(worst) == 2 else "Yes, in the one view measured so far"
        return (f"- **Is d2d the most damaging? {answer}**: device-to-device variability costs the most "
                f"{views_done}, and its cost and its lead over the runner-up are resolved at "
                f"{100 * LEVEL:.0f} % (Welch), as the published study found.")
    return ("- **Is d2d the most damaging? Not resolved**: these seeds do not single out d2d (its cost "
            f"and its lead over the runner-up resolved at {100 * LEVEL:.0f} %) in every view.")


def interaction(rows: list[dict], costs: list[dict], mean: str = "none", full: str = "all",
                base_name: str = "the mean device") -> list[str]:
    """Compare what all ranked imperfections cost together (mean - full) with the sum of their costs alone."""
    together, se = difference(rows, mean, full)
    if math.isnan(together) or not costs or any(math.isnan(c["added"]) for c in costs):
        return []
    alone = sum(c["added"] for c in costs)
    line = (f"- together, the imperfections cost {100 * together:+.2f} points against {base_name} ({mean} - {full}"
            + ("" if math.isnan(se) else f", ± {100 * se:.2f}") + f"); the sum of their costs alone is "
            f"{100 * alone:+.2f}.")
    if together > 2 * max(alone, 0) and (math.isnan(se) or together > 2 * se):
        line += " Most of the loss comes from their combination, not from any one of them."
    return [line]


def identical_runs(runs: dict, a: str, b: str) -> int:
    """The number of seeds if ``a`` and ``b`` gave exactly the same final accuracy in every seed of ``a``, else 0."""
    def by_seed(label):
        return {s["seed"]: reported_accuracy(s) for s in runs.get(label, [])}

    first, second = by_seed(a), by_seed(b)
    same = first and all(seed in second and second[seed] == acc for seed, acc in first.items())
    return len(first) if same else 0


def identical_to_none(runs: dict, study: Study = STUDIES["legacy"]) -> list[str]:
    """A sentence for each imperfection that, alone, trained exactly like the study's base in every seed."""
    lines = []
    for x in study.ranked:
        n = identical_runs(runs, study.added.format(x), study.mean)
        if n:
            lines.append(f"- {x} alone gives exactly the accuracy of {study.mean} in every seed ({n}): on identical, "
                         "noise-free devices it changes no weight (W = sign(t_BL - t_BLb) for any increasing ln R(t)).")
    return lines


def saturation_effects(rows: list[dict], study: Study) -> list[dict]:
    """Per configuration with a no-saturation twin: accuracy with and without saturation, and what
    saturation costs (without - with) with its standard error."""
    by_name = {r["config"]: r for r in rows}
    effects = []
    for label, twin in study.no_saturation.items():
        if label in by_name and twin in by_name:
            cost, se = difference(rows, twin, label)
            effects.append({"config": label, "with": by_name[label], "without": by_name[twin], "cost": cost,
                            "se": se})
    return effects


def saturation_interactions(rows: list[dict], study: Study) -> list[dict]:
    """Cost of each ranked imperfection added to the mean model with saturation and to the one-slope mean
    model, and their difference (the interaction of that imperfection with saturation)."""
    out = []
    mean_flat = study.no_saturation.get(study.mean)
    for x in study.ranked:
        added = study.added.format(x)
        flat = study.no_saturation.get(added)
        if mean_flat is None or flat is None:
            continue
        with_sat, with_se = difference(rows, study.mean, added)
        without, without_se = difference(rows, mean_flat, flat)
        if math.isnan(with_sat) or math.isnan(without):
            continue
        out.append({"imperfection": x, "with": with_sat, "with_se": with_se, "without": without,
                    "without_se": without_se, "interaction": with_sat - without,
                    "interaction_se": math.hypot(with_se, without_se)})
    return out


def saturation_sentences(runs: dict, rows: list[dict], study: Study) -> list[str]:
    """What saturation does, in words: identical runs on the mean model, its cost on the full model, and
    the interaction with each noise source, strongest first."""
    lines = []
    twin = study.no_saturation.get(study.mean)
    n = identical_runs(runs, study.mean, twin) if twin else 0
    if n:
        lines.append(f"- on the mean model, saturation changes no weight: {study.mean} and {twin} give exactly the "
                     f"same accuracy in every seed ({n}); identical noise-free devices keep W = sign(t_BL - t_BLb) "
                     "for any increasing ln R(t).")
    for e in saturation_effects(rows, study):
        if e["config"] == study.full:
            lines.append(f"- on the full model, saturation costs {100 * e['cost']:+.2f} ± {100 * e['se']:.2f} points "
                         f"({e['without']['config']} - {study.full}).")
    for i in sorted(saturation_interactions(rows, study), key=lambda i: -i["interaction"]):
        resolved = "beyond 2 standard errors" if _beyond_two_se(abs(i["interaction"]), i["interaction_se"]) \
            else "within 2 standard errors"
        lines.append(f"- {i['imperfection']} x saturation: {i['imperfection']} costs {100 * i['with']:+.2f} ± "
                     f"{100 * i['with_se']:.2f} points on the mean model with saturation and {100 * i['without']:+.2f} "
                     f"± {100 * i['without_se']:.2f} without it: saturation changes its cost by "
                     f"{100 * i['interaction']:+.2f} ± {100 * i['interaction_se']:.2f} ({resolved}).")
    return lines


def lr_rows(runs_by_lr: dict[float, dict], labels: tuple[str, ...]) -> list[dict]:
    """Per learning rate: each configuration's accuracy row (ablation_rows) and the cost full vs mean."""
    out = []
    for lr in sorted(runs_by_lr):
        rows = {r["config"]: r for r in ablation_rows(runs_by_lr[lr], list(labels))}
        cost = difference(list(rows.values()), *labels) if len(labels) == 2 else (float("nan"), float("nan"))
        out.append({"lr": lr, "rows": rows, "cost": cost[0], "cost_se": cost[1]})
    return out


def best_lr(lrs: list[dict], label: str, default: float) -> list[str]:
    """Which learning rate gives ``label`` its best accuracy, and how the default compares with it."""
    have = [(r["lr"], r["rows"][label]) for r in lrs if label in r["rows"]]
    if not have:
        return []
    lr, best = max(have, key=lambda item: item[1]["mean"])
    at_default = next((row for rate, row in have if rate == default), None)
    line = f"- {label}: best at lr_pulses {lr:g} ({100 * best['mean']:.2f}%, {best['seeds']} seeds)"
    if at_default is None:
        return [line + f"; the default {default:g} has no runs at this budget."]
    if lr == default:
        return [line + ": the default."]
    test = welch([(best["mean"], best["std"], best["seeds"]), (at_default["mean"], at_default["std"],
                                                                at_default["seeds"])], [1, -1])
    if math.isnan(test["half_width"]):
        return [line + f"; the default {default:g} is {100 * test['value']:.2f} points below it (one seed: no test)."]
    verdict = "worse than the best" if _resolved(test["value"], test) else "not resolved from the best"
    return [line + f"; the default {default:g} is {100 * test['value']:.2f} points below it ({_ci_words(test)}: "
            f"{verdict})."]


def learning_curves(runs: dict, labels: list[str] | None = None) -> dict[str, dict]:
    """Per configuration: epoch numbers and, over seeds, the mean/min/max validation accuracy (test
    accuracy for runs without a validation split; ``accuracy`` says which) and the mean fraction of
    devices past t*, for the epochs every seed of that configuration has finished."""
    curves = {}
    for label in labels if labels is not None else list(runs):
        summaries = runs.get(label)
        if not summaries or not all(s["history"] for s in summaries):
            continue
        n = min(len(s["history"]) for s in summaries)
        validated = all(s["history"][0].get("validation_accuracy") is not None for s in summaries)
        key = "validation_accuracy" if validated else "test_accuracy"  # validation where the runs have it
        acc = [[s["history"][e][key] for s in summaries] for e in range(n)]
        past = [[s["history"][e].get("fraction_past_t_star", float("nan")) for s in summaries] for e in range(n)]
        curves[label] = {"epoch": [summaries[0]["history"][e]["epoch"] for e in range(n)],
                         "mean": [statistics.fmean(a) for a in acc], "min": [min(a) for a in acc],
                         "max": [max(a) for a in acc], "past_t_star": [statistics.fmean(p) for p in past],
                         "seeds": len(summaries), "accuracy": key}
    return curves
