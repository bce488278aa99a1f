"""Accuracy lost per device imperfection: train one network under every configuration of a study, over seeds.

    python -m rramk.ablation mnist [--full] [--study published|legacy|lr|sensitivity] [--seeds 0 1 2]
    python -m rramk.ablation mnist --study published --preset mydevice.json [--shard i/n]

Studies and configurations: ``rramk.studies.configs``; options: ``--help``; recipes (a preset's
study, Slurm job arrays): README.md. Every (configuration, learning rate, seed) run has its own
directory (checkpoint, metrics, summary.json), shared by every study that names the same run::

    <--out>/<dataset>/<budget>[-preset-<stem>-<hash>]/<configuration slug>[-lr<rate> if not the default]/seed<k>

A run whose summary exists is skipped and an interrupted one resumes, so a study can be stopped and
restarted at will, or shared among tasks (``--shard``, ``rramk.studies.shards``);
``python -m rramk.report`` aggregates whatever has finished.
"""

from __future__ import annotations

from rramk import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import argparse
import sys
from pathlib import Path

from rramk.device.backends import BACKENDS
from rramk.studies.configs import ABLATIONS, FAMILY_KNOBS, STUDIES, Study, study_by_name
from rramk.studies.runner import SHORT_BUDGET, run_study, study_plan
from rramk.studies.shards import Shard, parse_shard, shard_from_environment
from rramk.cli import UsageError

def _shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--shard: ")) from None


def _factors(texts: list[str]) -> list[float]:
    """``--values 0,0.25 0.5`` -> [0.0, 0.25, 0.5]: commas or spaces between the factors."""
    values = []
    for item in (x for text in texts for x in text.split(",") if x.strip()):
        try:
            values.append(float(item))
        except ValueError:
            raise UsageError(f"--values: expected factors such as 0,0.25,0.5,1,1.5; got {item!r}") from None
    return values


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of pulses, got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m rramk.ablation",
                   description="Train the same BNN under every configuration of an ablation study and seed "
                               "(MODEL.md section 4).")
    p.add_argument("dataset", choices=["mnist", "fashion-mnist", "cifar10", "cifar10-jpeg"])
    p.add_argument("--full", action="store_true",
                   help="the published budget: every training example and the published epochs (mnist: 20), or "
                        "--epochs N of them")
    p.add_argument("--epochs", type=int, help="epochs per run (default: a short CPU budget, see SHORT_BUDGET; with "
                                              "--full, the published number)")
    p.add_argument("--limit-train", type=int, help="training examples per run (default: short budget's)")
    p.add_argument("--validation", type=int,
                   help="examples held out of the training set to choose each run's epoch (default: rramk.train's, "
                        "the last 10000 of mnist and fashion-mnist, 5000 of cifar10)")
    p.add_argument("--study", default="published", choices=[*STUDIES, "lr", "sensitivity"],
                   help="published (default: the mean model, each of d2d, pink, rtn added to it and removed from "
                        "the full model, the software BNN, saturation what-ifs), legacy (the first study's "
                        "framing), lr (mean and full model at several --lr-pulses), sensitivity (--knob swept "
                        "over --values)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--configs", nargs="+", metavar="CONFIG",
                   help="only these configurations (default: all of the study's; labels as its report names them, "
                        "e.g. 'mean + d2d', or of rramk.studies.configs.ABLATIONS, e.g. 'only d2d')")
    p.add_argument("--knob", choices=list(dict.fromkeys(k for knobs in FAMILY_KNOBS.values() for k in knobs)),
                   help="--study sensitivity: the knob to sweep, one of the device family's (HfOxWeakReset.scaled's, "
                        "or a --preset of another family: its SCALES)")
    p.add_argument("--values", nargs="+", metavar="FACTOR",
                   help="--study sensitivity: factors on the fit, e.g. 0,0.25,0.5,1,1.5 (default: the knob's, "
                        "rramk.studies.configs.KNOBS)")
    p.add_argument("--base", choices=["mean", "full"],
                   help="--study sensitivity: sweep the knob on the mean model plus its imperfection, or on the "
                        "full model (default: the knob's; t_star: full)")
    p.add_argument("--preset", default="", metavar="PRESET.json",
                   help="the device every configuration is built on: a preset file (rramk.load_preset; python -m "
                        "rramk.fit writes one from measured traces; default: the published fit); its runs live "
                        "under a budget directory of their own")
    p.add_argument("--network", default="", help="mlp (mnist, fashion-mnist: the default) or vgg (cifar10; mnist and "
                                                 "fashion-mnist: the VGG family for 28x28x1 images)")
    p.add_argument("--hidden", type=int, default=3000, help="mlp hidden units (default 3000)")
    p.add_argument("--width", type=float, default=0.125, help="vgg width multiplier (default 0.125)")
    p.add_argument("--lr-pulses", type=_positive, nargs="+", metavar="LR",
                   help="pulse learning rate(s); each configuration runs at each (default: rramk.train's, 8 for mnist; "
                        "--study lr: 8 20 50 100)")
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="auto", choices=BACKENDS)
    p.add_argument("--data-dir")
    p.add_argument("--out", type=Path, default=Path("runs/ablation"), help="root of the run directories")
    p.add_argument("--summaries", type=Path, default=Path("reports/ablation/summaries"),
                   help="where finished runs' summary.json and metrics.jsonl are copied (committed with reports/)")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep finished runs' checkpoints")
    p.add_argument("--shard", type=_shard, metavar="I/N",
                   help="run only shard I of N (counted from 0: 0/N to N-1/N), every N-th (config, seed) run from the "
                        "I-th; default: the task's place in a Slurm job array (SLURM_ARRAY_TASK_ID), else every run")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def _family_of(preset: str) -> str:
    """The device family of ``--preset`` (HfOxWeakReset without one)."""
    if not preset:
        return "HfOxWeakReset"
    from rramk.device.preset import PresetError, load_preset

    try:
        return type(load_preset(preset)).__name__
    except PresetError:  # said, with the file, where the runs load it
        return "HfOxWeakReset"


def study_of(args: argparse.Namespace) -> tuple[Study, list[str], list[float] | None]:
    """The study, its configurations to run and its learning rates (None: the default) from the arguments."""
    if args.study != "sensitivity":
        given = [name for name in ("knob", "values", "base") if getattr(args, name) is not None]
        if given:
            raise UsageError(f"--{given[0]}: only with --study sensitivity")
    try:
        study = study_by_name(args.study, knob=args.knob, values=None if args.values is None else _factors(args.values),
                              base=args.base, lrs=args.lr_pulses, family=_family_of(args.preset))
    except ValueError as e:
        raise UsageError(str(e) if str(e).startswith("--") else f"--{e}") from None
    configs = study.labels if args.configs is None else args.configs
    unknown = [c for c in configs if c not in study.configs and c not in ABLATIONS]
    if unknown:
        raise UsageError(f"--configs: unknown configuration(s) {', '.join(map(repr, unknown))}; expected labels of "
                         f"--study {study.name} ({', '.join(map(repr, study.labels))}) or of the registry "
                         f"({', '.join(map(repr, (c for c in ABLATIONS if c not in study.configs)))})")
    lrs = list(args.lr_pulses) if args.lr_pulses else (list(study.lrs) or None)
    return study, configs, lrs


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    overrides = {"device": args.device, "backend": args.backend, "data_dir": args.data_dir, "width": args.width,
                 "hidden": args.hidden, "network": args.network, "preset": args.preset, "validation": args.validation}
    if args.full:
        overrides["limit_train"] = args.limit_train
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
    else:
        short = SHORT_BUDGET[args.dataset]
        overrides["epochs"] = args.epochs if args.epochs is not None else short["epochs"]
        overrides["limit_train"] = args.limit_train if args.limit_train is not None else short["limit_train"]
    from .data import DatasetNotFound

    try:
        study, configs, lrs = study_of(args)
    except UsageError as e:
        p.error(str(e))
    try:
        shard = args.shard if args.shard is not None else shard_from_environment()
        paths = run_study(args.dataset, args.seeds, configs, args.out, summaries=args.summaries,
                          progress=args.progress, keep_checkpoints=args.keep_checkpoints, shard=shard, lrs=lrs,
                          study=study, **overrides)
    except UsageError as e:
        print(f"python -m rramk.ablation: error: {e}", file=sys.stderr)
        return 2
    except DatasetNotFound as e:
        print(f"python -m rramk.ablation: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\npython -m rramk.ablation: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    if shard is not None:
        print(f"shard {shard} ({len(paths)} of {len(study_plan(args.seeds, configs, lrs))} runs): ", end="")
    print(f"{len(paths)} runs of --study {study.name} finished under {args.out}; tables and plots: "
          "python -m rramk.report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
