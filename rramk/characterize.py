"""Characterize simulated devices: resistance against cumulative weak-RESET pulses.

    python -m rramk.characterize [--devices 1000] [--pulses 3000] [--pulses-per-update 3] [--preset FILE]

simulates the BL device of each synapse (the BLb devices receive no pulse) under a train of RESET
pulses, for the full model and for each imperfection switched off alone (options: ``--help``), and
writes into ``--out``:

* ``cycling_<config>.png``: R against cumulative pulses, some device traces, the median and the
  10-90% band (the usual weak-RESET cycling plot);
* ``cycling_comparison.png``: median and 10-90% band of every configuration on one plot;
* ``d2d_parameters.png``: histograms of the drawn D2D parameters over their densities;
* ``log_r_quantiles.md``: ln(R/R0) quantiles at fixed pulse counts, per configuration, with the
  machine, the date and the command.
"""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import argparse
import sys
from pathlib import Path

import torch

from . import provenance
from .device.array import DeviceArray
from .device.backends import BACKENDS
from rramk.studies.configs import CHARACTERIZED
from .device.config import D2D_PARAMETERS, HfOxWeakReset
from .device.preset import PresetError, load_preset
from .device.traces import file_sha256

UNITS = {"m1": "1/pulse", "t_star": "pulses", "c1": "", "m2": "1/pulse", "r0": "ohm", "a_rtn": "ln R"}
TRACES = 12


def configurations(base: HfOxWeakReset | None = None) -> dict[str, HfOxWeakReset]:
    """The full model, then each imperfection switched off alone, by caption (rramk.studies.configs), on
    ``base`` (a preset; default the published fit)."""
    return {config.caption: config.device(base) for config in CHARACTERIZED}


def slug(label: str) -> str:
    return label.replace(" ", "_")


def simulate(config: HfOxWeakReset, devices: int, pulses: int, per_update: int, seed: int, backend: str,
             progress=None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(pulse counts (U+1,), ln(R/R0) (U+1, devices), D2D parameters of the BL devices)."""
    array = DeviceArray((devices,), config, seed=seed, backend=backend)
    params = {k: v[0] for k, v in array.d2d_parameters().items()}
    counts, traces = [0], [array.log_resistance()[0] - params["ln_r0"]]
    done = 0
    while done < pulses:
        n = min(per_update, pulses - done)
        array.apply_pulses(torch.full((devices,), n, dtype=torch.int32))
        done += n
        counts.append(done)
        traces.append(array.log_resistance()[0] - params["ln_r0"])
        if progress is not None:
            progress.update(1)
    return torch.tensor(counts), torch.stack(traces).double(), params


def quantile_rows(counts: torch.Tensor, log_r: torch.Tensor, at: list[int]) -> list[list]:
    """Statistics of ln(R/R0) at the first update that reaches each pulse count of ``at``."""
    rows = []
    for c in at:
        i = int(torch.searchsorted(counts, c))
        if i >= len(counts):
            continue
        x = log_r[i]
        q = torch.quantile(x, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
        rows.append([int(counts[i]), x.mean().item(), q[0].item(), q[1].item(), q[2].item(), x.std().item()])
    return rows


def plot_cycling(path: Path, label: str, counts, log_r, r0, seed_traces: int = TRACES,
                 device: str = "HfOx weak RESET") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r_kohm = r0.double() * torch.exp(log_r) / 1e3
    q = torch.quantile(r_kohm, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64), dim=1)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    for j in range(min(seed_traces, r_kohm.shape[1])):
        ax.plot(counts, r_kohm[:, j], lw=0.6, alpha=0.55, color="0.45")
    ax.fill_between(counts, q[0], q[2], color="tab:blue", alpha=0.25, lw=0, label="10-90% of devices")
    ax.plot(counts, q[1], color="tab:blue", lw=2, label="median")
    ax.plot([], [], lw=0.6, color="0.45", label=f"{min(seed_traces, r_kohm.shape[1])} devices")
    ax.set_xlabel("cumulative weak-RESET pulses")
    ax.set_ylabel("resistance (kΩ)")
    ax.set_title(f"{device}, {label} ({r_kohm.shape[1]} devices)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", frameon=True, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_comparison(path: Path, results: dict) -> None:
    """Small multiples: each configuration's median and 10-90% band over the full model's (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    full_counts, full_log_r, _ = results["full model"]
    full_q = torch.quantile(full_log_r, levels, dim=1)
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 6.0), dpi=150, sharex=True)
    for ax, (label, (counts, log_r, _)) in zip(axes.flat, results.items()):
        q = torch.quantile(log_r, levels, dim=1)
        if label != "full model":
            ax.fill_between(full_counts, full_q[0], full_q[2], color="0.6", alpha=0.3, lw=0)
            ax.plot(full_counts, full_q[1], color="0.4", lw=1.0, label="full model")
        ax.fill_between(counts, q[0], q[2], color="tab:blue", alpha=0.3, lw=0, label="10-90%")
        ax.plot(counts, q[1], color="tab:blue", lw=1.6, label="median")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    axes.flat[1].legend(loc="upper left", fontsize=7, framealpha=0.9)
    axes.flat[-1].axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("ln(R / R0)")
    for ax in axes[-1, :2]:
        ax.set_xlabel("cumulative weak-RESET pulses")
    axes[0, 2].set_xlabel("cumulative weak-RESET pulses")
    axes[0, 2].xaxis.set_tick_params(labelbottom=True)
    fig.suptitle("Each imperfection switched off alone, against the full model", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_d2d(path: Path, config: HfOxWeakReset, params: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(9.6, 5.6), dpi=150)
    for ax, name in zip(axes.flat, D2D_PARAMETERS):
        dist = getattr(config, name)
        values = params[name].double()
        ax.hist(values.numpy(), bins=40, density=True, color="tab:blue", alpha=0.55, label=f"{values.numel()} devices")
        x = torch.linspace(dist.low, dist.high, 400, dtype=torch.float64)
        ax.plot(x, dist.pdf(x), color="k", lw=1.2, label="truncated density")
        unit = f" ({UNITS[name]})" if UNITS[name] else ""
        ax.set_title(f"{name}{unit}", fontsize=10)
        ax.tick_params(labelsize=8)
        ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 4))
    axes.flat[0].legend(fontsize=7, frameon=False)
    fig.suptitle("Device-to-device parameters: drawn values against their truncated densities", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_table(path: Path, results: dict, at: list[int], args) -> None:
    from tabulate import tabulate

    lines = [provenance.header("ln(R/R0) of simulated HfOx devices under weak-RESET pulses"), ""]
    if args.preset:
        lines.append(f"Device: the preset {args.preset} (SHA-256 {file_sha256(args.preset)}).\n")
    lines.append(f"{args.devices} devices per configuration, {args.pulses} pulses, {args.pulses_per_update} per "
                 f"update, seed {args.seed}. ln(R/R0) = w_mean + w_pink + w_rtn (MODEL.md section 1).\n")
    for label, (counts, log_r, _) in results.items():
        lines.append(f"## {label}\n")
        rows = quantile_rows(counts, log_r, at)
        lines.append(tabulate(rows, headers=["pulses", "mean", "10%", "median", "90%", "std"],
                              tablefmt="github", floatfmt=".4f"))
        lines.append("")
    path.write_text("\n".join(lines))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63), got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63), got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rramk.characterize",
        description="Simulate HfOx devices under weak-RESET pulses (full model and each imperfection off) "
                    "and write cycling figures, D2D histograms and a quantile table.",
    )
    p.add_argument("--devices", type=_positive_int, default=1000, help="devices per configuration (default 1000)")
    p.add_argument("--pulses", type=_positive_int, default=3000, help="RESET pulses in the train (default 3000)")
    p.add_argument("--pulses-per-update", type=_positive_int, default=3, help="pulses per update (default 3)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the simulated arrays (default 0)")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="device-array backend (default auto)")
    p.add_argument("--preset", default="", metavar="PRESET.json",
                   help="the device: a preset file (rramk.load_preset; python -m rramk.fit writes one from measured "
                        "traces; default: the published fit)")
    p.add_argument("--out", type=Path,
                   help="output directory (default reports/characterization, with --preset "
                        "reports/characterization-<preset's stem>)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from tqdm import tqdm

    try:
        base = load_preset(args.preset) if args.preset else None
    except PresetError as e:
        print(f"rramk.characterize: --preset: {e}", file=sys.stderr)
        return 2
    if args.out is None:
        args.out = Path("reports") / (f"characterization-{Path(args.preset).stem}" if args.preset else "characterization")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"rramk.characterize: cannot create --out {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    configs = configurations(base)
    updates = -(-args.pulses // args.pulses_per_update)
    results = {}
    with tqdm(total=updates * len(configs), desc="simulating", unit="update") as bar:
        for label, config in configs.items():
            bar.set_postfix_str(label)
            results[label] = simulate(config, args.devices, args.pulses, args.pulses_per_update, args.seed,
                                      args.backend, progress=bar)
    for label, (counts, log_r, params) in results.items():
        plot_cycling(args.out / f"cycling_{slug(label)}.png", label, counts, log_r, params["r0"],
                     device=f"{Path(args.preset).stem} (preset)" if args.preset else "HfOx weak RESET")
    plot_comparison(args.out / "cycling_comparison.png", results)
    plot_d2d(args.out / "d2d_parameters.png", configs["full model"], results["full model"][2])
    at = [0, 10, 100, 300, 1000, 2000, 3000, args.pulses]
    write_table(args.out / "log_r_quantiles.md", results, sorted(set(a for a in at if a <= args.pulses)), args)
    print(f"wrote {len(results) + 3} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
