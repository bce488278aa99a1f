"""reports/refresh.md and refresh.png from the refresh runs alone: accuracies with and without refresh, the gain
with Welch's test, the best pulse rate without refresh, the endurance the runs record, accuracy per epoch, and the
same bytes on a second run."""

import json
import statistics

import pytest
from scipy import stats

from rramk import report
from rramk.reporting import refresh as refresh_report
from rramk.reporting import refresh_runs
from tests.test_report import _summary, _write

BASELINE = {0: 0.940, 1: 0.942}  # without refresh, per seed (final = epoch 2)
POLICIES = {"past_t_star": {0: 0.965, 1: 0.966}, "window": {0: 0.950, 1: 0.935}}
ENDURANCE = {"past_t_star": {0: (3.25, 40, 1000.0, 120), 1: (3.5, 55, 1010.0, 130)},
             "window": {0: (0.75, 9, 990.0, 20), 1: (1.0, 12, 994.0, 24)}}
"""sets_per_device, max_sets_per_device, reset_pulses_per_device, failed_rewrites of the last record, per seed."""


def _record(epoch: int, accuracy: float, **extra) -> dict:
    return {"epoch": epoch, "test_accuracy": accuracy, "seconds": 2.0, "pulses_per_device": 10.0 * epoch,
            "fraction_past_t_star": 0.125 * epoch, "sign_flips_per_synapse": 0.5, **extra}


def _write_runs(reports):
    """A baseline without refresh (seeds 0, 1, among the ablation summaries, with metrics.jsonl), the same
    settings at another pulse rate, and two policies of 2 seeds each under reports/refresh/."""
    for seed, accuracy in BASELINE.items():
        _write(reports, "all", "all", accuracy - 0.001 * seed, seeds=(seed,))  # _write adds 0.001 * seed
        directory = reports / "ablation" / "summaries" / "mnist" / "epochs2-n500" / "all" / f"seed{seed}"
        (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (
            _record(1, accuracy - 0.02), _record(2, accuracy))))
    _write(reports, "all-lr8", "all", 0.955, seeds=(0, 1), lr=8.0)  # 0.955, 0.956: the best rate without
    for policy, accuracies in POLICIES.items():
        for seed, accuracy in accuracies.items():
            summary = _summary("all", seed, accuracy)
            summary["settings"]["refresh"] = policy
            summary["command"] = f"python -m rramk.train mnist --refresh {policy} --seed {seed}"
            directory = reports / "refresh" / f"{policy}-seed{seed}"
            directory.mkdir(parents=True)
            (directory / "summary.json").write_text(json.dumps(summary))
            sets, most, resets, failed = ENDURANCE[policy][seed]
            (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (
                _record(1, accuracy - 0.01, sets_per_device=sets / 2, max_sets_per_device=most // 2,
                        reset_pulses_per_device=resets / 2, failed_rewrites=failed // 2),
                _record(2, accuracy, sets_per_device=sets, max_sets_per_device=most, reset_pulses_per_device=resets,
                        failed_rewrites=failed))))


def _row(table: str, first: str) -> list[str]:
    return next([c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()
                if line.startswith(f"| {first} "))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(reports directory, refresh.md) after ``python -m rramk.report`` over :func:`_write_runs`."""
    reports = tmp_path_factory.mktemp("refresh") / "reports"
    _write_runs(reports)
    assert report.main(["--reports", str(reports)]) == 0
    return reports, (reports / "refresh.md").read_text()


def test_refresh_report_accuracy_with_and_without_refresh(written):
    _, md = written
    accuracy = md.split("## ")[1]
    without = list(BASELINE.values())
    best = [0.955, 0.956]
    for policy, per_seed in POLICIES.items():
        with_ = list(per_seed.values())
        row = _row(accuracy, policy)
        assert row[1] == "0 1" and row[2] == " / ".join(f"{100 * a:.2f}" for a in with_)
        se = statistics.stdev(with_) / len(with_) ** 0.5
        assert row[3] == f"{100 * statistics.fmean(with_):.2f} ± {100 * se:.2f}"
        se0 = statistics.stdev(without) / len(without) ** 0.5
        assert row[5] == f"{100 * statistics.fmean(without):.2f} ± {100 * se0:.2f}"
        gain = statistics.fmean(with_) - statistics.fmean(without)
        welch = stats.ttest_ind(with_, without, equal_var=False)
        half = stats.t.ppf(0.975, welch.df) * gain / welch.statistic  # t * se
        assert row[6].startswith(f"{100 * gain:+.2f} ± {100 * half:.2f} (p = {welch.pvalue:.2g})")
        assert row[6].endswith("not resolved") == (abs(gain) <= half)
        assert row[7].startswith(f"{100 * statistics.fmean(best):.2f} ± ") and "at lr_pulses 8 (2 seeds)" in row[7]
        versus = stats.ttest_ind(with_, best, equal_var=False)
        assert row[8].startswith(f"{100 * (statistics.fmean(with_) - statistics.fmean(best)):+.2f} ± ")
        assert f"(p = {versus.pvalue:.2g})" in row[8]
    # past_t_star resolved from the baseline, window's interval holds 0
    assert not _row(accuracy, "past_t_star")[6].endswith("not resolved")
    assert _row(accuracy, "window")[6].endswith("not resolved")


def test_refresh_report_endurance_and_accuracy_per_epoch(written):
    _, md = written
    accuracy = md.split("## ")[1]
    without = list(BASELINE.values())
    # endurance: the last metrics record of each run
    endurance = accuracy.split("| refresh     | runs")[1]
    past = _row(endurance, "past_t_star")
    sets = [v[0] for v in ENDURANCE["past_t_star"].values()]
    assert past[4] == f"{statistics.fmean(sets):.2f} ± {statistics.stdev(sets) / 2 ** 0.5:.2f}"
    assert past[5] == "55 (per seed: 40 / 55)"
    assert past[6].startswith(f"{statistics.fmean([1000.0, 1010.0]):.0f} ± ")
    assert past[7] == "125 (per seed: 120 / 130)"
    off = _row(endurance, "off")
    assert off[4] == "none (refresh off: no SET)" and off[6] == "20 ± 0 *"  # pulses_per_device, no SET
    assert "differs from its summary's final accuracy" not in md  # metrics and summaries agree
    assert "Not recorded by these runs: the energy and the duration of a SET" in md
    # per epoch, mean over seeds, and the best rate's curve
    epochs = accuracy.split("Test accuracy per epoch")[1]
    past_first = [a - 0.01 for a in POLICIES["past_t_star"].values()]
    assert _row(epochs, "1")[1:3] == [f"{100 * statistics.fmean([a - 0.02 for a in without]):.2f}",
                                      f"{100 * statistics.fmean(past_first):.2f}"]
    assert _row(epochs, "2")[3] == f"{100 * statistics.fmean(POLICIES['window'].values()):.2f}"
    assert "off, lr_pulses 8 (best) (n=2)" in epochs


def test_refresh_report_provenance_index_figure_and_bytes(written):
    reports, md = written
    # provenance: machine, dates, the runs' commands, the rule, this file's command; the caveat
    assert "- Machine: test cpu (CPU generation not recorded) (torch threads not recorded); torch x" in md
    assert "- Dates of the runs: 2026-01-02 to 2026-01-02" in md
    assert "  - `python -m rramk.train mnist --refresh window --seed 1`" in md
    assert "- Reported accuracy: test accuracy at the last epoch" in md
    assert "- This file and [refresh.png](refresh.png): `python -m rramk.report`" in md
    assert md.count(refresh_report.CAVEAT) == 2
    assert (reports / "refresh.png").stat().st_size > 10_000
    index = (reports / "README.md").read_text()
    rows = [line for line in index.splitlines() if line.startswith("| [refresh.")]
    assert [r.split("]")[0] for r in rows] == ["| [refresh.md", "| [refresh.png"]
    listed = md.split("today's defaults")[1].split("- Reported accuracy")[0].count("  - `python -m rramk.train")
    assert listed >= 4
    assert all("test cpu" in r and "2026-01-02" in r and r.rstrip(" |").endswith(
        f"the {listed} run commands listed in refresh.md, then `python -m rramk.report`") for r in rows)
    assert "see file" not in "".join(rows)  # listed once, as generated
    before = {p.name: p.read_bytes() for p in reports.iterdir() if p.is_file()}
    assert report.main(["--reports", str(reports)]) == 0
    after = {p.name: p.read_bytes() for p in reports.iterdir() if p.is_file()}
    assert before == after  # same inputs, same files (PNG bytes included)


def test_refresh_report_keeps_the_hand_written_notes_and_nothing_without_runs(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "refresh.md").write_text("# Refresh\n\n| a table by hand |\n\n## Design\n\nThe state word.\n")
    assert refresh_report.write_refresh_report(reports) == []  # no refresh run: nothing written
    assert (reports / "refresh.md").read_text().startswith("# Refresh\n\n| a table by hand |")
    _write_runs(reports)
    assert len(refresh_report.write_refresh_report(reports)) == 2
    first = (reports / "refresh.md").read_text()
    assert "a table by hand" not in first and first.endswith(refresh_report.KEPT + "\n## Design\n\nThe state word.\n")
    refresh_report.write_refresh_report(reports)
    assert (reports / "refresh.md").read_text() == first


def test_a_setting_names_its_validation_split_and_a_policy_its_condition():
    """Runs with and without the validation split are different settings (the headline kept them apart only by
    their budget once); a policy with options is described by its condition."""
    base = {"dataset": "mnist", "imperfections": "all", "epochs": 20, "settings": {"limit_train": None}}
    assert refresh_runs.setting_words(base) == "mnist, imperfections all, 20 epochs, all training examples"
    assert refresh_runs.setting_words({**base, "validation": 10000}) == (
        "mnist, imperfections all, 20 epochs, all training examples but the 10000 held out for validation")
    assert refresh_report.policy_words("pulses:limit=542,retries=3") == refresh_report.POLICIES["pulses"]
    assert refresh_report.policy_words("window") == refresh_report.POLICIES["window"]
