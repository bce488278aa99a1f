"""Speed tables and the device-update scaling figure, from pytest-benchmark's raw JSON.

Input: ``reports/bench/*.json``, written by ``pytest bench --benchmark-only`` (bench/conftest.py),
each with its session (machine, date, command). Output: ``reports/speed.md``, per file and
operation a provider x shape table with the ratio to every alternative, and
``reports/speed_update.png``, time against size of the device update.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from rramk.reporting.files import PNG_METADATA, REPORT_COMMAND, pyplot


def load_benchmarks(bench_dir: Path) -> list[dict]:
    """Every benchmark record of every JSON file in ``bench_dir``, with its source file."""
    records = []
    for path in sorted(bench_dir.glob("*.json")):
        data = json.loads(path.read_text())
        for b in data.get("benchmarks", []):
            records.append({**b, "file": path.name, "session": data.get("session", {})})
    return records


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def _fmt_rate(value: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value:.2f}"


DERIVED = ("synapse_updates_per_s", "gb_per_s", "tops", "images_per_s")


def _fmt_derived(name: str, value: float) -> str:
    if name == "tops":
        return f"{value:.3g} TOPS"
    if name == "gb_per_s":
        return f"{value:.1f} GB/s"
    return f"{_fmt_rate(value)} {name.replace('_per_s', '/s').replace('_', ' ')}"


def speed_tables(records: list[dict]) -> str:
    """Markdown: per benchmark file and operation, provider x shape with ratios to every alternative."""
    lines = []
    by_file = defaultdict(list)
    for r in records:
        by_file[r["file"]].append(r)
    for file, recs in by_file.items():
        session = recs[0]["session"]
        lines.append(f"## {file}\n")
        lines.append(f"- Machine: {session.get('machine', '?')}")
        lines.append(f"- Date: {session.get('date', '?')}")
        lines.append(f"- Command: `{session.get('command', 'pytest bench --benchmark-only')}`\n")
        by_op = defaultdict(list)
        for r in recs:
            operation = r["extra_info"].get("operation", r.get("group") or r["name"])
            if operation != "accuracy":  # its figures are accuracies: the ablation tables show them
                by_op[operation].append(r)
        for op, rs in by_op.items():
            providers = sorted({r["extra_info"].get("provider", "?") for r in rs})
            shapes = list(dict.fromkeys(r["extra_info"].get("shape", "") for r in rs))
            rows = []
            for shape in shapes:
                times = {r["extra_info"].get("provider"): r for r in rs if r["extra_info"].get("shape", "") == shape}
                for provider in providers:
                    if provider not in times:
                        continue
                    r = times[provider]
                    median = r["stats"]["median"]
                    derived = [_fmt_derived(k, r["extra_info"][k]) for k in DERIVED if k in r["extra_info"]]
                    ratios = [f"{times[o]['stats']['median'] / median:.2f}x vs {o}" for o in providers
                              if o != provider and o in times]
                    rows.append([shape, provider, _fmt_time(median), "; ".join(derived), "; ".join(ratios)])
            lines.append(f"### {op}\n")
            lines.append(tabulate(rows, headers=["shape", "provider", "median", "derived", "speed-up (time of other / this)"],
                                  tablefmt="github", disable_numparse=True))
            lines.append("")
    return "\n".join(lines)


# The ratios a user compares first (issue 13): (label, operation, shape prefix, numerator provider(s),
# denominator provider(s), target, whether the target is a lower bound). The first provider found wins.
DEFAULT_DEVICE = ("rramk-native", "rramk-compiled", "rramk-triton")
HEADLINES = (
    ("device update: rramk vs the published structure, every synapse pulsed", "device update",
     "mnist-784x3000/every", ("published-structure",), DEFAULT_DEVICE, 20.0, True),
    ("device update: rramk vs the published structure, training-like pulses", "device update",
     "mnist-784x3000/training", ("published-structure",), DEFAULT_DEVICE, 20.0, True),
    ("optimizer step (Adam -> pulses -> update): rramk vs the published structure", "optimizer step",
     "mnist-784x3000", ("published-structure",), ("fused-native", "fused-compiled", "fused-triton"), 20.0, True),
    ("MNIST training step: device model vs software BNN (time ratio)", "training step", "mnist-784-3000-10",
     ("device",), ("ideal",), 1.5, False),
    ("MNIST training step: rramk's device model vs aihwkit ReRamSBPreset", "training step", "mnist-784-3000-10",
     ("aihwkit-ReRamSBPreset",), ("device",), 10.0, True),
    # the native XNOR convolution on CPUs (issue 21; targets from the count in reports/perf-notes.md)
    ("binary convolution (VGG w1/8 conv2, batch 100, 1 thread): torch float32 vs rramk's XNOR", "binary matmul",
     "cifar-w0.125-conv2", ("torch-f32",), ("rramk-native-xnor-conv2d",), 3.0, True),
    ("the same with AVX2's popcount (what AVX2-only CPUs run)", "binary matmul", "cifar-w0.125-conv2",
     ("torch-f32",), ("rramk-native-xnor-conv2d-avx2",), 2.0, True),
    ("CIFAR-10 VGG w1/8 inference: float convolutions vs rramk's XNOR", "inference", "cifar10-vgg-w0.125",
     ("float-conv",), ("native-conv",), 2.0, True),
    ("CIFAR-10 VGG w1/8 training step (device model): float convolutions vs rramk's XNOR", "training step",
     "cifar10-vgg-w0.125", ("device-float-conv",), ("device",), 1.1, True),
)


def headline_ratios(records: list[dict]) -> str:
    """Markdown: the ratios of HEADLINES measured in one benchmark file each, with their targets."""
    rows = []
    for label, operation, shape, numerators, denominators, target, at_least in HEADLINES:
        for file in sorted({r["file"] for r in records}):
            times = {r["extra_info"].get("provider"): r["stats"]["median"] for r in records
                     if r["file"] == file and r["extra_info"].get("operation") == operation
                     and r["extra_info"].get("shape", "").startswith(shape)}
            top = next((p for p in numerators if p in times), None)
            bottom = next((p for p in denominators if p in times), None)
            if top and bottom:
                ratio = times[top] / times[bottom]
                met = ratio >= target if at_least else ratio <= target
                rows.append([label, f"{ratio:.2f}x", f"{'>=' if at_least else '<='} {target:g}x",
                             "yes" if met else "**no**", f"{top} / {bottom}", file])
                break
    if not rows:
        return ""
    return ("## The ratios first\n\nEach from one benchmark file (one session, one machine); ratio = time of the "
            "first provider / time of the second.\n\n"
            + tabulate(rows, headers=["ratio", "measured", "target", "met", "providers", "file"], tablefmt="github",
                       disable_numparse=True) + "\n\n")


def plot_update_scaling(records: list[dict], path: Path) -> bool:
    recs = [r for r in records if r["extra_info"].get("operation") == "device update"]
    if not recs:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    series = defaultdict(list)
    for r in recs:
        shape = r["extra_info"].get("shape", "")
        kind = shape.split("/", 1)[1] if "/" in shape else ""  # the cpu size's two pulse sets
        pulses = {"every": ", every synapse pulsed", "training": ", training-like pulses"}.get(kind, f", {kind}" * bool(kind))
        key = f"{r['extra_info'].get('provider')}{pulses} ({r['file'].removesuffix('.json')})"
        series[key].append((r["extra_info"]["synapses"], r["stats"]["median"]))
    for key, points in sorted(series.items()):
        points.sort()
        ax.loglog([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
    ax.set_xlabel("synapses updated")
    ax.set_ylabel("time per update (s)")
    ax.set_title("Device update: time against array size")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, metadata=PNG_METADATA)
    plt.close(fig)
    return True


def write_speed_report(reports: Path) -> list[tuple[str, str, str, str]]:
    """speed.md and speed_update.png in ``reports`` from its bench/*.json; their rows of the index."""
    records = load_benchmarks(reports / "bench")
    if not records:
        return []
    entries = []
    sessions = sorted({(r["file"], r["session"].get("machine", "?"), r["session"].get("date", "?")) for r in records})
    speed = reports / "speed.md"
    speed.write_text("# Speed of rramk against its alternatives\n\nFrom the raw results in bench/ "
                     f"(`pytest bench --benchmark-only`); this file: `{REPORT_COMMAND}`. Ratios compare runs of "
                     "one session on one machine.\n\n" + headline_ratios(records) + speed_tables(records) + "\n")
    when = "; ".join(f"{m}, {d}" for _, m, d in sessions)
    entries.append(("speed.md", "speed tables with ratios against each alternative", when, REPORT_COMMAND))
    if plot_update_scaling(records, reports / "speed_update.png"):
        entries.append(("speed_update.png", "device update: time against size", when, REPORT_COMMAND))
    return entries
