"""Accuracy lost per device imperfection: train one network under every ablation, over seeds.

    python -m rramk.ablation mnist [--full | --epochs N] [--seeds 0 1 2] [--limit-train N] [--shard i/n]

runs, for each seed, the configurations of ``CONFIGS`` (rramk.ablation_configs): the software
BNN (``ideal``), the device mean behaviour alone (``none``), every imperfection (``all``), each
imperfection alone on top of ``none``, and ``all`` minus each one (MODEL.md section 4). Every
(configuration, seed) run writes its own directory under ``--out`` (checkpoint, metrics,
summary.json); a run whose summary exists is skipped and an interrupted one resumes, so the study
can be stopped and restarted at will. ``--shard i/n`` (or the task's place in a Slurm job array,
rramk.shards) runs only every n-th run from the i-th, so that n tasks share the study.
``python -m rramk.report`` aggregates whatever has finished.
"""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import argparse
import shutil
import sys
import time
from pathlib import Path

from .ablation_configs import ABLATIONS, slug
from .shards import Shard, parse_shard, shard_from_environment
from .train import SUMMARY, RunSettings, UsageError, train

CONFIGS: dict[str, str] = {label: config.flag for label, config in ABLATIONS.items()}
"""Label -> the --imperfections value of rramk.train that trains it."""
SHORT_BUDGET = {"mnist": {"epochs": 1, "limit_train": 10_000}, "cifar10": {"epochs": 2, "limit_train": 10_000}}


def budget_tag(settings: RunSettings) -> str:
    """Directory name of a training budget, so that runs of different budgets never mix."""
    tag = f"epochs{settings.epochs}"
    if settings.limit_train:
        tag += f"-n{settings.limit_train}"
    if settings.dataset == "mnist" and settings.hidden != 3000:
        tag += f"-hidden{settings.hidden}"
    if settings.dataset == "cifar10":
        tag += f"-width{settings.width:g}"
    return tag


def run_directory(root: Path, settings: RunSettings, label: str) -> Path:
    return root / settings.dataset / budget_tag(settings) / slug(label) / f"seed{settings.seed}"


def publish(run: Path, root: Path, summaries: Path) -> Path:
    """Copy a finished run's summary.json and metrics.jsonl under ``summaries`` (the committed copy)."""
    target = summaries / run.relative_to(root)
    target.mkdir(parents=True, exist_ok=True)
    for name in (SUMMARY, "metrics.jsonl"):
        if (run / name).is_file():
            shutil.copyfile(run / name, target / name)
    return target / SUMMARY


def study_plan(seeds: list[int], configs: list[str]) -> list[tuple[str, int]]:
    """Every (config, seed) run of the study, seed by seed."""
    return [(label, seed) for seed in seeds for label in configs]


def run_study(dataset: str, seeds: list[int], configs: list[str], root: Path, summaries: Path | None = None,
              progress: bool = True, keep_checkpoints: bool = False, shard: Shard | None = None,
              **overrides) -> list[Path]:
    """Run (or finish) every (config, seed) of the study, or of its ``shard``; returns the summary paths.

    A finished run's checkpoint is deleted (it is only needed to resume) unless
    ``keep_checkpoints``; its summary and metrics are copied under ``summaries`` if given.
    """
    done = []
    plan = study_plan(seeds, configs)
    if shard is not None:
        plan = shard.select(plan)
    for i, (label, seed) in enumerate(plan, start=1):
        settings = RunSettings(dataset=dataset, imperfections=CONFIGS[label], seed=seed, progress=progress,
                               **overrides)
        out = run_directory(root, settings, label)
        settings.out = str(out)
        if (out / SUMMARY).is_file():
            print(f"[{i}/{len(plan)}] {label}, seed {seed}: done already ({out})", flush=True)
            done.append(publish(out, root, summaries) if summaries else out / SUMMARY)
            continue
        settings.resume = (out / "checkpoint.pt").is_file()
        print(f"[{i}/{len(plan)}] {label}, seed {seed}: {'resuming' if settings.resume else 'training'} "
              f"-> {out}", flush=True)
        tick = time.perf_counter()
        summary = train(settings)
        print(f"[{i}/{len(plan)}] {label}, seed {seed}: test accuracy {summary['final_test_accuracy']:.4f} "
              f"({time.perf_counter() - tick:.0f} s)", flush=True)
        if not keep_checkpoints:
            (out / "checkpoint.pt").unlink(missing_ok=True)
        done.append(publish(out, root, summaries) if summaries else out / SUMMARY)
    return done


def _shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--shard: ")) from None


def parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m rramk.ablation",
                   description="Train the same BNN under every device ablation and seed (MODEL.md section 4).")
    p.add_argument("dataset", choices=["mnist", "cifar10"])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--full", action="store_true", help="the published budget (mnist: 20 epochs, full data)")
    budget.add_argument("--epochs", type=int, help="epochs per run (default: a short CPU budget, see SHORT_BUDGET)")
    p.add_argument("--limit-train", type=int, help="training examples per run (default: short budget's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    p.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS), metavar="CONFIG",
                   help=f"configurations (default all: {', '.join(CONFIGS)})")
    p.add_argument("--hidden", type=int, default=3000, help="mnist hidden units (default 3000)")
    p.add_argument("--width", type=float, default=0.125, help="cifar10 width multiplier (default 0.125)")
    p.add_argument("--lr-pulses", type=float, help="pulse learning rate (default: rramk.train's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="auto", choices=["auto", "reference", "compiled", "triton"])
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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides = {"device": args.device, "backend": args.backend, "data_dir": args.data_dir, "width": args.width,
                 "hidden": args.hidden}
    if args.lr_pulses is not None:
        overrides["lr_pulses"] = args.lr_pulses
    if args.full:
        overrides["limit_train"] = args.limit_train
    else:
        short = SHORT_BUDGET[args.dataset]
        overrides["epochs"] = args.epochs if args.epochs is not None else short["epochs"]
        overrides["limit_train"] = args.limit_train if args.limit_train is not None else short["limit_train"]
    from .data import DatasetNotFound

    try:
        shard = args.shard if args.shard is not None else shard_from_environment()
        paths = run_study(args.dataset, args.seeds, args.configs, args.out, summaries=args.summaries,
                          progress=args.progress, keep_checkpoints=args.keep_checkpoints, shard=shard, **overrides)
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
        print(f"shard {shard} ({len(paths)} of {len(study_plan(args.seeds, args.configs))} runs): ", end="")
    print(f"{len(paths)} runs finished under {args.out}; tables and plots: python -m rramk.report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
