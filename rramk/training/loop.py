"""The training loop: data, model, optimizer, epochs, checkpoints and summaries of one run.

:func:`train` runs (or resumes) the run a :class:`rramk.training.run_settings.RunSettings` describes
and writes into its ``out``: ``metrics.jsonl`` (one line per epoch), ``checkpoint.pt`` (after every
epoch and on Ctrl-C, written atomically) and ``summary.json`` (at the end, with the machine
fingerprint). A resumed run continues bit for bit like an unbroken one; under torchrun every process
evolves identical devices from the same seed (``distributed``). The command is ``rramk.train``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from rramk import cli, provenance
from rramk.training.run_settings import DATASETS, RunSettings
from rramk.training.distributed import Distributed, batch_share, init_distributed, reduce_step
from rramk.nn.batch_norm import use_global_batch_norm

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT_FORMAT = "rramk.train/1"
UsageError = cli.UsageError


# ----------------------------------------------------------------------------- pieces


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device: expected auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device: CUDA was asked for but torch sees no GPU; use --device cpu")
    return device


def load_data(settings: RunSettings, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(train x, y, validation x, y, test x, y) as normalized float32 tensors on ``device``: the
    validation set is the last ``settings.validation`` images of the official training set
    (``rramk.data.validation_split``), ``limit_train`` keeps the first images of the rest."""
    from rramk import data

    load = getattr(data, DATASETS[settings.dataset].loader)
    dataset = load(settings.data_dir, download=settings.download)
    try:
        (train_images, train_labels), (val_images, val_labels) = data.validation_split(
            dataset.train_images, dataset.train_labels, settings.validation)
    except ValueError as e:
        raise UsageError(f"--{e}") from None
    if settings.limit_train is not None:
        train_images, train_labels = train_images[:settings.limit_train], train_labels[:settings.limit_train]
    parts = ((train_images, train_labels), (val_images, val_labels), (dataset.test_images, dataset.test_labels))
    return tuple(t for images, labels in parts
                 for t in (data.normalize(images, dataset.name).to(device), labels.to(device)))


def build_model(settings: RunSettings) -> torch.nn.Module:
    torch.manual_seed(settings.seed)  # the latent weights of the ideal BNN, batch-norm init
    return settings.model()


def build_optimizer(settings: RunSettings, model: torch.nn.Module, backend: str):
    from rramk.optim import LatentAdam, WeakResetAdam

    config = settings.device_config
    if config is None:
        optimizer = LatentAdam(model.parameters(), lr=settings.lr)
    else:
        optimizer = WeakResetAdam(model.parameters(), config, lr_pulses=settings.lr_pulses, lr=settings.lr,
                                  seed=settings.seed, backend=backend, refresh=settings.refresh)
    # the pulse (or latent) learning rate decays; the float parameters' rate stays
    decays = [
        (lambda epoch, d=settings.lr_decay, every=settings.lr_decay_epochs: d ** (epoch // every))
        if g["kind"] == "binary" else (lambda epoch: 1.0)
        for g in optimizer.param_groups
    ]
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, decays)


def epoch_order(settings: RunSettings, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The shuffle of an epoch: a pure function of (seed, epoch), so a resumed run repeats it."""
    g = torch.Generator().manual_seed(settings.seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def augment_generator(settings: RunSettings, epoch: int, batch: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((settings.seed * 1_000_003 + epoch) * 100_003 + batch)
    return g


@torch.no_grad()
def evaluate(model, x, y, batch_size: int) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        out = model(x[start:start + batch_size])
        loss += F.cross_entropy(out, y[start:start + batch_size], reduction="sum").item()
        correct += (out.argmax(1) == y[start:start + batch_size]).sum().item()
    model.train()
    return loss / len(x), correct / len(x)


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader (a study's other shard) sees the old file or the new one,
    never a part: a temporary of this process beside it, then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class NonFiniteLoss(RuntimeError):
    pass


# ----------------------------------------------------------------------------- the run


def fresh_running() -> dict:  # the running sums of an epoch's training batches
    return {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


@dataclasses.dataclass
class Run:
    """A run between two steps: the state its checkpoint holds, and the data and wiring around it."""

    settings: RunSettings
    device: torch.device
    dist: Distributed
    data: tuple[torch.Tensor, ...]  # train x, y, validation x, y, test x, y
    model: torch.nn.Module
    ddp_model: torch.nn.Module  # what the steps run through: the model, or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    epoch: int = 0  # epochs done
    batch: int = 0  # batches of the next epoch done
    running: dict = dataclasses.field(default_factory=fresh_running)
    history: list = dataclasses.field(default_factory=list)  # one record per epoch done

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.settings.out) / CHECKPOINT


def read_checkpoint(settings: RunSettings, device: torch.device) -> dict | None:
    """The checkpoint that --resume continues (None: a new run, which must not overwrite one)."""
    out = Path(settings.out)
    path = out / CHECKPOINT
    if not settings.resume:
        if path.exists():
            raise UsageError(f"--out: {out} already holds a run; add --resume to continue it or choose another --out")
        return None
    if not path.is_file():
        raise UsageError(f"--resume: no checkpoint at {path}; run without --resume to start")
    checkpoint = torch.load(path, map_location=device, weights_only=False)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"--resume: {path} is not an rramk.train checkpoint")
    saved = RunSettings(**checkpoint["settings"]).comparable()
    differ = [k for k, v in settings.comparable().items() if saved.get(k) != v]
    if differ:
        detail = ", ".join(f"--{k.replace('_', '-')} {saved.get(k)!r} (now {getattr(settings, k)!r})" for k in differ)
        raise UsageError(f"--resume: the checkpoint was made with other settings: {detail}")
    if checkpoint.get("preset_sha256", "") != settings.preset_sha256:
        raise UsageError(f"--resume: the preset file {settings.preset} changed since the checkpoint was made (SHA-256 "
                         f"{checkpoint.get('preset_sha256', '')[:12]}..., now {settings.preset_sha256[:12]}...)")
    return checkpoint


def check_batches_split(settings: RunSettings, dist_info: Distributed, n_train: int) -> None:
    """Every batch, the short last one too, must split into equal shares over the processes."""
    if dist_info.active and settings.batch_size % dist_info.world_size:
        raise UsageError(f"--batch-size: {settings.batch_size} does not split over {dist_info.world_size} processes")
    if dist_info.active and (n_train % settings.batch_size) % dist_info.world_size:
        raise UsageError(f"--limit-train: the last batch of each epoch ({n_train % settings.batch_size} of {n_train} "
                         f"examples) does not split over {dist_info.world_size} processes; choose a --limit-train "
                         f"that does")


def start_run(settings: RunSettings, device: torch.device, dist_info: Distributed, checkpoint: dict | None) -> Run:
    """Load the data, build the model and its optimizer, and restore the checkpoint's state if any."""
    if device.type == "cpu" and settings.network == "vgg" and settings.width >= 0.5 and dist_info.main:
        cli.say(f"rramk.train: warning: the VGG at width {settings.width} has "
                f"~{36 * settings.width**2:.0f}M synapses and takes hours per epoch on a CPU; "
                "shrink it with --width (e.g. --width 0.125)", file=sys.stderr)
    data = load_data(settings, device)
    check_batches_split(settings, dist_info, len(data[0]))
    model = build_model(settings).to(device)
    if dist_info.active:
        model = use_global_batch_norm(model)
    optimizer, scheduler = build_optimizer(settings, model, settings.backend)
    ddp_model = (torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False) if dist_info.active
                 else model)
    run = Run(settings, device, dist_info, data, model, ddp_model, optimizer, scheduler)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        run.epoch, run.batch = checkpoint["epoch"], checkpoint["batch"]
        run.running, run.history = checkpoint["running"], checkpoint["history"]
    if dist_info.main:
        Path(settings.out).mkdir(parents=True, exist_ok=True)
        if checkpoint is not None:  # the checkpoint's epochs, whatever a kill between the two writes left
            metrics = Path(settings.out) / METRICS
            tmp = metrics.with_name(METRICS + ".tmp")
            tmp.write_text("".join(json.dumps(record) + "\n" for record in run.history))
            os.replace(tmp, metrics)
    return run


def save_checkpoint(run: Run) -> None:
    """The run's state, atomically (by the main process only)."""
    if run.dist.main:
        atomic_save({"format": CHECKPOINT_FORMAT, "settings": dataclasses.asdict(run.settings),
                     "preset_sha256": run.settings.preset_sha256, "epoch": run.epoch,
                     "batch": run.batch, "running": run.running, "history": run.history,
                     "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                     "scheduler": run.scheduler.state_dict()}, run.checkpoint_path)


STOP_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)
"""Ctrl-C, and the SIGTERM of a scheduler (Slurm's scancel and time limit, kill): a run saves and stops."""


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[SimpleNamespace]:
    """While training, Ctrl-C or SIGTERM (``STOP_SIGNALS``) only sets ``.requested``: the step in
    progress finishes, then the run saves and stops. The previous handlers come back on exit."""
    interrupt = SimpleNamespace(requested=False)
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def on_interrupt(signum, frame):
        interrupt.requested = True

    for s in STOP_SIGNALS:
        signal.signal(s, on_interrupt)
    try:
        yield interrupt
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def training_batch(run: Run, order: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch b of the epoch's order: this process's share of it, augmented where the data set is."""
    settings = run.settings
    idx = batch_share(run.dist, order[b * settings.batch_size:(b + 1) * settings.batch_size])
    x, y = run.data[0][idx], run.data[1][idx]
    augment = DATASETS[settings.dataset].augment
    if augment is not None:
        from rramk import data

        # padded with black, as the published recipe crops before it normalizes (the data are normalized here)
        x = getattr(data, augment)(x, augment_generator(settings, run.epoch, b, run.device),
                                   fill=data.normalized_black(settings.dataset))
    return x, y


def train_step(run: Run, x: torch.Tensor, y: torch.Tensor, interrupt: SimpleNamespace,
               where: str) -> tuple[float, int, int, bool]:
    """One optimizer step: (summed loss, correct, examples) over the global batch, and whether to stop."""
    run.optimizer.zero_grad(set_to_none=True)
    logits = run.ddp_model(x)
    loss = F.cross_entropy(logits, y)
    loss_sum, correct, seen, stop = reduce_step(run.dist, loss.item() * len(y), (logits.argmax(1) == y).sum().item(),
                                                len(y), interrupt.requested, run.device)
    loss_value = loss_sum / seen if run.dist.active else loss.item()
    if not math.isfinite(loss_value):
        kept = (f"the last good checkpoint is {run.checkpoint_path}" if run.checkpoint_path.exists()
                else "no checkpoint was written yet")
        raise NonFiniteLoss(f"the training loss became {loss_value} at {where}; {kept} "
                            "(try a smaller --lr or --lr-pulses)")
    loss.backward()
    run.optimizer.step()
    # processes stop at the step they agreed on; one process also heeds a Ctrl-C during this step
    return loss_sum, correct, seen, stop if run.dist.active else interrupt.requested


def train_epoch(run: Run, interrupt: SimpleNamespace) -> None:
    """Epoch ``run.epoch`` from batch ``run.batch`` on; on Ctrl-C: save, raise KeyboardInterrupt."""
    from tqdm import tqdm

    settings, epoch = run.settings, run.epoch
    if run.batch == 0:
        run.running = fresh_running()
    running, n_train = run.running, len(run.data[0])
    batches = math.ceil(n_train / settings.batch_size)
    order = epoch_order(settings, epoch, n_train, run.device)
    tick = time.perf_counter()
    with tqdm(range(run.batch, batches), total=batches, initial=run.batch, desc=f"epoch {epoch + 1}/{settings.epochs}",
              disable=not (settings.progress and run.dist.main), unit="batch", leave=False) as bar:
        for b in bar:
            x, y = training_batch(run, order, b)
            loss, correct, seen, stop = train_step(run, x, y, interrupt, f"epoch {epoch + 1}, batch {b + 1}")
            running["loss"] += loss
            running["correct"] += correct
            running["seen"] += seen
            run.batch = b + 1
            bar.set_postfix(loss=f"{running['loss'] / running['seen']:.3f}",
                            acc=f"{running['correct'] / running['seen']:.3f}")
            if stop:
                running["seconds"] += time.perf_counter() - tick
                save_checkpoint(run)
                raise KeyboardInterrupt
    running["seconds"] += time.perf_counter() - tick


def record_epoch(run: Run) -> None:
    """Evaluate the finished epoch, record it (history, metrics.jsonl), decay the rates and save."""
    settings, running, epoch = run.settings, run.running, run.epoch
    batch = max(settings.batch_size, 1000)
    val_loss, val_acc = evaluate(run.model, run.data[2], run.data[3], batch) if settings.validation else (None, None)
    test_loss, test_acc = evaluate(run.model, run.data[4], run.data[5], batch)
    record = {"epoch": epoch + 1, "train_loss": running["loss"] / max(running["seen"], 1),
              "train_accuracy": running["correct"] / max(running["seen"], 1), "validation_loss": val_loss,
              "validation_accuracy": val_acc, "test_loss": test_loss, "test_accuracy": test_acc,
              "seconds": running["seconds"],
              "lr": [g["lr"] for g in run.optimizer.param_groups], **run.optimizer.device_statistics()}
    run.history.append(record)
    run.scheduler.step()
    run.epoch, run.batch, run.running = epoch + 1, 0, fresh_running()
    save_checkpoint(run)
    if run.dist.main:
        with open(Path(settings.out) / METRICS, "a") as f:
            f.write(json.dumps(record) + "\n")
        validation = "" if val_acc is None else f"validation acc {val_acc:.4f}, "
        cli.say(f"epoch {epoch + 1}/{settings.epochs}: train acc {record['train_accuracy']:.4f}, {validation}"
                f"test acc {test_acc:.4f}, {record['seconds']:.1f} s")


SELECTION_RULES = {"validation": "the epoch of highest validation accuracy (the earliest of equals)",
                   "last epoch": "the last epoch (the run has no validation split)"}
"""How a run's reported accuracy is chosen, by the name its summary records under ``selection``."""


def selected_epoch(history: list[dict]) -> dict:
    """The epoch a run reports and its test accuracy: chosen on validation when the run has a validation
    split, else the last (``SELECTION_RULES``). Test accuracy never chooses."""
    if not history:
        return {"selection": None, "selected_epoch": None, "selected_test_accuracy": None}
    if history[-1].get("validation_accuracy") is None:
        chosen, rule = history[-1], "last epoch"
    else:  # max() keeps the first of equal values: the earliest epoch
        chosen, rule = max(history, key=lambda h: h["validation_accuracy"]), "validation"
    return {"selection": rule, "selected_epoch": chosen["epoch"], "selected_test_accuracy": chosen["test_accuracy"]}


def write_summary(run: Run) -> dict:
    """The run's summary, written to OUT/summary.json by the main process."""
    settings, history, config = run.settings, run.history, run.settings.device_config
    summary = {
        "dataset": settings.dataset, "imperfections": settings.imperfections,
        "device_config": config.to_dict() if config is not None else None, "preset": settings.preset_record(),
        "epochs": settings.epochs, "seed": settings.seed, "validation": settings.validation,
        **selected_epoch(history),
        "final_test_accuracy": history[-1]["test_accuracy"] if history else None,
        "best_test_accuracy": max((h["test_accuracy"] for h in history), default=None),
        "train_seconds": sum(h["seconds"] for h in history), "history": history,
        "settings": dataclasses.asdict(settings), "machine": provenance.machine(), "date": provenance.today(),
        "command": provenance.command_line(), "code": provenance.code_version(), "processes": run.dist.world_size,
    }
    if run.dist.main:
        atomic_write_text(Path(settings.out) / SUMMARY, json.dumps(summary, indent=1))
    return summary


def train(settings: RunSettings) -> dict:
    """Run (or resume) a training run; returns the summary written to OUT/summary.json."""
    device = resolve_device(settings.device)
    dist_info = init_distributed(device)
    run = start_run(settings, device, dist_info, read_checkpoint(settings, device))
    with deferred_interrupt() as interrupt:
        while run.epoch < settings.epochs:
            train_epoch(run, interrupt)
            record_epoch(run)
    return write_summary(run)
