"""Which runs a refresh report compares: each refresh run (reports/refresh/*/) and the run without refresh of the
same settings and seed (``REFRESH_MATCH``; there or among the ablation summaries), grouped into sections (one per
setting and budget), the best pulse rate without refresh, and the test accuracy per epoch of each group.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from rramk.studies.statistics import reported_accuracy
from rramk.training.run_settings import default_network

REFRESH_MATCH = ("dataset", "network", "imperfections", "seed", "epochs", "limit_train", "hidden", "width", "lr_pulses",
                 "scale", "preset", "validation")
"""What a run without refresh must share with a refresh run to be its baseline."""


def refresh_key(summary: dict) -> tuple:
    settings = {"hidden": 3000, "scale": "", "preset": "", "validation": None, **summary.get("settings", {})}
    settings.update({k: summary[k] for k in ("dataset", "imperfections", "seed", "epochs")})
    # summaries from before --network name none: the data set's own network
    settings["network"] = settings.get("network") or default_network(summary["dataset"])
    if settings["network"] != "vgg":
        settings["width"] = None  # only the VGG has a width
    return tuple(settings.get(k) for k in REFRESH_MATCH)


def load_runs(reports: Path) -> list[tuple[Path, dict]]:
    """(directory, summary) of every run that can take part: reports/refresh/*/ and the ablation summaries."""
    paths = sorted((reports / "refresh").glob("*/summary.json"))
    paths += sorted((reports / "ablation" / "summaries").glob("*/*/*/seed*/summary.json"))
    return [(path.parent, json.loads(path.read_text())) for path in paths]


def policy_of(summary: dict) -> str:
    return summary.get("settings", {}).get("refresh") or "off"


def budget_of(summary: dict) -> tuple:
    return summary["epochs"], summary["settings"].get("limit_train") or math.inf


def pair_runs(runs: list[tuple[Path, dict]]) -> dict[str, dict[tuple, list[tuple]]]:
    """{policy: {budget: [(refresh run, its run without refresh)]}}, runs as (directory, summary): the run
    without refresh of the same settings and seed (``REFRESH_MATCH``; of several, the last found)."""
    without = {refresh_key(s): (d, s) for d, s in runs if policy_of(s) == "off"}
    paired: dict[str, dict[tuple, list[tuple]]] = {}
    for d, s in runs:
        if policy_of(s) != "off" and refresh_key(s) in without:
            paired.setdefault(policy_of(s), {}).setdefault(budget_of(s), []).append(((d, s), without[refresh_key(s)]))
    return paired


def setting_words(summary: dict) -> str:
    limit = summary["settings"].get("limit_train")
    held_out = summary.get("validation") or summary["settings"].get("validation")
    return (f"{summary['dataset']}, imperfections {summary['imperfections']}, {summary['epochs']} epochs, "
            f"{'all' if not limit else limit} training examples"
            + (f" but the {held_out} held out for validation" if held_out else ""))


def rates_without(runs: list[dict], refreshed: dict) -> dict[float, list[dict]]:
    """{lr_pulses: [summaries]} of the runs *without* refresh that share the refreshed run's other settings
    (every rate, every seed)."""
    free = {REFRESH_MATCH.index("lr_pulses"), REFRESH_MATCH.index("seed")}

    def rest(summary):
        return tuple(v for i, v in enumerate(refresh_key(summary)) if i not in free)

    key = rest(refreshed)
    by_lr: dict[float, list[dict]] = {}
    for s in runs:
        if policy_of(s) == "off" and rest(s) == key:
            by_lr.setdefault(s["settings"]["lr_pulses"], []).append(s)
    return by_lr


def best_rate_without(runs: list[dict], refreshed: dict) -> tuple[float, float, int] | None:
    """(lr_pulses, mean accuracy, seeds) of the best pulse rate *without* refresh for the refreshed run's
    other settings: the baseline a refresh must beat (None: no run at another rate)."""
    by_lr = {lr: [reported_accuracy(s) for s in group] for lr, group in rates_without(runs, refreshed).items()}
    if len(by_lr) < 2:
        return None
    lr, accuracies = max(by_lr.items(), key=lambda item: sum(item[1]) / len(item[1]))
    return lr, sum(accuracies) / len(accuracies), len(accuracies)


def epoch_records(directory: Path, summary: dict) -> list[dict]:
    """A run's per-epoch records: its metrics.jsonl (the last record of each epoch), else its summary's history."""
    path = directory / "metrics.jsonl"
    records = ([json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file()
               else summary.get("history", []))
    by_epoch = {r["epoch"]: r for r in records}
    return [by_epoch[e] for e in sorted(by_epoch)]


def cell_key(summary: dict) -> tuple:
    """A section of the report: everything a refresh run shares with its baseline but the seed."""
    seed = REFRESH_MATCH.index("seed")
    return tuple(v for i, v in enumerate(refresh_key(summary)) if i != seed)


def sections_of(runs: list[tuple[Path, dict]]) -> list[dict]:
    """One section per setting with refresh runs and baselines, the largest budget first: the policies' pairs
    (by seed), the runs without refresh of the setting and the best pulse rate without refresh."""
    sections: dict[tuple, dict] = {}
    for policy, budgets in sorted(pair_runs(runs).items()):
        for pairs in budgets.values():
            for (w, o) in pairs:
                section = sections.setdefault(cell_key(w[1]), {"first": w[1], "policies": {}})
                section["policies"].setdefault(policy, []).append((w, o))
    summaries = [s for _, s in runs]
    directory = {id(s): d for d, s in runs}
    out = []
    for section in sections.values():
        for policy, pairs in section["policies"].items():
            pairs.sort(key=lambda pair: pair[0][1]["seed"])
        off = {o[1]["seed"]: o for pairs in section["policies"].values() for _, o in pairs}
        section["off"] = [off[seed] for seed in sorted(off)]
        by_lr = rates_without(summaries, section["first"])
        lr, best = max(by_lr.items(), key=lambda item: statistics.fmean(reported_accuracy(s) for s in item[1])) \
            if len(by_lr) > 1 else (None, [])
        section.update(best_lr=lr, best=[(directory[id(s)], s) for s in sorted(best, key=lambda s: s["seed"])])
        out.append(section)
    return sorted(out, key=lambda sec: (tuple(-v for v in budget_of(sec["first"])), setting_words(sec["first"])))


def curves(runs: list[tuple[Path, dict]]) -> dict:
    """Test accuracy per epoch over the runs (the epochs every run has): epochs, mean, min, max."""
    records = [epoch_records(d, s) for d, s in runs]
    n = min(len(r) for r in records)
    acc = [[r[e]["test_accuracy"] for r in records] for e in range(n)]
    return {"epoch": [records[0][e]["epoch"] for e in range(n)], "mean": [statistics.fmean(a) for a in acc],
            "min": [min(a) for a in acc], "max": [max(a) for a in acc], "seeds": len(runs)}


def best_curve_label(section: dict) -> str | None:
    """The curve of the best pulse rate without refresh, where it is not the refresh runs' own rate."""
    lr = section["best_lr"]
    return None if lr is None or lr == section["first"]["settings"]["lr_pulses"] else f"off, lr_pulses {lr:g} (best)"


def section_curves(section: dict) -> dict[str, dict]:
    """Without refresh, each policy, and the best pulse rate without refresh where it is another rate."""
    best = best_curve_label(section)
    return {"off": curves(section["off"]), **{p: curves([w for w, _ in pairs])
                                               for p, pairs in section["policies"].items()},
            **({best: curves(section["best"])} if best else {})}
