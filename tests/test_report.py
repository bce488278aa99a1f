"""python -m rramk.report: tables from saved results, the verdict, and identical files on a re-run."""

import json
import statistics

from rramk import ablation_report, ablation_statistics, report, speed_report
from rramk.ablation_configs import ABLATIONS


def _summary(config: str, seed: int, accuracy: float) -> dict:
    return {"dataset": "mnist", "imperfections": ABLATIONS[config].flag, "epochs": 2, "seed": seed,
            "final_test_accuracy": accuracy, "best_test_accuracy": accuracy, "train_seconds": 1.0,
            "history": [{"epoch": 1, "test_accuracy": accuracy - 0.01, "pulses_per_device": 5.0,
                         "fraction_past_t_star": 0.125},
                        {"epoch": 2, "test_accuracy": accuracy, "pulses_per_device": 10.0,
                         "fraction_past_t_star": 0.25}],
            "settings": {"limit_train": 500, "hidden": 3000, "lr_pulses": 20.0},
            "machine": {"cpu": "test cpu", "torch": "x"}, "date": "2026-01-02", "command": "python -m rramk.train"}


ACCURACY = {"ideal": 0.98, "none": 0.97, "all": 0.90, "only d2d": 0.91, "only pink": 0.965, "only rtn": 0.968,
            "only saturation": 0.969, "all but d2d": 0.96, "all but pink": 0.905, "all but rtn": 0.902,
            "all but saturation": 0.899}


def _write_study(reports, seeds=(0, 1)):
    root = reports / "ablation" / "summaries" / "mnist" / "epochs2-n500"
    for config, acc in ACCURACY.items():
        for seed in seeds:
            d = root / ABLATIONS[config].slug / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "summary.json").write_text(json.dumps(_summary(config, seed, acc + 0.001 * seed)))


def _write_bench(reports):
    (reports / "bench").mkdir(parents=True)
    records = []
    for provider, median in (("rramk-compiled", 0.05), ("published-structure", 1.0)):
        records.append({"name": provider, "group": None, "params": {}, "stats": {"median": median, "mean": median,
                        "min": median, "max": median, "stddev": 0, "rounds": 3},
                        "extra_info": {"operation": "device update", "provider": provider, "shape": "mnist",
                                       "synapses": 2_352_000, "synapse_updates_per_s": 2_352_000 / median}})
    (reports / "bench" / "cpu.json").write_text(json.dumps(
        {"session": {"machine": "test machine", "date": "2026-01-03", "command": "pytest bench --benchmark-only"},
         "benchmarks": records}))


def test_report_tables_verdict_and_determinism(tmp_path):
    reports = tmp_path / "reports"
    _write_study(reports)
    _write_bench(reports)
    assert report.main(["--reports", str(reports)]) == 0
    table = (reports / "ablation_mnist_epochs2-n500.md").read_text()
    ideal = statistics.fmean([0.98, 0.981])
    all_mean = statistics.fmean([0.90, 0.901])
    assert f"{100 * (ideal - all_mean):+.2f}" in table  # the drop of 'all', computed independently
    assert "added alone to the mean device: **d2d** costs the most, +6.00 points (more than 2 standard errors" in table
    assert "removed alone from the full model: **d2d** costs the most" in table
    assert "**Most damaging: device-to-device variability (d2d)**" in table
    assert "python -m rramk.ablation mnist --epochs 2 --limit-train 500" in table
    assert "alone gives exactly the accuracy of none" not in table
    # none - all = 7.00 points; the costs alone (none - only X) sum to 6.0 + 0.5 + 0.2 + 0.1:
    alone = sum(statistics.fmean([ACCURACY["none"], ACCURACY["none"] + 0.001])
                - statistics.fmean([ACCURACY[f"only {x}"], ACCURACY[f"only {x}"] + 0.001])
                for x in ("d2d", "pink", "rtn", "saturation"))
    assert f"together, the imperfections cost +7.00 points against the mean device (none - all, ± 0.07); " \
           f"the sum of their costs alone is {100 * alone:+.2f}." in table
    assert "Most of the loss comes from their combination" not in table  # 7.00 < 2 x 6.80  # no 'only X' equals 'none' here
    speed = (reports / "speed.md").read_text()
    assert "20.00x vs published-structure" in speed  # 1.0 s / 0.05 s
    index = (reports / "README.md").read_text()
    assert "(ablation_mnist_epochs2-n500_curves.png)" in table
    for name in ("ablation_mnist_epochs2-n500.md", "ablation_mnist_epochs2-n500.png",
                 "ablation_mnist_epochs2-n500_curves.png", "speed.md", "bench/cpu.json"):
        assert name in index
    before = {p.name: p.read_bytes() for p in reports.iterdir() if p.is_file()}
    assert report.main(["--reports", str(reports)]) == 0
    after = {p.name: p.read_bytes() for p in reports.iterdir() if p.is_file()}
    assert before == after  # same inputs, same files (PNG bytes included)


def test_report_says_when_d2d_is_not_the_most_damaging(tmp_path):
    reports = tmp_path / "reports"
    ACCURACY_SWAPPED = dict(ACCURACY, **{"only d2d": 0.969, "only rtn": 0.91, "only saturation": 0.97, "all but d2d": 0.905,
                                         "all but rtn": 0.96})
    root = reports / "ablation" / "summaries" / "mnist" / "epochs2-n500"
    for config, acc in ACCURACY_SWAPPED.items():
        d = root / ABLATIONS[config].slug / "seed0"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(_summary(config, 0, acc)))
    assert report.main(["--reports", str(reports)]) == 0
    table = (reports / "ablation_mnist_epochs2-n500.md").read_text()
    assert "added alone to the mean device: **rtn** costs the most" in table
    assert "one seed: no error bar" in table and "does not single it out" in table
    assert "- saturation alone gives exactly the accuracy of none in every seed (1)" in table  # 0.97 == 0.97


def test_learning_curves_average_each_epoch_over_seeds(tmp_path):
    reports = tmp_path / "reports"
    _write_study(reports, seeds=(0, 1, 2))
    study = ablation_report.load_summaries(reports / "ablation" / "summaries")[("mnist", "epochs2-n500")]
    curves = ablation_statistics.learning_curves(study)
    assert list(curves) == list(ABLATIONS)
    acc = ACCURACY["all but pink"]
    seeds = [acc + 0.001 * k for k in range(3)]
    c = curves["all but pink"]
    assert c["epoch"] == [1, 2] and c["seeds"] == 3
    assert c["mean"][1] == statistics.fmean(seeds) and c["mean"][0] == statistics.fmean(a - 0.01 for a in seeds)
    assert (c["min"][1], c["max"][1]) == (min(seeds), max(seeds))
    assert c["past_t_star"] == [0.125, 0.25]


def test_verdict_says_when_no_cost_is_resolved():
    # the largest cost (0.3 points) is within 2 standard errors (0.2 each): no imperfection is singled out
    costs = [{"imperfection": x, "added": a, "added_se": 0.002, "removed": a, "removed_se": 0.002}
             for x, a in (("d2d", 0.001), ("pink", 0.003), ("rtn", -0.001), ("saturation", 0.0))]
    lines = "\n".join(ablation_statistics.verdict(costs))
    assert "no imperfection costs accuracy beyond 2 standard errors (largest: **pink**, +0.30 ± 0.20 points)" in lines
    assert "Most damaging" not in lines and "does not single it out" in lines
    # d2d largest in both views but unresolved: said, with the caveat
    costs[0].update(added=0.0035, removed=0.0035)
    lines = "\n".join(ablation_statistics.verdict(costs))
    assert "d2d costs the most in both views" in lines and "not resolved" in lines and "Most damaging" not in lines
    # resolved from zero, and from the runner-up or not: the gap's error is the two errors in quadrature
    costs[0].update(added=0.03, removed=0.03)
    costs[1].update(added=0.028, removed=0.01)
    lines = "\n".join(ablation_statistics.verdict(costs))
    assert "added alone to the mean device: **d2d** costs the most, +3.00 points (more than 2 standard errors: " \
           "± 0.20); ahead of **pink** by +0.20 ± 0.28, not resolved." in lines
    assert "removed alone from the full model: **d2d** costs the most, +3.00 points (more than 2 standard " \
           "errors: ± 0.20); ahead of **pink** by +2.00 ± 0.28." in lines


def test_interaction_says_when_the_combination_costs_more_than_the_parts():
    rows = [{"config": "none", "mean": 0.98, "std": 0.001, "seeds": 3},
            {"config": "all", "mean": 0.95, "std": 0.001, "seeds": 3}]
    costs = [{"imperfection": x, "added": a} for x, a in (("d2d", 0.004), ("pink", 0.001), ("rtn", 0.002),
                                                          ("saturation", 0.0))]
    (line,) = ablation_statistics.interaction(rows, costs)
    assert "cost +3.00 points against the mean device (none - all, ± 0.08); the sum of their costs alone is +0.70." \
        in line and "Most of the loss comes from their combination" in line


def test_report_keeps_the_names_it_had_before_its_reports_moved_out():
    moved = {ablation_report: ["load_summaries", "ablation_command", "write_ablation", "plot_ablation",
                               "plot_learning_curves", "CURVE_STYLE"],
             ablation_statistics: ["ablation_rows", "imperfection_costs", "verdict", "interaction", "identical_to_none",
                                   "learning_curves"],
             speed_report: ["load_benchmarks", "speed_tables", "plot_update_scaling", "DERIVED"]}
    for module, names in moved.items():
        for name in names:
            assert getattr(report, name) is getattr(module, name), f"rramk.report.{name}"
    assert report.REPORT_COMMAND == "python -m rramk.report"
