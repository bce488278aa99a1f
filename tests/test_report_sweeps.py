"""python -m rramk.report on sweeps: the sensitivity reports and the tolerance answer, the learning-rate
report, and the sweep plots' axis labels (helpers from tests/test_report.py)."""

from rramk import report
from rramk.studies.configs import sensitivity_study
from tests.test_report import _write


SWEEP = {0.0: 0.98, 0.5: 0.978, 1.0: 0.972, 1.5: 0.96, 2.0: 0.95}  # loss 0, 0.2, 0.8, 2.0, 3.0 points


def _write_sweep(reports, sweep=SWEEP, seeds=(0, 1), budget="epochs2-n500", knob="d2d"):
    study = sensitivity_study(knob, tuple(sweep))
    for label, factor in study.values.items():
        config = study.configs[label]
        _write(reports, config.slug, config.flag, sweep[factor], seeds, budget, scale=config.scale_flag)


def test_sensitivity_report_reads_the_tolerance_by_interpolation(tmp_path):
    reports = tmp_path / "reports"
    _write_sweep(reports)
    assert report.main(["--reports", str(reports)]) == 0
    text = (reports / "ablation_mnist_epochs2-n500_sensitivity-d2d.md").read_text()
    assert "--study sensitivity --knob d2d --values 0,0.5,1,1.5,2 --seeds 0 1" in text
    assert "| 0.5      | 0.03581" in text  # sigma of ln R at t = 0 across devices at half the fit's spread
    # 0.5 point: between 0.5 (loss 0.2) and 1 (0.8): 0.5 + 0.3/0.6 * 0.5; 1 point: 1 + 0.2/1.2 * 0.5
    assert "up to factor **0.75** (sigma of ln R at t = 0 across devices ≈ 0.0537)" in text
    assert "up to factor **1.08**" in text
    assert (reports / "ablation_mnist_epochs2-n500_sensitivity-d2d.png").is_file()
    assert not (reports / "ablation_mnist_epochs2-n500.md").exists()  # no ideal run: no published report here
    index = (reports / "README.md").read_text()
    assert "2. **What tolerance is enough?** The accuracy stays within 0.5 point of the mean model up to d2d " \
           "factor 0.75 (" in index and "a short budget, indicative only" in index
    said = index.split("up to d2d factor 0.75 (")[1].split(")")[0]  # the interval of the sweep's file, if any
    interval = text.split("up to factor **0.75**")[1].split("\n")[0].rsplit("(", 1)[1].rstrip(".)")
    assert said.endswith("sigma of ln R at t = 0 across devices ≈ 0.0537") and (
        said.startswith(interval + " of the factor; ") if interval.startswith("95 %") else not said.startswith("95"))


def test_the_tolerance_answer_names_every_knob_swept_at_the_same_budget(tmp_path):
    """d2d first and in full; the other knobs of the same data set and budget in a few words each."""
    reports = tmp_path / "reports"
    _write_sweep(reports)
    pink = {0.0: 0.98, 0.5: 0.979, 1.0: 0.978, 2.0: 0.976, 4.0: 0.974}  # loss 0, 0.1, 0.2, 0.4, 0.6 points
    _write_sweep(reports, {f: a for f, a in pink.items() if f}, knob="pink")  # its factor 0 is the mean model above
    _write_sweep(reports, SWEEP, knob="rtn", budget="epochs3-n500")  # another budget: not in the sentence
    assert report.main(["--reports", str(reports)]) == 0
    (answer,) = [line for line in (reports / "README.md").read_text().splitlines() if "tolerance is enough" in line]
    assert answer.index("d2d factor 0.75") < answer.index("The other imperfections at the same budget")
    # pink: 0.5 point lies between 2 (0.4) and 4 (0.6): 2 + 0.1/0.2 * 2 = 3; 1 point beyond the sweep
    assert "within 0.5 / 1.0 point: pink (1/f amplitude alpha (ln R)) 3.00 / beyond 4 (2 seeds per cell, " \
           "[ablation_mnist_epochs2-n500_sensitivity-pink.md]" in answer
    assert "rtn (" not in answer


def test_lr_report_states_the_default_and_what_was_measured(tmp_path):
    reports = tmp_path / "reports"
    for lr, (mean, full) in {8.0: (0.975, 0.93), 20.0: (0.97, 0.95), 50.0: (0.96, 0.90)}.items():
        suffix = "" if lr == 20.0 else f"-lr{lr:g}"
        _write(reports, f"only-saturation{suffix}", "saturation", mean, lr=lr)
        _write(reports, f"all{suffix}", "all", full, lr=lr)
    assert report.main(["--reports", str(reports)]) == 0
    text = (reports / "ablation_mnist_epochs2-n500_lr.md").read_text()
    assert "--study lr --lr-pulses 8 20 50 --seeds 0 1" in text
    assert "| 8 (default) | 97.55 ± 0.05" in text  # rramk.train's default for mnist
    assert "- mean model: best at lr_pulses 8 (97.55%, 2 seeds): the default." in text
    # two seeds 0.1 point apart: se 0.07, df 2: half-width 0.30, t = 28.3, p = 1 - 28.3 / sqrt(802) = 0.0012
    assert "- full model: best at lr_pulses 20 (95.05%, 2 seeds); the default 8 is 2.00 points below it " \
           "(± 0.30, 95 % interval, p = 0.0012: worse than the best)." in text
    assert "the authors' code uses 8" in text and "rramk's earlier default, 20, was never published" in text
    index = (reports / "README.md").read_text()
    assert "[ablation_mnist_epochs2-n500_lr.md]" in index


def test_lr_report_names_the_default_when_it_is_the_best(tmp_path):
    """The full model and the mean model best at lr 8, rramk.train's default for mnist: the report says so."""
    reports = tmp_path / "reports"
    for lr, (mean, full) in {8.0: (0.975, 0.96), 20.0: (0.97, 0.94), 50.0: (0.96, 0.95)}.items():
        suffix = "" if lr == 20.0 else f"-lr{lr:g}"
        _write(reports, f"only-saturation{suffix}", "saturation", mean, lr=lr, budget="epochs20")
        _write(reports, f"all{suffix}", "all", full, lr=lr, budget="epochs20")
    assert report.main(["--reports", str(reports)]) == 0
    text = (reports / "ablation_mnist_epochs20_lr.md").read_text()
    assert "- full model: best at lr_pulses 8 (96.05%, 2 seeds): the default." in text
    # the mean model: best at 8 too (97.55 against 97.05 at 20)
    assert "- mean model: best at lr_pulses 8 (97.55%, 2 seeds): the default." in text


def test_dense_sweep_points_keep_their_top_axis_labels_apart():
    """The measured unit's ticks: at least 7 % of the span apart, taken from the left."""
    from rramk.reporting.sweeps import _spaced_ticks

    x = [0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 1.5, 2]
    ticks, labels = _spaced_ticks(x, [str(v) for v in x])
    assert ticks == [0, 0.15, 0.3, 0.5, 1, 1.5, 2] and labels == ["0", "0.15", "0.3", "0.5", "1", "1.5", "2"]
    assert _spaced_ticks([3.0], ["a"]) == ([3.0], ["a"])
