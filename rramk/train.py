"""Train a binarized neural network on simulated HfOx RRAM: ``python -m rramk.train {mnist,cifar10,fashion-mnist}``.

The binary weights either live in simulated 2T2R synapses trained by weak-RESET pulses
(``rramk.optim.WeakResetAdam``, MODEL.md section 3), with the chosen device imperfections on, or are
the latent float weights of a software BNN (``--imperfections ideal``); the defaults are the
published settings (MODEL.md section 5, :data:`DATASETS`). Options: ``--help``; outputs, resuming
and examples: README.md, "Using it". ``--resume`` continues from ``checkpoint.pt`` bit for bit like
an unbroken run, and refuses a checkpoint made with other settings. Data parallel
(``torchrun --nproc_per_node=2 -m rramk.train mnist ...``, ``rramk.training.distributed``): every
global batch is split across the processes, batch-norm statistics are reduced over the global batch,
and every process evolves identical devices from the same seed.
"""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import argparse
import sys

from rramk.data import DatasetNotFound
from rramk.device.backends import BACKENDS
from rramk.device.config import IMPERFECTIONS, SCALES
from rramk.training.loop import NonFiniteLoss, train
from rramk.cli import UsageError
from rramk.training.run_settings import DATASETS, RunSettings




def parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m rramk.train",
                description="Train a binarized network whose binary weights live in simulated HfOx RRAM synapses.")
    p.add_argument("dataset", choices=list(DATASETS),
                   help=", ".join(f"{name} ({recipe.network})" for name, recipe in DATASETS.items()))
    p.add_argument("--imperfections", default="all",
                   help="ideal (software BNN), none (device mean behaviour only), all, or a comma list of "
                        f"{', '.join(IMPERFECTIONS)} (default all)")
    p.add_argument("--preset", default="", metavar="PRESET.json",
                   help="the device: a preset file (rramk.load_preset; python -m rramk.fit writes one from measured "
                        "traces); --imperfections and --scale apply to it (default: the published fit)")
    p.add_argument("--scale", default="", metavar="KNOB=FACTOR,...",
                   help=f"what-if factors on the device fit, e.g. d2d=0.5,pink=2 (knobs: {', '.join(SCALES)}; "
                        "HfOxWeakReset.scaled; default: the fit)")
    p.add_argument("--refresh", default="off", metavar="CONDITION[:KEY=VALUE,...]",
                   help="re-program synapses that can no longer move: after a step, SET both devices of those "
                        "whose condition holds (past_t_star: a device past its t*; window: both devices past "
                        "(1 - margin) t*; pulses: a device with limit pulses since its last SET, a count a chip "
                        "can keep) and re-write their weights, e.g. past_t_star, window:margin=0.1,every=10 or "
                        "pulses:limit=542 "
                        "(keys margin, limit, every, max_write_pulses, retries, read_noise: the sd of ln R of "
                        "each verify read, verify_margin: ln R by which a re-write must pass; rramk.device.refresh; "
                        "default off)")
    p.add_argument("--epochs", type=int, help="epochs (default: published, mnist and fashion-mnist 20, cifar10 100)")
    p.add_argument("--batch-size", type=int,
                   help="global batch size (default: published, mnist and fashion-mnist 1000, cifar10 500)")
    p.add_argument("--lr-pulses", type=float,
                   help="pulse learning rate of the binary weights (default: mnist, fashion-mnist 8, the full model's "
                        "best rate on validation; cifar10 20)")
    p.add_argument("--lr", type=float, default=8e-3,
                   help="Adam learning rate of the float parameters (and of the ideal BNN's latent weights)")
    p.add_argument("--lr-decay", type=float, default=0.5, help="factor of the binary learning rate (default 0.5)")
    p.add_argument("--lr-decay-epochs", type=int, default=7, help="epochs between decays (default 7)")
    p.add_argument("--seed", type=int, default=0, help="seed of data order, initialisation and devices")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="device-simulation backend (default auto: triton on CUDA, native on CPU)")
    p.add_argument("--data-dir", help="data directory (default: $RRAMK_DATA, else ~/.cache/rramk)")
    p.add_argument("--out", help="output directory (default runs/<dataset>[-<preset>]-<imperfections>-seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--limit-train", type=int, help="use only the first N training examples (quick runs)")
    p.add_argument("--validation", type=int,
                   help="hold out the last N examples of the official training set; the epoch of highest "
                        "validation accuracy is the run's reported one (default mnist, fashion-mnist 10000, "
                        "cifar10 5000; 0: none, the last epoch is reported)")
    p.add_argument("--network", default="", help="the network: mlp (mnist, fashion-mnist; the default) or vgg "
                   "(cifar10; mnist and fashion-mnist: the VGG family sized for 28x28x1 images)")
    p.add_argument("--width", type=float, default=1.0,
                   help="vgg: width multiplier (cifar10 1 = published; 28x28 images: try 0.125)")
    p.add_argument("--hidden", type=int, default=3000, help="mnist, fashion-mnist: hidden units (3000 = published)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--no-download", dest="download", action="store_false", help="never download data sets")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = RunSettings(**vars(args))
        summary = train(settings)
    except UsageError as e:
        cli.say(f"python -m rramk.train: error: {e}", file=sys.stderr)
        return 2
    except DatasetNotFound as e:
        cli.say(f"python -m rramk.train: {e}", file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        cli.say(f"python -m rramk.train: stopped: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        cli.say("\npython -m rramk.train: interrupted; the checkpoint is saved, continue with --resume", file=sys.stderr)
        return 130
    if summary["selected_test_accuracy"] is not None:
        device = f" on {settings.preset}" if settings.preset else ""
        chosen = (f"at epoch {summary['selected_epoch']}, chosen on validation" if summary["selection"] == "validation"
                  else "at the last epoch")
        cli.say(f"{settings.dataset} {settings.imperfections}{device}: test accuracy "
                f"{summary['selected_test_accuracy']:.4f} {chosen} (last epoch {summary['final_test_accuracy']:.4f}; "
                f"{settings.epochs} epochs, {summary['train_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
