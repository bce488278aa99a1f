"""The accuracy of a trained run after time: drift and read noise since its weights were programmed.

    python -m rramk.evaluate RUN --after 1s 1h 1d 1y [--drift-nu MEAN[,SD]] [--read-noise SD] [--t0 1s]

RUN is a directory rramk.train wrote (its checkpoint.pt: the final weights). Writes RUN/retention.json
(machine, date, command) and prints the test accuracy at each time; ``rramk.device.drift`` has the model.
"""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import json
import re
import sys
from pathlib import Path

from tabulate import tabulate

from . import provenance

UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0, "y": 365.25 * 86400.0}
RESULT = "retention.json"


def seconds(text: str) -> float:
    """'1s', '10min', '1h', '1d', '2w', '1y' or a plain number of seconds, as seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(s|min|h|d|w|y)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"expected a duration such as 1s, 10min, 1h, 1d, 2w, 1y, got {text!r}")
    return float(match.group(1)) * UNITS[(match.group(2) or "s").lower()]


def _drift(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        values = [float(x) for x in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise ValueError(f"expected MEAN or MEAN,SD of the drift exponent nu (e.g. 0.05,0.02), got {text!r}")
    return values[0], values[1] if len(values) == 2 else 0.0


def parser() -> cli.Parser:
    p = cli.Parser(prog="python -m rramk.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, metavar="RUN", help="a directory rramk.train wrote (holds checkpoint.pt)")
    p.add_argument("--after", nargs="+", required=True, metavar="T",
                   help="times after programming: 1s, 10min, 1h, 1d, 2w, 1y or seconds")
    p.add_argument("--drift-nu", default="0", metavar="MEAN[,SD]",
                   help="drift exponent nu of R(t) = R(t0) (t/t0)^nu, normal across devices (default 0: none)")
    p.add_argument("--read-noise", type=float, default=0.0, metavar="SD",
                   help="white noise of each read, sd of ln R (default 0)")
    p.add_argument("--t0", default="1s", help="time after programming of the first read (default 1s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drift exponents and read noise (default 0)")
    p.add_argument("--data-dir", help="data directory (default: the run's, else $RRAMK_DATA or ~/.cache/rramk)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .device.drift import Retention
    from .training.aging import accuracy_after, load_run, untouched_accuracy

    try:
        try:
            times = [seconds(t) for t in args.after]
            t0 = seconds(args.t0)
        except ValueError as e:
            raise cli.UsageError(f"--after / --t0: {e}") from None
        try:
            nu_mean, nu_sd = _drift(args.drift_nu)
            retention = Retention(nu_mean=nu_mean, nu_sd=nu_sd, read_noise=args.read_noise, t0=t0)
        except ValueError as e:
            raise cli.UsageError(f"--drift-nu / --read-noise / --t0: {e}") from None
        if min(times) < t0:
            raise cli.UsageError(f"--after: every time must be at least --t0 ({t0:g} s), got {min(times):g} s")
        run = load_run(args.run, args.data_dir)
        rows = accuracy_after(run, times, retention, seed=args.seed)
    except cli.UsageError as e:
        print(f"rramk.evaluate: {e}", file=sys.stderr)
        return 2
    trained = untouched_accuracy(run)
    print(f"{args.run}: test accuracy {100 * trained:.2f} % as trained (epoch {run.epoch}, the last)")
    print(tabulate([[text, f"{100 * r['test_accuracy']:.2f}", f"{100 * r['flipped']:.3f}"]
                    for text, r in zip(args.after, rows)],
                   headers=["after", "test accuracy (%)", "weights flipped (%)"], tablefmt="github"))
    record = {"format": "rramk.evaluate/1", "retention": {"nu_mean": nu_mean, "nu_sd": nu_sd,
                                                          "read_noise": args.read_noise, "t0_s": t0},
              "seed": args.seed, "epoch": run.epoch, "trained_test_accuracy": trained, "after": rows,
              "command": provenance.command_line(), "date": provenance.today(), "machine": provenance.machine_line()}
    from .training.loop import atomic_write_text

    path = args.run / RESULT
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
