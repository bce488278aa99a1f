"""python -m rramk.report: tables from saved results, the verdict, the index and its answers, the speed
report, and identical files on a re-run (the statistics: tests/test_report_statistics.py; the sensitivity
and learning-rate sweeps: tests/test_report_sweeps.py)."""

import json
import statistics

from rramk.reporting import speed as speed_report
from rramk import report
from rramk.reporting import refresh as refresh_report
from rramk.studies import summaries as study_summaries
from rramk.studies.configs import STUDIES


PUBLISHED = STUDIES["published"]


def _summary(flag: str, seed: int, accuracy: float, scale: str = "", lr: float = 20.0) -> dict:
    return {"dataset": "mnist", "imperfections": flag, "epochs": 2, "seed": seed,
            "final_test_accuracy": accuracy, "best_test_accuracy": accuracy, "train_seconds": 1.0,
            "history": [{"epoch": 1, "test_accuracy": accuracy - 0.01, "pulses_per_device": 5.0,
                         "fraction_past_t_star": 0.125},
                        {"epoch": 2, "test_accuracy": accuracy, "pulses_per_device": 10.0,
                         "fraction_past_t_star": 0.25}],
            "settings": {"limit_train": 500, "hidden": 3000, "lr_pulses": lr, "scale": scale},
            "machine": {"cpu": "test cpu", "torch": "x"}, "date": "2026-01-02", "command": "python -m rramk.train"}


ACCURACY = {"ideal": 0.98, "mean model": 0.97, "mean + d2d": 0.91, "mean + pink": 0.965, "mean + rtn": 0.968,
            "full model": 0.90, "full but d2d": 0.96, "full but pink": 0.905, "full but rtn": 0.902,
            "mean model, no saturation": 0.97, "mean + d2d, no saturation": 0.95, "mean + pink, no saturation": 0.966,
            "mean + rtn, no saturation": 0.969, "full model, no saturation": 0.93}


def _write(reports, directory: str, flag: str, accuracy: float, seeds=(0, 1), budget="epochs2-n500", **kwargs):
    for seed in seeds:
        d = reports / "ablation" / "summaries" / "mnist" / budget / directory / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(_summary(flag, seed, accuracy + 0.001 * seed, **kwargs)))


def _write_study(reports, seeds=(0, 1), accuracy=ACCURACY):
    for label, acc in accuracy.items():
        config = PUBLISHED.configs[label]
        _write(reports, config.slug, config.flag, acc, seeds)


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
    full = statistics.fmean([0.90, 0.901])
    assert f"{100 * (ideal - full):+.2f}" in table  # the drop of the full model, computed independently
    assert "| mean model      | only-saturation |" in table  # the runs of the first study's 'only saturation'
    assert "- Seeds: 2 seeds per cell (seeds 0, 1" in table
    assert "- Code: not recorded (" in table  # these summaries, like those of before 2026-12-07, name no code
    # two seeds 0.1 point apart per cell: se 0.07 points, df 2, t(0.975, 2) = 4.303: half-width 0.30
    assert "added alone to the mean model: **d2d** costs the most, +6.00 points (± 0.30, 95 % interval" in table
    assert "- Reported accuracy: test accuracy at the last epoch (these runs have no validation split)" in table
    assert "removed alone from the full model: **d2d** costs the most, +6.00 points" in table
    assert "**Is d2d the most damaging? Yes**" in table
    assert "- ranking, added alone to the mean model: d2d (+6.00) > pink (+0.50) > rtn (+0.20, not resolved)." in table
    assert "python -m rramk.ablation mnist --epochs 2 --limit-train 500 --validation 0 --seeds 0 1" in table
    ranked = table.split("## Which imperfection costs the most?")[1].split("## Saturation")[0]
    assert [l.split("|")[1].strip() for l in ranked.splitlines() if l.startswith("| ")][1:] == ["d2d", "pink", "rtn"]
    # mean model - full = 7.00 points; the costs alone sum to 6.0 + 0.5 + 0.2
    assert "together, the imperfections cost +7.00 points against the mean model (mean model - full model, ± 0.07); " \
           "the sum of their costs alone is +6.70." in table
    # saturation: identical on the mean model, 3 points on the full model, and its interaction with d2d
    assert "on the mean model, saturation changes no weight: mean model and mean model, no saturation give exactly " \
           "the same accuracy in every seed (2)" in table
    assert "on the full model, saturation costs +3.00 ± 0.07 points" in table
    assert "- d2d x saturation: d2d costs +6.00 ± 0.07 points on the mean model with saturation and +2.00 ± 0.07 " \
           "without it: saturation changes its cost by +4.00 ± 0.10 (beyond 2 standard errors)." in table
    assert table.index("- d2d x saturation") < table.index("- rtn x saturation")  # strongest first
    assert "--study legacy" in table and "retired" in table and "Not finished yet" not in table
    speed = (reports / "speed.md").read_text()
    assert "20.00x vs published-structure" in speed  # 1.0 s / 0.05 s
    index = (reports / "README.md").read_text()
    assert "(ablation_mnist_epochs2-n500_curves.png)" in table
    for name in ("ablation_mnist_epochs2-n500.md", "ablation_mnist_epochs2-n500.png",
                 "ablation_mnist_epochs2-n500_curves.png", "speed.md", "bench/cpu.json"):
        assert name in index
    assert "1. **Which imperfection hurts most?** **Is d2d the most damaging? Yes**" in index
    assert "d2d +6.00 ± 0.30 / +6.00 ± 0.30" in index and "2 seeds per cell" in index
    assert "2. **What tolerance is enough?** Pending" in index
    assert "3. **Does refresh help?** Pending" in index
    assert "| tolerance of the d2d_m1 spread" in index and "`scripts/study-mnist-answers.sh`" in index
    assert "0 of 85 runs (not started)" in index  # the answers: 8 configurations x 2 rates + the ideal BNN, x 5 seeds
    before = {p.name: p.read_bytes() for p in reports.iterdir() if p.is_file()}
    assert report.main(["--reports", str(reports)]) == 0
    after = {p.name: p.read_bytes() for p in reports.iterdir() if p.is_file()}
    assert before == after  # same inputs, same files (PNG bytes included)


def test_report_says_when_d2d_is_not_the_most_damaging(tmp_path):
    reports = tmp_path / "reports"
    swapped = dict(ACCURACY, **{"mean + d2d": 0.969, "mean + rtn": 0.91, "full but d2d": 0.905, "full but rtn": 0.96})
    _write_study(reports, seeds=(0,), accuracy=swapped)
    assert report.main(["--reports", str(reports)]) == 0
    table = (reports / "ablation_mnist_epochs2-n500.md").read_text()
    assert "added alone to the mean model: **rtn** costs the most" in table
    assert "one seed: no interval" in table
    # one seed: a ranking, never a yes or no
    assert "**Is d2d the most damaging? Not resolved**: one seed per cell, no interval yet (largest cost so far: " \
           "rtn)" in table
    reports = tmp_path / "two-seeds"
    _write_study(reports, seeds=(0, 1), accuracy=swapped)
    assert report.main(["--reports", str(reports)]) == 0
    table = (reports / "ablation_mnist_epochs2-n500.md").read_text()
    assert "**Is d2d the most damaging? No**: rtn costs more; the published study found" in table


def test_report_of_a_study_in_progress_names_what_is_missing(tmp_path):
    reports = tmp_path / "reports"
    _write_study(reports, accuracy={k: v for k, v in ACCURACY.items() if not k.startswith("mean + ")})
    assert report.main(["--reports", str(reports)]) == 0
    table = (reports / "ablation_mnist_epochs2-n500.md").read_text()
    assert "**Is d2d the most damaging? Yes, in the one view measured so far**" in table
    assert "Not finished yet: mean + d2d, mean + pink, mean + rtn, mean + d2d, no saturation" in table


def test_the_refresh_answer_is_computed_never_copied_from_refresh_md(tmp_path):
    (tmp_path / "refresh.md").write_text("# Refresh\n\n- Answer: yes, +1.2 points on the full model.\n")
    assert refresh_report.refresh_sentence(tmp_path) == \
        "**Does refresh help?** See [refresh.md](refresh.md) (no refresh runs with a baseline to read)."


def test_index_reads_the_refresh_runs_against_the_same_runs_without_refresh(tmp_path):
    (tmp_path / "refresh.md").write_text("# Refresh\n\nsome table\n")
    for name, policy, accuracy, seed in (("past", "past_t_star", 0.96, 0), ("past-1", "past_t_star", 0.97, 1),
                                         ("window", "window", 0.93, 0), ("short", "window", 0.99, 0)):
        summary = _summary("all", seed, accuracy)
        summary["settings"]["refresh"] = policy
        if name == "short":  # a smaller budget: not the one quoted
            summary["settings"]["limit_train"] = 100
        (tmp_path / "refresh" / name).mkdir(parents=True)
        (tmp_path / "refresh" / name / "summary.json").write_text(json.dumps(summary))
    _write(tmp_path, "all", "all", 0.94, seeds=(0, 1))  # without refresh: 0.94, 0.941 (seeds 0, 1)
    other = _summary("all", 0, 0.5)
    other["settings"]["hidden"] = 32  # another network: not a baseline
    (tmp_path / "ablation" / "summaries" / "mnist" / "epochs2-n500-hidden32" / "all" / "seed0").mkdir(parents=True)
    (tmp_path / "ablation" / "summaries" / "mnist" / "epochs2-n500-hidden32" / "all" / "seed0" /
     "summary.json").write_text(json.dumps(other))
    sentence = refresh_report.refresh_sentence(tmp_path)
    assert sentence.startswith("**Does refresh help?** It depends on the policy, on the runs measured so far: on "
                               "mnist, imperfections all, 2 epochs, 500 training examples, lr_pulses 20: refresh "
                               "past_t_star ends "
                               "at 96.50 % against 94.05 % without (+2.45 points), refresh window ends at 93.00 % "
                               "against 94.00 % without (-1.00 points) (1/2 seeds per cell).")
    assert "without refresh the same device reaches" not in sentence  # no run at another rate
    _write(tmp_path, "all-lr8", "all", 0.97, seeds=(0, 1), lr=8.0)  # without refresh at lr 8: 0.97, 0.971
    sentence = refresh_report.refresh_sentence(tmp_path)
    assert "The runs of past_t_star are at lr_pulses 20; without refresh the same device reaches 97.05 % at " \
           "lr_pulses 8 (2 seeds), so " \
           "refresh past_t_star is -0.55 points from the best rate without it." in sentence


def test_speed_report_leads_with_the_ratios_and_their_targets():
    """The headline: published structure / rramk (native preferred), device / software, aihwkit / rramk,
    each from one file, with its target and whether it is met."""

    def rec(operation, shape, provider, median, file="cpu.json"):
        return {"file": file, "session": {}, "stats": {"median": median},
                "extra_info": {"operation": operation, "shape": shape, "provider": provider}}

    records = [rec("device update", "mnist-784x3000/every", "published-structure", 1.0),
               rec("device update", "mnist-784x3000/every", "rramk-native", 0.04),
               rec("device update", "mnist-784x3000/every", "rramk-compiled", 0.07),
               rec("device update", "mnist-784x3000/training", "published-structure", 0.9),
               rec("device update", "mnist-784x3000/training", "rramk-native", 0.06),
               rec("training step", "mnist-784-3000-10-b1000", "ideal", 0.08),
               rec("training step", "mnist-784-3000-10-b1000", "device", 0.1),
               rec("training step", "mnist-784-3000-10-b1000", "aihwkit-ReRamSBPreset", 0.9, file="other.json"),
               rec("training step", "mnist-784-3000-10-b1000", "device", 0.15, file="other.json")]
    text = speed_report.headline_ratios(records)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:]] for line in text.splitlines()
            if line.startswith("| ") and "---" not in line}
    assert rows["device update: rramk vs the published structure, every synapse pulsed"][:4] == \
        ["25.00x", ">= 20x", "yes", "published-structure / rramk-native"]
    assert rows["device update: rramk vs the published structure, training-like pulses"][:3] == \
        ["15.00x", ">= 20x", "**no**"]
    assert rows["MNIST training step: device model vs software BNN (time ratio)"][:3] == ["1.25x", "<= 1.5x", "yes"]
    # aihwkit only in other.json: the ratio is taken inside that file (0.9 / 0.15), never across files
    assert rows["MNIST training step: rramk's device model vs aihwkit ReRamSBPreset"][:3] == ["6.00x", ">= 10x", "**no**"]
    assert "optimizer step" not in text  # not measured: no row


def test_machine_names_say_the_fingerprint_where_recorded():
    """A CPU run's bits depend on its machine fingerprint: the reports name the CPU's identity, torch's
    vector code and the threads where recorded, and say what older summaries lack."""
    from rramk.reporting.runs import machine_names

    full = {"cpu": "test cpu, 2 cores", "cpu_id": "AuthenticAMD family 25 model 1 stepping 1",
            "cpu_capability": "AVX2", "threads": 2}
    runs = [{"machine": {"cpu": "test cpu, 2 cores", "threads": 2}}, {"machine": {"cpu": "test cpu, 2 cores"}},
            {"machine": full}, {"machine": {"cpu": "c", "gpu": "H200"}}]
    assert machine_names(runs) == (
        "H200; test cpu, 2 cores (AuthenticAMD family 25 model 1 stepping 1, torch vector code AVX2), 2 torch threads; "
        "test cpu, 2 cores (CPU generation not recorded) (torch threads not recorded); "
        "test cpu, 2 cores (CPU generation not recorded), 2 torch threads")


def test_the_report_removes_study_files_whose_runs_are_gone(tmp_path):
    reports = tmp_path / "reports"
    _write_study(reports)
    (reports / "ablation_mnist_epochs9_sensitivity-d2d.md").write_text("runs retired since")
    (reports / "refresh.md").write_text("not a study report: kept")
    assert report.main(["--reports", str(reports)]) == 0
    assert not (reports / "ablation_mnist_epochs9_sensitivity-d2d.md").exists()
    assert (reports / "refresh.md").is_file() and (reports / "ablation_mnist_epochs2-n500.md").is_file()


def test_a_table_says_which_code_made_its_runs():
    from rramk.reporting.runs import code_versions

    runs = [{"code": {"version": "0.2.0", "commit": "a" * 40, "modified": False}}] * 2 + \
        [{"code": {"version": "0.2.0", "commit": "b" * 40, "modified": True}}, {}]
    assert code_versions(runs) == ("not recorded (1 runs); rramk 0.2.0 at commit aaaaaaaa (2 runs); rramk 0.2.0 at "
                                   "commit bbbbbbbb with local changes (1 runs)")


def test_budget_words_name_the_rate_of_device_runs_only():
    """The software BNN has no pulse rate: its budget words leave it out, a device run's name it (a table
    headed by the ideal run once said 'lr_pulses 20', the default, for a study run at 8 and 100)."""
    from rramk.reporting.runs import budget_words

    ideal = {"epochs": 20, "validation": 10000, "settings": {"imperfections": "ideal", "lr_pulses": 20.0}}
    device = {"epochs": 3, "validation": None, "settings": {"imperfections": "all", "lr_pulses": 8.0,
                                                            "limit_train": 5000}}
    assert budget_words(ideal) == ("20 epochs, all training examples (the last 10000 of the training set "
                                   "held out for validation)")
    assert budget_words(device) == "3 epochs, 5000 training examples, lr_pulses 8"


def test_the_published_budget_is_recognised_with_a_validation_split():
    """A sweep at 20 epochs on every example is the full study, with or without the validation split; a
    limit on the training examples or fewer epochs is a short budget (the index said 'indicative only' of
    the full tolerance sweeps once they held out a validation split)."""
    from rramk.reporting.index import _is_full

    assert _is_full("epochs20") and _is_full("epochs20-val10000") and _is_full("epochs20-preset-mine-1a2b3c4d")
    assert not _is_full("epochs20-n10000") and not _is_full("epochs3-n20000") and not _is_full("epochs1-n10000-val10000")
    assert not _is_full("epochs200")


def test_study_status_counts_the_runs_of_each_full_study(tmp_path):
    """The index's table of full studies: 85 runs for the answers (8 device configurations x 2 rates x 5
    seeds, and the ideal BNN's 5), 50 per tolerance knob, 15 for refresh (3 policies x 5 seeds), counted
    from the run files."""
    from rramk.reporting.index import study_status

    for name in ("val-lr8-window-retries-3-seed0", "val-lr8-past_t_star-retries-3-seed1", "full-window"):
        (tmp_path / "refresh" / name).mkdir(parents=True)
        (tmp_path / "refresh" / name / "summary.json").write_text("{}")
    rows = {row[1]: row[2] for row in study_status(tmp_path)}
    assert rows["`scripts/study-mnist-answers.sh`"] == "0 of 85 runs (not started)"
    assert rows["`scripts/study-mnist-tolerances.sh`"] == "0 of 50 runs (not started)"
    assert rows["`scripts/study-mnist-refresh.sh`"] == "2 of 15 runs (partial)"  # full-window is another study's


def test_a_study_at_one_rate_other_than_the_unsuffixed_is_reported_whole():
    """The committed short study ran at lr_pulses 8 (directories -lr8): its one report holds every
    configuration at that rate (it once held the ideal BNN alone, and its d2d cost left the index)."""
    from rramk.reporting.index import published_variants

    from pathlib import Path

    committed = Path(__file__).resolve().parents[1] / "reports" / "ablation" / "summaries"
    directories = study_summaries.load_summaries(committed)[("mnist", "epochs1-n10000-val10000")]
    ((variant, runs, note, chosen),) = published_variants(directories, study_summaries.UNSUFFIXED_LR)
    assert variant == "" and note == "" and chosen is None
    assert set(runs) >= {"ideal", "mean model", "mean + d2d", "mean + pink", "mean + rtn", "full model",
                         "full but d2d", "full but pink", "full but rtn"}
    assert {s["settings"]["lr_pulses"] for label, v in runs.items() if label != "ideal" for s in v} == {8.0}
