"""Bring your own device: fit a weak-RESET preset to measured traces.

    python -m rramk.fit TRACES --out PRESET.json [--report DIR] [--criterion aic|bic]
    python -m rramk.fit --demo DIR [--devices 300] [--write-traces]

TRACES: one row per read, ``device,pulse,resistance`` (identifier, cumulative weak-RESET pulses
since the device's SET, ohm), as a CSV with a header or a .npz of those three arrays
(``rramk.device.traces``). The fit (``rramk.fitting``) estimates each device's R0 + c1, m1, t*, m2,
the device-to-device family of each, the 1/f amplitude and order and the RTN amplitudes and
switching probabilities; it prints a summary and writes the preset (JSON with units and provenance,
read by ``rramk.load_preset``). ``--demo`` proves the fit on devices rramk simulates itself, where
the truth is known (``rramk.fitting.recovery.DEMO_CASES``): a recovery table and each case's report.
Options: ``--help``; the report's contents, the demo loop and bad input (one line naming the row or
device, exit status 2): README.md, "Bring your own device".
"""

from __future__ import annotations

from . import cli

if __name__ == "__main__":
    cli.prepare_process()  # before torch loads

import argparse
import sys
from pathlib import Path

from . import provenance


def parser() -> argparse.ArgumentParser:
    p = cli.Parser(prog="python -m rramk.fit",
                   description="Fit a weak-RESET device preset (rramk.HfOxWeakReset as JSON) to measured traces: a "
                               "CSV with the columns device,pulse,resistance (or a .npz of those arrays).")
    p.add_argument("traces", nargs="?", type=Path, help="CSV (device,pulse,resistance) or .npz of traces")
    p.add_argument("--out", type=Path, help="where to write the preset (JSON)")
    p.add_argument("--report", type=Path, help="directory for the goodness-of-fit report (markdown and figures)")
    p.add_argument("--criterion", choices=("aic", "bic"), default="aic",
                   help="how each parameter's family is chosen (default aic)")
    p.add_argument("--demo", type=Path, metavar="DIR",
                   help="fit simulated devices of known presets instead, and write the recovery table and reports")
    p.add_argument("--devices", type=int, default=300, help="devices per demo case (default 300)")
    p.add_argument("--replicates", type=int, default=1, metavar="R",
                   help="--demo: fit R populations of each case (its own and R - 1 more, other seeds) and add the "
                        "errors across them to the recovery table (default 1; reports/fit: 5)")
    p.add_argument("--write-traces", action="store_true",
                   help="--demo: also write each case's simulated traces to DIR/<case>_traces.csv (TRACES' format)")
    return p


def fit_file(args) -> int:
    from .device.preset import save_preset
    from .device.traces import TraceError, read_traces
    from rramk.fitting.report import write_report
    from .fitting.adequacy import SOFT_BOUNDS
    from .fitting.preset_fit import fit_preset

    try:
        traces = read_traces(args.traces)
    except TraceError as e:
        print(f"rramk.fit: {e}", file=sys.stderr)
        return 2
    print(f"{len(traces)} devices, {traces.reads} reads from {args.traces}", flush=True)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"rramk.fit: cannot create the directory of --out {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    fit = fit_preset(traces, criterion=args.criterion, progress=lambda text: print(f"  {text}", flush=True))
    print(fit.summary())
    choice, soft = fit_families(traces, fit, args.criterion)
    print(choice.table())
    if choice.describes:
        print(f"Check: {choice.chosen.adequacy.sentence()}.\n{choice.sentence()}.")
    else:
        print(f"rramk.fit: warning: {choice.sentence()}.", file=sys.stderr)
    source = {"source": str(args.traces), "sha256": traces.sha256, "fit_date": provenance.today(),
              "command": provenance.command_line(), "machine": provenance.machine_line()}
    adequacy = choice.chosen.adequacy
    if choice.chosen.family == SOFT_BOUNDS:
        print(soft.summary())
        record = {"read_quantity": "conductance in microsiemens, 1e6 / R (R in ohm)", "read_noise": soft.read_noise,
                  "read_noise_relative": soft.relative,
                  "adequacy": adequacy.record(), "families": choice.record()}
        save_preset(soft.config, args.out, description=f"fitted by rramk.fit to {args.traces.name}: soft bounds in "
                    "conductance (microsiemens, 1e6 / R)", provenance=source, fit=record)
    else:
        save_preset(fit.config, args.out, description=f"fitted by rramk.fit to {args.traces.name}", provenance=source,
                    fit={**fit.record(), "adequacy": adequacy.record(), "families": choice.record()})
    print(f"wrote {args.out}")
    if args.report:
        files = write_report(args.report, fit, name=args.out.stem, title=args.out.stem, adequacy=fit_adequacy(choice),
                             families=choice)
        print(f"wrote {len(files)} files to {args.report}")
    return 0


def fit_families(traces, fit, criterion: str):
    """Every family fitted to ``traces`` beside the HfOx ``fit``, with the choice among them
    (``rramk.fitting.family_choice``); returns (the choice, the soft-bounds fit)."""
    from .fitting.adequacy import FAMILY, SOFT_BOUNDS, check_family
    from .fitting.family_choice import FamilyRow, choose_family, hfox_log_likelihood
    from .fitting.soft_bounds_fit import conductance, fit_soft_bounds

    rows = [FamilyRow(FAMILY, *hfox_log_likelihood(fit), check_family(traces, fit.config, read_noise=fit.read_noise))]
    soft = fit_soft_bounds(traces, criterion=criterion)
    adequacy = None if soft.config is None else check_family(
        traces, soft.config, read_noise=soft.read_noise, quantity=conductance, family=SOFT_BOUNDS, relative=soft.relative)
    rows.append(FamilyRow(SOFT_BOUNDS, soft.log_likelihood, soft.free_parameters, soft.reads, adequacy, soft.problem))
    return choose_family(rows, criterion), soft


def fit_adequacy(choice):
    """The HfOx row's adequacy (the report's figures are of the HfOx fit)."""
    return choice.rows[0].adequacy


def demo(args) -> int:
    from .device.preset import save_preset
    from rramk.fitting.report import write_recovery, write_report
    from .fitting.preset_fit import fit_preset
    from .fitting.adequacy import check_family
    from .fitting.recovery import DEMO_CASES, noise_recovery, recovery

    out = args.demo
    out.mkdir(parents=True, exist_ok=True)
    results, replicates = [], {}
    for case in DEMO_CASES:
        print(f"{case.name}: simulating {args.devices} devices", flush=True)
        traces, devices = case.simulate(args.devices)  # devices: each one's true values
        if args.write_traces:
            print(f"wrote {traces.write_csv(out / f'{case.name}_traces.csv')}", flush=True)
        fit = fit_preset(traces, progress=lambda text: print(f"  {text}", flush=True))
        print(fit.summary())
        adequacy = check_family(traces, fit.config, read_noise=fit.read_noise)
        save_preset(fit.config, out / f"{case.name}.json", description=f"fitted to simulated devices: {case.name}",
                    provenance={"source": f"simulated: rramk.fit DEMO_CASES[{case.name!r}]", "sha256": None,
                                "fit_date": provenance.today(), "command": provenance.command_line(),
                                "machine": provenance.machine_line()},
                    fit={**fit.record(), "adequacy": adequacy.record()})
        write_report(out, fit, name=case.name, title=case.name, true=case.config, adequacy=adequacy)
        results.append((case, fit, recovery(case.config, fit, device_truth=devices), noise_recovery(case.config, fit),
                        list(adequacy.rows)))
        for replicate in range(1, args.replicates):
            print(f"{case.name}: replicate {replicate + 1}/{args.replicates}", flush=True)
            again = fit_preset(case.simulate(args.devices, replicate=replicate)[0])
            replicates.setdefault(case.name, []).append((recovery(case.config, again),
                                                         noise_recovery(case.config, again)))
    path = write_recovery(out, results, replicates=replicates)
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.demo is not None:
        if args.devices < 20:
            print("rramk.fit: --devices: at least 20 devices are needed for a distribution", file=sys.stderr)
            return 2
        if args.replicates < 1:
            print(f"rramk.fit: --replicates: expected at least 1, got {args.replicates}", file=sys.stderr)
            return 2
        return demo(args)
    if args.traces is None or args.out is None:
        print("rramk.fit: give TRACES and --out PRESET.json (or --demo DIR)", file=sys.stderr)
        return 2
    return fit_file(args)


if __name__ == "__main__":
    sys.exit(main())
