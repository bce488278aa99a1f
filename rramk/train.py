"""Train a binarized neural network on simulated HfOx RRAM: ``python -m rramk.train {mnist,cifar10}``.

The binary weights either live in simulated 2T2R synapses trained by weak-RESET pulses
(``rramk.optim.WeakResetAdam``, MODEL.md section 3) with the chosen device imperfections on,
or are the latent float weights of a software BNN (``--imperfections ideal``). Defaults are the
published settings (MODEL.md section 5): MNIST 784-3000-10, batch 1000, 20 epochs; CIFAR-10
VGG, batch 500; the pulse learning rate is halved every 7 epochs.

Outputs in ``--out``: ``metrics.jsonl`` (one line per epoch), ``checkpoint.pt`` (after every
epoch and on Ctrl-C, written atomically), ``summary.json`` (at the end). ``--resume``
continues from the checkpoint bit for bit like an unbroken run, and refuses a checkpoint made
with other settings.

Data parallel: ``torchrun --nproc_per_node=2 -m rramk.train mnist ...`` splits every global
batch across the processes (gloo on CPUs, NCCL on GPUs); batch-norm statistics are reduced
over the global batch and every process evolves identical devices from the same seed.
"""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import provenance
from .device.config import IMPERFECTIONS, HfOxWeakReset

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT_FORMAT = "rramk.train/1"
# settings that may differ on --resume (they do not change the computation of past epochs)
RESUMABLE_CHANGES = ("epochs", "out", "resume", "progress", "data_dir", "download")

PUBLISHED = {
    "mnist": {"batch_size": 1000, "epochs": 20, "lr_pulses": 20.0},
    "cifar10": {"batch_size": 500, "epochs": 100, "lr_pulses": 20.0},
}


UsageError = cli.UsageError


@dataclasses.dataclass
class RunSettings:
    dataset: str
    imperfections: str = "all"
    epochs: int | None = None
    batch_size: int | None = None
    lr_pulses: float | None = None
    lr: float = 8e-3
    lr_decay: float = 0.5
    lr_decay_epochs: int = 7
    seed: int = 0
    device: str = "auto"
    backend: str = "auto"
    data_dir: str | None = None
    out: str | None = None
    resume: bool = False
    limit_train: int | None = None
    width: float = 1.0
    hidden: int = 3000
    progress: bool = True
    download: bool = True

    def __post_init__(self):
        if self.dataset not in PUBLISHED:
            raise UsageError(f"dataset: expected one of {', '.join(PUBLISHED)}, got {self.dataset!r}")
        defaults = PUBLISHED[self.dataset]
        for name in ("epochs", "batch_size", "lr_pulses"):
            if getattr(self, name) is None:
                setattr(self, name, defaults[name])
        if self.out is None:
            self.out = str(Path("runs") / f"{self.dataset}-{self.imperfections.replace(',', '+')}-seed{self.seed}")
        if self.epochs < 0:
            raise UsageError(f"--epochs: expected an integer >= 0, got {self.epochs}")
        for name in ("batch_size", "lr_decay_epochs", "hidden"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(self, name)}")
        if self.limit_train is not None and self.limit_train <= 0:
            raise UsageError(f"--limit-train: expected a positive integer, got {self.limit_train}")
        if not self.lr_pulses > 0:
            raise UsageError(f"--lr-pulses: expected a positive number of pulses, got {self.lr_pulses}")
        if not self.lr >= 0:
            raise UsageError(f"--lr: expected a learning rate >= 0, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise UsageError(f"--lr-decay: expected a factor in (0, 1], got {self.lr_decay}")
        if not self.width > 0:
            raise UsageError(f"--width: expected a positive width multiplier, got {self.width}")
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"--seed: expected an integer in [0, 2**32), got {self.seed}")
        device_config(self.imperfections)  # validates the imperfection list

    def comparable(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in RESUMABLE_CHANGES}


def device_config(imperfections: str) -> HfOxWeakReset | None:
    """The device model of an --imperfections value (None for the ideal software BNN).

    ``ideal``: no device; ``none``: the devices' mean behaviour only; ``all``: every
    imperfection; otherwise a comma list of those on, e.g. ``d2d,rtn``.
    """
    text = imperfections.strip().lower()
    if text == "ideal":
        return None
    if text == "all":
        return HfOxWeakReset()
    if text == "none":
        return HfOxWeakReset().only()
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in IMPERFECTIONS]
    if unknown or not names:
        raise UsageError(f"--imperfections: unknown {', '.join(map(repr, unknown or [text]))}; expected ideal, none, "
                         f"all, or a comma list of {', '.join(IMPERFECTIONS)}")
    return HfOxWeakReset().only(*names)


# ----------------------------------------------------------------------------- distributed


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group that torchrun describes (WORLD_SIZE > 1), else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size())


class GlobalBatchNorm(torch.autograd.Function):
    """Batch-norm statistics over the global batch of all processes (all-reduce of sums)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        import torch.distributed as dist

        dims = [0] + list(range(2, x.dim()))
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        sums = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        dist.all_reduce(sums)
        c = x.shape[1]
        n = sums[-1]
        mean = sums[:c] / n
        var = (sums[c:2 * c] / n - mean * mean).clamp(min=0)
        shape = [1, c] + [1] * (x.dim() - 2)
        inv_std = torch.rsqrt(var + eps)
        x_hat = (x - mean.view(shape)) * inv_std.view(shape)
        ctx.save_for_backward(x_hat, weight, inv_std, n)
        ctx.dims, ctx.shape = dims, shape
        unbiased = var * n / (n - 1)
        ctx.mark_non_differentiable(mean, unbiased)
        return x_hat * weight.view(shape) + bias.view(shape), mean, unbiased

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        import torch.distributed as dist

        x_hat, weight, inv_std, n = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        local = torch.cat([grad_out.sum(dims), (grad_out * x_hat).sum(dims)])
        grad_bias_local, grad_weight_local = local.split(weight.numel())
        total = local.clone()
        dist.all_reduce(total)
        sum_dy, sum_dy_xhat = total.split(weight.numel())
        grad_x = weight.view(shape) * inv_std.view(shape) * (
            grad_out - (sum_dy.view(shape) + x_hat * sum_dy_xhat.view(shape)) / n)
        # grad_x is the gradient of the sum of every process's loss (the all-reduced sums), which
        # DDP's average over processes turns into the gradient of the global mean loss; the
        # parameters' local sums are each process's share of that same sum, so they go to DDP
        # as they are (as in torch.nn.SyncBatchNorm); scaling them by the world size would
        # make the batch-norm gradients world_size times the single-process ones
        return grad_x, grad_weight_local, grad_bias_local, None


class GlobalBatchNormLayer(torch.nn.modules.batchnorm._BatchNorm):
    """Drop-in for BatchNorm1d/2d whose training statistics span all processes."""

    def _check_input_dim(self, x):
        if x.dim() not in (2, 4):
            raise ValueError(f"input: expected 2-D or 4-D input, got {x.dim()}-D")

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        y, mean, var = GlobalBatchNorm.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
            self.running_var.mul_(1 - self.momentum).add_(var, alpha=self.momentum)
            self.num_batches_tracked += 1
        return y


def use_global_batch_norm(model: torch.nn.Module) -> torch.nn.Module:
    """Replace every BatchNorm1d/2d of ``model`` by a GlobalBatchNormLayer with the same state."""
    for name, child in model.named_children():
        if isinstance(child, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            layer = GlobalBatchNormLayer(child.num_features, child.eps, child.momentum)
            layer.load_state_dict(child.state_dict())
            setattr(model, name, layer.to(child.weight.device))
        else:
            use_global_batch_norm(child)
    return model


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


def load_data(settings: RunSettings, device: torch.device):
    """(train_x, train_y, test_x, test_y) as normalized float32 tensors on ``device``."""
    from . import data

    loader = data.load_mnist if settings.dataset == "mnist" else data.load_cifar10
    dataset = loader(settings.data_dir, download=settings.download, limit=settings.limit_train)
    train_x = data.normalize(dataset.train_images, dataset.name).to(device)
    test_x = data.normalize(dataset.test_images, dataset.name).to(device)
    return train_x, dataset.train_labels.to(device), test_x, dataset.test_labels.to(device)


def build_model(settings: RunSettings) -> torch.nn.Module:
    from . import models

    torch.manual_seed(settings.seed)  # the latent weights of the ideal BNN, batch-norm init
    if settings.dataset == "mnist":
        return models.mnist_mlp(hidden=settings.hidden)
    return models.cifar10_vgg(width=settings.width)


def build_optimizer(settings: RunSettings, model: torch.nn.Module, backend: str):
    from .optim import LatentAdam, WeakResetAdam

    config = device_config(settings.imperfections)
    if config is None:
        optimizer = LatentAdam(model.parameters(), lr=settings.lr)
    else:
        optimizer = WeakResetAdam(model.parameters(), config, lr_pulses=settings.lr_pulses, lr=settings.lr,
                                  seed=settings.seed, backend=backend)
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


def device_statistics(optimizer) -> dict:
    """Pulses per device, fraction of devices past t_star, sign flips since the last call."""
    arrays = optimizer.device_arrays() if hasattr(optimizer, "device_arrays") else []
    if not arrays:
        return {}
    pulses, past, devices, flips = 0.0, 0.0, 0, 0
    for p, array in zip([p for g in optimizer.param_groups if g["kind"] == "binary" for p in g["params"]], arrays):
        t = torch.stack(array.pulse_counts()).double()
        t_star = array.d2d_parameters()["t_star"].double()
        pulses += t.sum().item()
        past += (t >= t_star).sum().item()
        devices += t.numel()
        state = optimizer.state[p]
        flips += int(state["sign_flips"].item())
        state["sign_flips"].zero_()
    synapses = devices // 2
    return {"pulses_per_device": pulses / devices, "fraction_past_t_star": past / devices,
            "sign_flips_per_synapse": flips / synapses}


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


class NonFiniteLoss(RuntimeError):
    pass


# ----------------------------------------------------------------------------- the run


def train(settings: RunSettings) -> dict:
    """Run (or resume) a training run; returns the summary written to OUT/summary.json."""
    device = resolve_device(settings.device)
    dist_info = init_distributed(device)
    out = Path(settings.out)
    checkpoint_path = out / CHECKPOINT
    checkpoint = None
    if settings.resume:
        if not checkpoint_path.is_file():
            raise UsageError(f"--resume: no checkpoint at {checkpoint_path}; run without --resume to start")
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=False)
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise UsageError(f"--resume: {checkpoint_path} is not an rramk.train checkpoint")
        saved = RunSettings(**checkpoint["settings"]).comparable()
        differ = [k for k, v in settings.comparable().items() if saved.get(k) != v]
        if differ:
            detail = ", ".join(f"--{k.replace('_', '-')} {saved.get(k)!r} (now {getattr(settings, k)!r})" for k in differ)
            raise UsageError(f"--resume: the checkpoint was made with other settings: {detail}")
    elif checkpoint_path.exists():
        raise UsageError(f"--out: {out} already holds a run; add --resume to continue it or choose another --out")
    if device.type == "cpu" and settings.dataset == "cifar10" and settings.width >= 0.5 and dist_info.main:
        print(f"rramk.train: warning: the published CIFAR-10 width ({settings.width}) has "
              f"~{36 * settings.width**2:.0f}M synapses and takes hours per epoch on a CPU; "
              "shrink it with --width (e.g. --width 0.125)", file=sys.stderr)

    train_x, train_y, test_x, test_y = load_data(settings, device)
    model = build_model(settings).to(device)
    backend = settings.backend
    if dist_info.active:
        model = use_global_batch_norm(model)
    optimizer, scheduler = build_optimizer(settings, model, backend)
    ddp_model = model
    if dist_info.active:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)

    start_epoch, start_batch, running, history = 0, 0, {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}, []
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        start_epoch, start_batch = checkpoint["epoch"], checkpoint["batch"]
        running, history = checkpoint["running"], checkpoint["history"]
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)

    def save(epoch: int, batch: int, running: dict) -> None:
        if not dist_info.main:
            return
        atomic_save({"format": CHECKPOINT_FORMAT, "settings": dataclasses.asdict(settings), "epoch": epoch,
                     "batch": batch, "running": running, "history": history, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, checkpoint_path)

    interrupted = {"flag": False}
    previous_handler = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame):
        interrupted["flag"] = True  # finish the current step, save, exit

    signal.signal(signal.SIGINT, on_interrupt)
    from tqdm import tqdm

    n_train = len(train_x)
    batches = math.ceil(n_train / settings.batch_size)
    if dist_info.active and settings.batch_size % dist_info.world_size:
        raise UsageError(f"--batch-size: {settings.batch_size} does not split over {dist_info.world_size} processes")
    if dist_info.active and (n_train % settings.batch_size) % dist_info.world_size:
        raise UsageError(f"--limit-train: the last batch of each epoch ({n_train % settings.batch_size} of {n_train} "
                         f"examples) does not split over {dist_info.world_size} processes; choose a --limit-train "
                         f"that does")
    try:
        for epoch in range(start_epoch, settings.epochs):
            order = epoch_order(settings, epoch, n_train, device)
            first = start_batch if epoch == start_epoch else 0
            if first == 0:
                running = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
            bar = tqdm(range(first, batches), total=batches, initial=first, desc=f"epoch {epoch + 1}/{settings.epochs}",
                       disable=not (settings.progress and dist_info.main), unit="batch", leave=False)
            tick = time.perf_counter()
            for b in bar:
                idx = order[b * settings.batch_size:(b + 1) * settings.batch_size]
                if dist_info.active:  # an equal share of this batch (the last one may be short)
                    share = len(idx) // dist_info.world_size
                    idx = idx[dist_info.rank * share:(dist_info.rank + 1) * share]
                x, y = train_x[idx], train_y[idx]
                if settings.dataset == "cifar10":
                    from .data import augment_cifar10

                    x = augment_cifar10(x, augment_generator(settings, epoch, b, device))
                optimizer.zero_grad(set_to_none=True)
                logits = ddp_model(x)
                loss = F.cross_entropy(logits, y)
                step_loss, step_correct, step_seen = loss.item() * len(y), (logits.argmax(1) == y).sum().item(), len(y)
                stop = interrupted["flag"]
                if dist_info.active:  # every process records the global batch and stops at the same step
                    import torch.distributed as dist

                    totals = torch.tensor([step_loss, step_correct, step_seen, float(stop)], dtype=torch.float64,
                                          device=device)
                    dist.all_reduce(totals)
                    step_loss, step_correct, step_seen = totals[0].item(), int(totals[1].item()), int(totals[2].item())
                    stop = totals[3].item() > 0
                    loss_value = step_loss / step_seen
                else:
                    loss_value = loss.item()
                if not math.isfinite(loss_value):
                    kept = (f"the last good checkpoint is {checkpoint_path}" if checkpoint_path.exists()
                            else "no checkpoint was written yet")
                    raise NonFiniteLoss(f"the training loss became {loss_value} at epoch {epoch + 1}, batch {b + 1}; "
                                        f"{kept} (try a smaller --lr or --lr-pulses)")
                loss.backward()
                optimizer.step()
                running["loss"] += step_loss
                running["correct"] += step_correct
                running["seen"] += step_seen
                bar.set_postfix(loss=f"{running['loss'] / running['seen']:.3f}",
                                acc=f"{running['correct'] / running['seen']:.3f}")
                if stop if dist_info.active else interrupted["flag"]:
                    running["seconds"] += time.perf_counter() - tick
                    save(epoch, b + 1, running)
                    raise KeyboardInterrupt
            running["seconds"] += time.perf_counter() - tick
            bar.close()
            test_loss, test_acc = evaluate(model, test_x, test_y, max(settings.batch_size, 1000))
            record = {"epoch": epoch + 1, "train_loss": running["loss"] / max(running["seen"], 1),
                      "train_accuracy": running["correct"] / max(running["seen"], 1), "test_loss": test_loss,
                      "test_accuracy": test_acc, "seconds": running["seconds"],
                      "lr": [g["lr"] for g in optimizer.param_groups], **device_statistics(optimizer)}
            history.append(record)
            scheduler.step()
            save(epoch + 1, 0, {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0})
            if dist_info.main:
                with open(out / METRICS, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"epoch {epoch + 1}/{settings.epochs}: train acc {record['train_accuracy']:.4f}, "
                      f"test acc {test_acc:.4f}, {record['seconds']:.1f} s", flush=True)
    finally:
        signal.signal(signal.SIGINT, previous_handler)

    summary = {
        "dataset": settings.dataset, "imperfections": settings.imperfections,
        "device_config": (device_config(settings.imperfections).to_dict()
                          if device_config(settings.imperfections) else None),
        "epochs": settings.epochs, "seed": settings.seed,
        "final_test_accuracy": history[-1]["test_accuracy"] if history else None,
        "best_test_accuracy": max((h["test_accuracy"] for h in history), default=None),
        "train_seconds": sum(h["seconds"] for h in history), "history": history,
        "settings": dataclasses.asdict(settings), "machine": provenance.machine(), "date": provenance.today(),
        "command": provenance.command_line(), "processes": dist_info.world_size,
    }
    if dist_info.main:
        with open(out / SUMMARY, "w") as f:
            json.dump(summary, f, indent=1)
    return summary


# ----------------------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m rramk.train",
                description="Train a binarized network whose binary weights live in simulated HfOx RRAM synapses.")
    p.add_argument("dataset", choices=list(PUBLISHED), help="mnist (784-3000-10 MLP) or cifar10 (VGG)")
    p.add_argument("--imperfections", default="all",
                   help="ideal (software BNN), none (device mean behaviour only), all, or a comma list of "
                        f"{', '.join(IMPERFECTIONS)} (default all)")
    p.add_argument("--epochs", type=int, help="epochs (default: published, mnist 20, cifar10 100)")
    p.add_argument("--batch-size", type=int, help="global batch size (default: published, mnist 1000, cifar10 500)")
    p.add_argument("--lr-pulses", type=float, help="pulse learning rate of the binary weights (default 20)")
    p.add_argument("--lr", type=float, default=8e-3,
                   help="Adam learning rate of the float parameters (and of the ideal BNN's latent weights)")
    p.add_argument("--lr-decay", type=float, default=0.5, help="factor of the binary learning rate (default 0.5)")
    p.add_argument("--lr-decay-epochs", type=int, default=7, help="epochs between decays (default 7)")
    p.add_argument("--seed", type=int, default=0, help="seed of data order, initialisation and devices")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--backend", default="auto", choices=["auto", "reference", "compiled", "triton"],
                   help="device-simulation backend (default auto: triton on CUDA, compiled on CPU)")
    p.add_argument("--data-dir", help="data directory (default: $RRAMK_DATA, else ~/.cache/rramk)")
    p.add_argument("--out", help="output directory (default runs/<dataset>-<imperfections>-seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--limit-train", type=int, help="use only the first N training examples (quick runs)")
    p.add_argument("--width", type=float, default=1.0, help="cifar10: width multiplier of the VGG (1 = published)")
    p.add_argument("--hidden", type=int, default=3000, help="mnist: hidden units (3000 = published)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--no-download", dest="download", action="store_false", help="never download data sets")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .data import DatasetNotFound

    try:
        settings = RunSettings(**vars(args))
        summary = train(settings)
    except UsageError as e:
        print(f"python -m rramk.train: error: {e}", file=sys.stderr)
        return 2
    except DatasetNotFound as e:
        print(f"python -m rramk.train: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"python -m rramk.train: stopped: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("\npython -m rramk.train: interrupted; the checkpoint is saved, continue with --resume", file=sys.stderr)
        return 130
    if summary["final_test_accuracy"] is not None:
        print(f"{settings.dataset} {settings.imperfections}: test accuracy {summary['final_test_accuracy']:.4f} "
              f"after {settings.epochs} epochs ({summary['train_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
