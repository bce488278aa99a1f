"""The README's main job: a short MNIST run, ideal BNN against the device model, side by side.

    python -m rramk.demo [--epochs 3] [--data-dir DIR] [--out runs/demo]

trains the published 784-3000-10 network for a few epochs twice, once as the software BNN and
once on simulated HfOx synapses with every imperfection on, and prints both test accuracies.
A few minutes on a 2-core CPU (the first device run also compiles the CPU kernels, about a
minute, cached afterwards).
"""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import argparse
import shutil
import sys
from pathlib import Path

from tabulate import tabulate

from rramk.training.run_settings import RunSettings
from rramk.training.loop import UsageError, train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rramk.demo", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs of each run (default 3)")
    p.add_argument("--data-dir", help="data directory (default: $RRAMK_DATA, else ~/.cache/rramk)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output directory (default runs/demo)")
    args = p.parse_args(argv)
    from .data import DatasetNotFound

    rows = []
    try:
        for imperfections, label in (("ideal", "ideal software BNN"), ("all", "HfOx devices, all imperfections")):
            out = args.out / imperfections
            shutil.rmtree(out, ignore_errors=True)
            settings = RunSettings(dataset="mnist", imperfections=imperfections, epochs=args.epochs,
                                   data_dir=args.data_dir, out=str(out))
            print(f"== {label}: python -m rramk.train mnist --imperfections {imperfections} --epochs {args.epochs}",
                  flush=True)
            summary = train(settings)
            rows.append([label, f"{100 * summary['final_test_accuracy']:.2f}", f"{summary['train_seconds']:.0f}"])
    except (UsageError, DatasetNotFound) as e:
        print(f"python -m rramk.demo: {e}", file=sys.stderr)
        return 2
    print()
    print(tabulate(rows, headers=["MNIST 784-3000-10", f"test accuracy after {args.epochs} epochs (%)",
                                  "training seconds"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
