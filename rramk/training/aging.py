"""The accuracy of a trained run some time after its weights were programmed (``python -m rramk.evaluate``).

The run's last checkpoint (its final weights: the epoch chosen on validation may be earlier) is
loaded with its data and device arrays; at each time every binary weight is read again from the
aged resistances (``rramk.device.drift.Retention``) and the test set is evaluated. RTN keeps the
amplitude of the last update (its trap steps with pulses, not with time).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..device.drift import Retention, read_weights
from .distributed import Distributed
from .loop import CHECKPOINT, CHECKPOINT_FORMAT, evaluate, start_run
from .run_settings import RunSettings
from ..cli import UsageError


def load_run(out: Path, data_dir: str | None = None):
    """The run whose checkpoint lies in ``out``, on the CPU, with its data (``data_dir`` overrides the
    recorded one: the data may lie elsewhere on this machine)."""
    path = Path(out) / CHECKPOINT
    if not path.is_file():
        raise UsageError(f"RUN: no checkpoint at {path}; give the directory rramk.train wrote (--out)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"RUN: {path} is not an rramk.train checkpoint")
    settings = RunSettings(**checkpoint["settings"])
    settings = dataclasses.replace(settings, out=str(out), device="cpu",
                                   data_dir=data_dir if data_dir is not None else settings.data_dir)
    return start_run(settings, torch.device("cpu"), Distributed(), checkpoint)


def accuracy_after(run, times: list[float], retention: Retention, seed: int = 0) -> list[dict]:
    """{after_s, test_accuracy, flipped} at each time (seconds after programming, ascending not needed):
    ``flipped`` is the share of binary weights that read otherwise than the run left them."""
    x_test, y_test = run.data[4], run.data[5]
    params = [p for g in run.optimizer.param_groups if g["kind"] == "binary" for p in g["params"]]
    arrays = [run.optimizer.state[p]["device"] for p in params]
    if not arrays:
        raise UsageError("RUN: the run has no device arrays (the software BNN, 'ideal', does not age)")
    kept = [p.detach().clone() for p in params]
    log_r = [a.log_resistance() for a in arrays]
    nu = [retention.exponents(a.numel, seed + (i << 32)) for i, a in enumerate(arrays)]
    rows = []
    try:
        for k, t in enumerate(times):
            flips = total = 0
            for i, (p, lr) in enumerate(zip(params, log_r)):
                w = read_weights(retention.read(lr, nu[i], t, seed + (i << 32), k))
                new = torch.from_numpy(w).view(p.shape)
                flips += int((new != kept[i]).sum())
                total += new.numel()
                with torch.no_grad():
                    p.copy_(new)
            _, accuracy = evaluate(run.model, x_test, y_test, run.settings.batch_size)
            rows.append({"after_s": t, "test_accuracy": accuracy, "flipped": flips / total})
    finally:
        with torch.no_grad():
            for p, w in zip(params, kept):
                p.copy_(w)
    return rows


def untouched_accuracy(run) -> float:
    """The test accuracy of the run's weights as the training left them (no aging)."""
    return evaluate(run.model, run.data[4], run.data[5], run.settings.batch_size)[1]

