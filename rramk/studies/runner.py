"""The study runner: every (configuration, learning rate, seed) run of a study, each in its own directory.

A run writes ``<root>/<dataset>/<budget>[-preset-<stem>-<hash>]/<configuration slug>[-lr<rate>]/seed<k>``
(checkpoint, metrics, summary.json), shared by every study that names the same run; a finished run is
skipped and an interrupted one resumes; a shard (``shards``) runs its share only; finished summaries
are copied to ``summaries`` (reports/ablation/summaries), which the reports read. The command is
``rramk.ablation``.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from rramk import cli, provenance
from rramk.studies.configs import ABLATIONS, STUDIES, AblationConfig, Study
from rramk.studies.shards import Shard
from rramk.studies.summaries import UNSUFFIXED_LR
from rramk.training.loop import SUMMARY, atomic_write_text, train
from rramk.cli import UsageError
from rramk.device.preset import PresetError, load_preset
from rramk.training.run_settings import RunSettings, default_network


CONFIGS: dict[str, str] = {label: config.flag for label, config in STUDIES["legacy"].configs.items()}
"""The legacy study's labels -> the --imperfections value of rramk.train that trains each (bench/ runs these)."""
SHORT_BUDGET = {"mnist": {"epochs": 1, "limit_train": 10_000}, "fashion-mnist": {"epochs": 1, "limit_train": 10_000},
                "cifar10": {"epochs": 2, "limit_train": 10_000}, "cifar10-jpeg": {"epochs": 2, "limit_train": 10_000}}


def budget_tag(settings: RunSettings) -> str:
    """Directory name of a training budget and device, so that runs of different budgets or presets never
    mix: a preset adds its file's stem and the first 8 hex digits of its SHA-256 (another file, or the same
    file edited, is another device)."""
    tag = f"epochs{settings.epochs}"
    if settings.limit_train:
        tag += f"-n{settings.limit_train}"
    if settings.validation:  # runs that choose their epoch on validation (older runs had no split)
        tag += f"-val{settings.validation}"
    if settings.network == "mlp" and settings.hidden != 3000:
        tag += f"-hidden{settings.hidden}"
    if settings.network == "vgg":
        tag += f"-width{settings.width:g}" if default_network(settings.dataset) == "vgg" else f"-vgg{settings.width:g}"
    if settings.preset:
        tag += f"-preset-{Path(settings.preset).stem}-{settings.preset_sha256[:8]}"
    return tag


def lr_suffix(settings: RunSettings) -> str:
    """``-lr<rate>`` for a pulse learning rate other than UNSUFFIXED_LR, else "": runs at other rates never
    share a directory (whatever rramk.train's default is)."""
    return "" if settings.lr_pulses == UNSUFFIXED_LR else f"-lr{settings.lr_pulses:g}"


def run_directory(root: Path, settings: RunSettings, directory: str) -> Path:
    """root/<dataset>/<budget>/<directory>[-lr<rate>]/seed<k>: where the run of these settings lives."""
    return root / settings.dataset / budget_tag(settings) / f"{directory}{lr_suffix(settings)}" / f"seed{settings.seed}"


def publish(run: Path, root: Path, summaries: Path) -> Path:
    """Copy a finished run's summary.json and metrics.jsonl under ``summaries`` (the committed copy)."""
    target = summaries / run.relative_to(root)
    target.mkdir(parents=True, exist_ok=True)
    for name in (SUMMARY, "metrics.jsonl"):
        if (run / name).is_file():  # whole or not at all: the study's other shards read these
            atomic_write_text(target / name, (run / name).read_text())
    return target / SUMMARY


def published_matches(path: Path, settings: RunSettings) -> bool:
    """Whether ``path`` is the published summary of a finished run of these settings (another machine's or
    session's, committed with reports/): then the run is not trained again. Where it ran (device,
    backend, output directory) does not count; everything that decides its bits does."""
    import json

    if not path.is_file():
        return False
    recorded = json.loads(path.read_text()).get("settings", {})
    ignore = {"device", "backend"}
    return all(recorded.get(k) == v for k, v in settings.comparable().items() if k not in ignore)


def warn_other_machines(summary_paths: list[Path]) -> set[str]:
    """Warn (stderr) when finished CPU runs of the study recorded another machine fingerprint than this
    process's (``rramk.provenance.fingerprint``: CPU identity, torch's vector code, threads, torch, BLAS,
    oneDNN): the runs it trains will not repeat theirs bit for bit (README). Returns the differences
    found; a field a summary does not record (older summaries) and GPU runs say nothing."""
    import json

    here = provenance.machine()
    differences, threads = set(), set()
    for path in summary_paths:
        if path.is_file():
            machine = json.loads(path.read_text()).get("machine", {})
            if machine.get("gpu"):
                continue
            recorded = {k: v for k, v in machine.items() if k in provenance.FINGERPRINT}
            differences.update(r for r in provenance.fingerprint_differences(recorded, here)
                               if not r.endswith("not recorded"))
            if recorded.get("threads") not in (None, here["threads"]):
                threads.add(recorded["threads"])
    if differences:
        hint = f" (set OMP_NUM_THREADS={min(threads)} for the thread count)" if threads else ""
        cli.say(f"rramk.ablation: warning: runs of this study were made on another machine fingerprint "
                f"({'; '.join(sorted(differences))}): the runs this process trains will not repeat theirs bit "
                f"for bit, only statistically{hint}", file=sys.stderr)
    return differences


def resolve(config: str | AblationConfig, study: Study | None = None) -> tuple[str, AblationConfig]:
    """(label, configuration) of a label of ``study`` or of the registry, or of a configuration."""
    if isinstance(config, AblationConfig):
        return config.label, config
    if study is not None and config in study.configs:
        return config, study.configs[config]
    if config in ABLATIONS:
        return config, ABLATIONS[config]
    for other in STUDIES.values():
        if config in other.configs:
            return config, other.configs[config]
    raise UsageError(f"--configs: unknown configuration {config!r}")


def study_plan(seeds: list[int], configs: list, lrs: list[float | None] | None = None) -> list[tuple]:
    """Every run of the study, seed by seed: (config, seed), or (config, seed, lr) when ``lrs`` is given."""
    if lrs is None:
        return [(label, seed) for seed in seeds for label in configs]
    return [(label, seed, lr) for seed in seeds for label in configs for lr in lrs]


def _flag_on_device(label: str, config: AblationConfig, device, preset: str | None, skipped: set) -> str | None:
    """The --imperfections flag of ``config`` on the preset's ``device`` (None: no preset, the config's own flag);
    None where the configuration is about an imperfection the device lacks (printed once, added to ``skipped``).
    A preset may lack one (e.g. the RTN its source never measured): the configurations about it ("mean + rtn",
    "full but rtn") are not this device's, and the others take the device's own imperfections."""
    if device is None or config.imperfections is None:
        return config.flag
    about = re.match(r"(?:mean \+|full but) (\w+)", label)
    if about and not getattr(device, about.group(1), True):
        if label not in skipped:
            print(f"{label}: skipped, the device of {preset} has no {about.group(1)}", flush=True)
        skipped.add(label)
        return None
    own = tuple(n for n in config.imperfections if getattr(device, n))
    return "all" if own == device.imperfections else ",".join(own) or "none"


def run_study(dataset: str, seeds: list[int], configs: list, root: Path, summaries: Path | None = None,
              progress: bool = True, keep_checkpoints: bool = False, shard: Shard | None = None,
              lrs: list[float | None] | None = None, study: Study | None = None, **overrides) -> list[Path]:
    """Run (or finish) every (config, seed[, lr]) of the study, or of its ``shard``; returns the summary paths.

    ``configs``: labels (of ``study``, or of the registry) or AblationConfig; ``lrs``: pulse learning
    rates (None in it, or no ``lrs``: ``overrides``' lr_pulses or rramk.train's default). A finished
    run's checkpoint is deleted (it is only needed to resume) unless ``keep_checkpoints``; its summary
    and metrics are copied under ``summaries`` if given.
    """
    done = []
    plan = study_plan(seeds, configs, lrs)
    runs = []
    try:
        device = load_preset(overrides["preset"]) if overrides.get("preset") else None
    except PresetError as e:
        raise UsageError(f"--preset: {e}") from None
    skipped = set()
    for config, seed, *lr in plan:
        label, config = resolve(config, study)
        flag = _flag_on_device(label, config, device, overrides.get("preset"), skipped)
        if flag is None:
            continue
        run_overrides = dict(overrides)
        if config.imperfections is None:  # the ideal BNN has no pulses: one run, unsuffixed, serves every rate
            run_overrides["lr_pulses"] = UNSUFFIXED_LR
        elif lr and lr[0] is not None:
            run_overrides["lr_pulses"] = lr[0]
        settings = RunSettings(dataset=dataset, imperfections=flag, scale=config.scale_flag, seed=seed,
                               progress=progress, **run_overrides)
        out = run_directory(root, settings, config.slug)
        if any(out == other for *_, other in runs):
            continue
        settings.out = str(out)
        runs.append((label, seed, settings, out))
    # the whole study's finished runs, every shard's: their machine fingerprint is the one to match
    warn_other_machines([out / SUMMARY for *_, out in runs] +
                       ([summaries / out.relative_to(root) / SUMMARY for *_, out in runs] if summaries else []))
    if shard is not None:
        runs = shard.select(runs)
    for i, (label, seed, settings, out) in enumerate(runs, start=1):
        name = f"{label}{', lr ' + format(settings.lr_pulses, 'g') if lr_suffix(settings) else ''}, seed {seed}"
        if (out / SUMMARY).is_file():
            print(f"[{i}/{len(runs)}] {name}: done already ({out})", flush=True)
            done.append(publish(out, root, summaries) if summaries else out / SUMMARY)
            continue
        published = summaries / out.relative_to(root) / SUMMARY if summaries else None
        if published is not None and published_matches(published, settings):
            print(f"[{i}/{len(runs)}] {name}: done already (its summary is in {published.parent})", flush=True)
            done.append(published)
            continue
        settings.resume = (out / "checkpoint.pt").is_file()
        print(f"[{i}/{len(runs)}] {name}: {'resuming' if settings.resume else 'training'} -> {out}", flush=True)
        tick = time.perf_counter()
        summary = train(settings)
        chosen = (f" (epoch {summary['selected_epoch']}, chosen on validation)"
                  if summary.get("selection") == "validation" else "")
        print(f"[{i}/{len(runs)}] {name}: test accuracy "
              f"{summary.get('selected_test_accuracy', summary['final_test_accuracy']):.4f}{chosen} "
              f"({time.perf_counter() - tick:.0f} s)", flush=True)
        if not keep_checkpoints:
            (out / "checkpoint.pt").unlink(missing_ok=True)
        done.append(publish(out, root, summaries) if summaries else out / SUMMARY)
    return done
