"""The report's statistics: learning curves over seeds, Welch's test, the verdict and its ranking, the
interaction of the imperfections, and the tolerance with its interval (helpers from tests/test_report.py)."""

import math
import statistics

import pytest

from rramk.studies import statistics as ablation_statistics
from rramk.studies import tolerance as study_tolerance
from rramk.studies import welch as study_welch
from rramk.studies import summaries as study_summaries
from tests.test_report import ACCURACY, PUBLISHED, _write_study


def test_learning_curves_average_each_epoch_over_seeds(tmp_path):
    reports = tmp_path / "reports"
    _write_study(reports, seeds=(0, 1, 2))
    directories = study_summaries.load_summaries(reports / "ablation" / "summaries")[("mnist", "epochs2-n500")]
    runs = study_summaries.study_runs(directories, PUBLISHED)
    curves = ablation_statistics.learning_curves(runs, PUBLISHED.labels)
    assert list(curves) == PUBLISHED.labels
    acc = ACCURACY["full but pink"]
    seeds = [acc + 0.001 * k for k in range(3)]
    c = curves["full but pink"]
    assert c["epoch"] == [1, 2] and c["seeds"] == 3
    assert c["mean"][1] == statistics.fmean(seeds) and c["mean"][0] == statistics.fmean(a - 0.01 for a in seeds)
    assert (c["min"][1], c["max"][1]) == (min(seeds), max(seeds))
    assert c["past_t_star"] == [0.125, 0.25]


def _cells(costs_by_x: dict, std: float = 0.002, seeds: int = 5, removed: dict | None = None) -> list[dict]:
    """Rows of the published study's cells whose costs are ``costs_by_x`` (added view; ``removed``: the
    removed view's, default the same), every cell with the same spread over ``seeds`` seeds."""
    removed = costs_by_x if removed is None else removed
    rows = [{"config": "mean model", "mean": 0.98, "std": std, "seeds": seeds},
            {"config": "full model", "mean": 0.95, "std": std, "seeds": seeds}]
    rows += [{"config": f"mean + {x}", "mean": 0.98 - a, "std": std, "seeds": seeds} for x, a in costs_by_x.items()]
    rows += [{"config": f"full but {x}", "mean": 0.95 + a, "std": std, "seeds": seeds} for x, a in removed.items()]
    return rows


def _verdict(rows):
    costs = ablation_statistics.imperfection_costs(rows, PUBLISHED)
    return "\n".join(ablation_statistics.verdict(costs, rows=rows))


def test_welch_test_against_closed_forms_and_scipy():
    from scipy import stats

    st = study_welch
    for t in (0.0, 0.5, 1.0, 3.0, 12.7):  # Student's t: df = 1 is Cauchy, df = 2 has a closed form
        assert st.t_two_sided_p(t, 1) == pytest.approx(1 - 2 * math.atan(t) / math.pi, rel=1e-12, abs=1e-15)
        assert st.t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-12, abs=1e-15)
    assert st.t_critical(2) == pytest.approx(math.sqrt(2 * 0.95**2 / (1 - 0.95**2)), rel=1e-10)  # 4.3027
    assert st.t_critical(1) == pytest.approx(math.tan(0.95 * math.pi / 2), rel=1e-10)  # 12.706
    for df in (2.7, 4.0, 7.3, 30.0):
        assert st.t_critical(df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)
        assert st.t_two_sided_p(2.1, df) == pytest.approx(2 * stats.t.sf(2.1, df), rel=1e-9)
    # two cells of equal spread and size: df = 2 (n - 1); unequal: Welch-Satterthwaite, as scipy has it
    equal = st.welch([(0.97, 0.01, 5), (0.95, 0.01, 5)], [1, -1])
    assert equal["df"] == pytest.approx(8) and equal["se"] == pytest.approx(math.sqrt(2 * 0.01**2 / 5))
    a, b = [0.971, 0.968, 0.975, 0.962, 0.969], [0.951, 0.958, 0.944]
    ours = st.welch([(statistics.fmean(a), statistics.stdev(a), 5), (statistics.fmean(b), statistics.stdev(b), 3)],
                    [1, -1])
    theirs = stats.ttest_ind(a, b, equal_var=False)
    assert ours["p"] == pytest.approx(theirs.pvalue, rel=1e-9)
    assert ours["value"] / ours["se"] == pytest.approx(theirs.statistic, rel=1e-12)
    assert math.isnan(st.welch([(0.9, math.nan, 1), (0.8, 0.01, 3)], [1, -1])["p"])  # one seed: no test


def test_verdict_ranks_the_three_and_says_when_costs_are_unresolved():
    # 0.3 points with a 0.2-point spread over 5 seeds: t = 2.37, df = 8 -> p 0.045 ... below: 0.25 points
    lines = _verdict(_cells({"d2d": 0.001, "pink": 0.0025, "rtn": -0.001}))
    assert "no imperfection's cost is resolved at 95 % (largest: **pink**, +0.25 points, ± 0.29" in lines
    assert "**Is d2d the most damaging? Not resolved**: at this budget no imperfection's cost is resolved" in lines
    assert "pink (+0.25, not resolved)" in lines
    # a resolved cost of another imperfection: no
    lines = _verdict(_cells({"d2d": 0.001, "pink": 0.0025, "rtn": -0.001}, removed={"d2d": 0.001, "pink": 0.03,
                                                                                    "rtn": -0.001}))
    assert "**Is d2d the most damaging? No**: pink costs more;" in lines
    # the lead is tested on the two cells that differ (mean + pink against mean + d2d): the shared cell cancels
    lines = _verdict(_cells({"d2d": 0.03, "pink": 0.028, "rtn": 0.0}, removed={"d2d": 0.03, "pink": 0.01, "rtn": 0.0}))
    assert "added alone to the mean model: **d2d** costs the most, +3.00 points (± 0.29, 95 % interval" in lines
    assert "ahead of **pink** by +0.20 (± 0.29, 95 % interval, p = 0.15), not resolved." in lines
    assert "ahead of **pink** by +2.00 (± 0.29, 95 % interval, p = 2.6e-07)." in lines
    assert "Not resolved" in lines  # one view does not resolve the lead
    lines = _verdict(_cells({"d2d": 0.03, "pink": 0.01, "rtn": 0.0}))
    assert "**Is d2d the most damaging? Yes**: device-to-device variability costs the most" in lines
    # an imperfection that raises accuracy alone is said; nothing to rank, nothing said
    assert "adding rtn alone *raises* accuracy" in _verdict(_cells({"d2d": 0.03, "pink": 0.01, "rtn": -0.01}))
    assert ablation_statistics.verdict(ablation_statistics.imperfection_costs([], PUBLISHED)) == []


def test_interaction_says_when_the_combination_costs_more_than_the_parts():
    rows = [{"config": "mean model", "mean": 0.98, "std": 0.001, "seeds": 3},
            {"config": "full model", "mean": 0.95, "std": 0.001, "seeds": 3}]
    costs = [{"imperfection": x, "added": a} for x, a in (("d2d", 0.004), ("pink", 0.001), ("rtn", 0.002))]
    (line,) = ablation_statistics.interaction(rows, costs, "mean model", "full model", "the mean model")
    assert "cost +3.00 points against the mean model (mean model - full model, ± 0.08); the sum of their costs " \
           "alone is +0.70." in line and "Most of the loss comes from their combination" in line


def test_tolerance_beyond_the_sweep_and_before_it():
    points = [{"factor": f, "measure": 2 * f, "loss": loss, "loss_se": 0.001} for f, loss in
              ((0.0, 0.0), (1.0, 0.004), (2.0, 0.02))]
    t = study_tolerance.tolerance(points, 0.005)
    assert t["kind"] == "interpolated" and t["value"] == pytest.approx(1 + 0.001 / 0.016)
    assert study_tolerance.tolerance(points, 0.005, key="measure")["value"] == pytest.approx(2 * t["value"])
    assert study_tolerance.tolerance(points, 0.05) == {"value": 2.0, "kind": "beyond"}
    assert study_tolerance.tolerance(points[1:], 0.001) == {"value": 1.0, "kind": "none"}
    assert study_tolerance.tolerance(points, 0.005, shift=1.0)["value"] < t["value"]  # one standard error worse


def test_tolerance_interval_is_the_point_without_spread_and_opens_where_the_sweep_ends():
    st = study_tolerance

    def points(spread):
        cells = [(0.0, [0.98, 0.98 + spread]), (0.5, [0.978, 0.978 + spread]), (1.0, [0.972, 0.972 + spread])]
        mean = statistics.fmean(cells[0][1])
        return [{"config": f"x{f}", "factor": f, "measure": 2 * f, "values": v, "is_mean": f == 0.0,
                 "loss": 0.0 if f == 0.0 else mean - statistics.fmean(v), "loss_se": 0.0} for f, v in cells], cells[0][1]

    exact, mean_values = points(0.0)
    assert st.tolerance(exact, 0.005)["value"] == pytest.approx(0.75)  # 0.5 + (0.5 - 0.2) / (0.8 - 0.2) * 0.5
    interval = st.tolerance_interval(exact, mean_values, 0.005)
    assert interval["low"] == pytest.approx(0.75) and interval["high"] == pytest.approx(0.75)
    noisy, mean_values = points(0.004)  # seeds 0.4 point apart: the tolerance moves with the resamples
    interval = st.tolerance_interval(noisy, mean_values, 0.005)
    assert interval["low"] < 0.75 < interval["high"] and not interval["open_low"]
    assert st.tolerance_interval(noisy, mean_values, 0.005) == interval  # a fixed generator: the same interval
    wide = st.tolerance_interval(noisy, mean_values, 0.009)  # 0.9 point: beyond the sweep in many resamples
    assert wide["open_high"] and math.isinf(wide["high"])
    assert math.isnan(st.tolerance_interval(noisy, mean_values[:1], 0.005)["low"])  # one seed: nothing to resample
