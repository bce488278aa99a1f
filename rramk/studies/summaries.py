"""The finished runs of studies, as the reports read them: ``<root>/<dataset>/<budget>/<run directory>/seed<k>/``.

A run directory is a configuration's slug (``rramk.studies.configs``), with ``-lr<rate>`` for a pulse
learning rate other than the data set's default; :func:`ablation_command` is the command that makes
a study's runs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from rramk.studies.configs import Study

DEFAULT_SEEDS = [0, 1, 2]


def load_summaries(root: Path) -> dict:
    """{(dataset, budget): {run directory: [summary, ...]}} from ``root``/<dataset>/<budget>/<directory>/seed*/."""
    studies = defaultdict(lambda: defaultdict(list))
    for path in sorted(root.glob("*/*/*/seed*/summary.json")):
        run_dir, budget_dir, dataset_dir = path.parents[1], path.parents[2], path.parents[3]
        studies[(dataset_dir.name, budget_dir.name)][run_dir.name].append(json.loads(path.read_text()))
    return studies


def published_epochs(dataset: str) -> int:
    from rramk.training.run_settings import PUBLISHED

    return PUBLISHED[dataset]["epochs"]


def default_lr(dataset: str) -> float:
    from rramk.training.run_settings import PUBLISHED

    return PUBLISHED[dataset]["lr_pulses"]


UNSUFFIXED_LR = 20.0
"""The pulse learning rate whose run directories carry no ``-lr<rate>`` suffix: rramk.train's default when
the first studies ran, fixed here so that every committed directory keeps its meaning when the default
changes."""


def directory_of(slug: str, lr: float | None, default: float = UNSUFFIXED_LR) -> str:
    """The run directory of a configuration's slug at pulse learning rate ``lr`` (None: the default)."""
    return slug if lr is None or lr == default else f"{slug}-lr{lr:g}"


def study_runs(directories: dict, study: Study, lr: float | None = None, default: float = UNSUFFIXED_LR) -> dict:
    """{label: [summary, ...]} of ``study``'s configurations that have runs, in the study's order."""
    runs = {}
    for label, config in study.configs.items():
        found = directories.get(directory_of(config.slug, lr, default))
        if not found and config.imperfections is None:  # the ideal BNN has no pulses: its runs serve every rate
            found = directories.get(config.slug)
        if found:
            runs[label] = sorted(found, key=lambda s: s["seed"])
    return runs


def ablation_command(dataset: str, summary: dict, study: str = "", seeds: list[int] | None = None) -> str:
    """The rramk.ablation command whose runs a study's summaries are (``study``: its extra flags)."""
    epochs, limit = summary["epochs"], summary["settings"].get("limit_train")
    settings = summary["settings"]
    if not limit:  # every training example: --full, with the epochs if not the published number
        flags = "--full" + ("" if epochs == published_epochs(dataset) else f" --epochs {epochs}")
    else:
        flags = f"--epochs {epochs}" + (f" --limit-train {limit}" if limit else "")
    from rramk.training.run_settings import PUBLISHED, default_network

    held_out = summary.get("validation") or 0  # summaries from before the split record none: they had none
    if held_out != PUBLISHED[dataset]["validation"]:
        flags += f" --validation {held_out}"
    rate = settings.get("lr_pulses", UNSUFFIXED_LR)  # summaries that record none ran at the old default
    if "--lr-pulses" not in study and summary.get("imperfections") != "ideal" and rate != PUBLISHED[dataset]["lr_pulses"]:
        flags += f" --lr-pulses {rate:g}"
    network = settings.get("network") or default_network(dataset)
    if network == "mlp" and settings.get("hidden", 3000) != 3000:
        flags += f" --hidden {settings['hidden']}"
    if network != default_network(dataset):
        flags += f" --network {network}"
    if network == "vgg":
        flags += f" --width {settings.get('width', 1.0):g}"
    if settings.get("preset"):
        flags += f" --preset {settings['preset']}"
    if study:
        flags += f" {study}"
    if seeds is not None and sorted(seeds) != DEFAULT_SEEDS:
        flags += " --seeds " + " ".join(map(str, sorted(seeds)))
    return f"python -m rramk.ablation {dataset} {flags}"
