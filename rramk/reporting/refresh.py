"""The refresh answer: each refresh policy's runs (reports/refresh/*/) against the same runs without refresh.

:func:`refresh_sentence` is the index's answer to "does refresh help?": the first ``Answer:`` line of
``reports/refresh.md``, else the final accuracies of :func:`refresh_results`, else a pointer to the
file, else "pending".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from rramk.studies.statistics import reported_accuracy
from rramk.training.run_settings import default_network

REFRESH_MATCH = ("dataset", "network", "imperfections", "seed", "epochs", "limit_train", "hidden", "width", "lr_pulses",
                 "scale", "preset", "validation")
"""What a run without refresh must share with a refresh run to be its baseline."""


def _refresh_key(summary: dict) -> tuple:
    settings = {"hidden": 3000, "scale": "", "preset": "", "validation": None, **summary.get("settings", {})}
    settings.update({k: summary[k] for k in ("dataset", "imperfections", "seed", "epochs")})
    # summaries from before --network name none: the data set's own network
    settings["network"] = settings.get("network") or default_network(summary["dataset"])
    if settings["network"] != "vgg":
        settings["width"] = None  # only the VGG has a width
    return tuple(settings.get(k) for k in REFRESH_MATCH)


def refresh_results(reports: Path) -> list[dict]:
    """Each refresh policy measured in reports/refresh/*/summary.json at its largest budget, against the
    runs without refresh of the same settings and seeds (there, or among the ablation summaries):
    [{"policy", "with", "without", "seeds", "setting"}], accuracies as means over the shared seeds."""
    runs = [json.loads(p.read_text()) for p in sorted((reports / "refresh").glob("*/summary.json"))]
    runs += [json.loads(p.read_text()) for p in sorted((reports / "ablation" / "summaries").glob(
        "*/*/*/seed*/summary.json"))]
    policy = lambda s: (s.get("settings", {}).get("refresh") or "off")  # noqa: E731
    without = {_refresh_key(s): reported_accuracy(s) for s in runs if policy(s) == "off"}
    paired = {}
    for s in runs:
        if policy(s) != "off" and _refresh_key(s) in without:
            budget = (s["epochs"], s["settings"].get("limit_train") or math.inf)
            paired.setdefault(policy(s), {}).setdefault(budget, []).append(
                (reported_accuracy(s), without[_refresh_key(s)], s))
    results = []
    for name, budgets in sorted(paired.items()):
        budget, pairs = max(budgets.items())
        first = pairs[0][2]
        limit = first["settings"].get("limit_train")
        results.append({"policy": name, "with": sum(p[0] for p in pairs) / len(pairs),
                        "without": sum(p[1] for p in pairs) / len(pairs), "seeds": len(pairs),
                        "lr": first["settings"]["lr_pulses"], "best_without": _best_rate_without(runs, first),
                        "setting": f"{first['dataset']}, imperfections {first['imperfections']}, {first['epochs']} "
                                   f"epochs, {'all' if not limit else limit} training examples"})
    return results


def _best_rate_without(runs: list[dict], refreshed: dict) -> tuple[float, float, int] | None:
    """(lr_pulses, mean accuracy, seeds) of the best pulse rate *without* refresh for the refreshed run's
    other settings: the baseline a refresh must beat (None: no run at another rate)."""
    free = {REFRESH_MATCH.index("lr_pulses"), REFRESH_MATCH.index("seed")}  # every rate, every seed

    def rest(summary):
        return tuple(v for i, v in enumerate(_refresh_key(summary)) if i not in free)

    key = rest(refreshed)
    by_lr: dict[float, list[float]] = {}
    for s in runs:
        if (s.get("settings", {}).get("refresh") or "off") == "off" and rest(s) == key:
            by_lr.setdefault(s["settings"]["lr_pulses"], []).append(reported_accuracy(s))
    if len(by_lr) < 2:
        return None
    lr, accuracies = max(by_lr.items(), key=lambda item: sum(item[1]) / len(item[1]))
    return lr, sum(accuracies) / len(accuracies), len(accuracies)


def refresh_sentence(reports: Path) -> str:
    """Does refresh help? The refresh runs' accuracy against the same runs without refresh, and against the
    best pulse rate without refresh where other rates ran; else a pointer to reports/refresh.md; else pending."""
    path = reports / "refresh.md"
    link = " ([refresh.md](refresh.md))" if path.is_file() else ""
    results = refresh_results(reports)
    if results:
        gains = [r["with"] - r["without"] for r in results]
        word = "Yes" if all(g > 0 for g in gains) else ("No" if all(g <= 0 for g in gains) else "It depends on "
                                                                                                  "the policy")
        seeds = sorted({r["seeds"] for r in results})
        parts = "; ".join(f"on {setting}: " + ", ".join(
            f"refresh {r['policy']} ends at {100 * r['with']:.2f} % against {100 * r['without']:.2f} % without "
            f"({100 * (r['with'] - r['without']):+.2f} points)" for r in results if r["setting"] == setting)
            for setting in dict.fromkeys(r["setting"] for r in results))
        caveat = (" — one seed per cell: no error bar yet, run more seeds before quoting a gain to a tenth of a "
                  "point" if seeds == [1] else f" ({'/'.join(map(str, seeds))} seeds per cell)")
        best = [(r, r["best_without"]) for r in results if r["best_without"] and r["best_without"][0] != r["lr"]]
        against = "".join(f" Both at lr_pulses {r['lr']:g}; without refresh the same device reaches "
                          f"{100 * b[1]:.2f} % at lr_pulses {b[0]:g} ({b[2]} seeds), so refresh {r['policy']} is "
                          f"{100 * (r['with'] - b[1]):+.2f} points from the best rate without it."
                          for r, b in best[:1])
        return (f"**Does refresh help?** {word}, on the runs measured so far: {parts}{caveat}.{against} The "
                "conditions read each device's true t*, which a chip cannot observe (the studies issue's open "
                f"point){link}.")
    if path.is_file():
        return "**Does refresh help?** See [refresh.md](refresh.md) (no refresh runs with a baseline to read)."
    return ("**Does refresh help?** Pending: no refresh study has been reported yet (reports/refresh.md does "
            "not exist).")
