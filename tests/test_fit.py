"""python -m rramk.fit: one-line errors with exit status 2; traces in, a loadable preset and its report out."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import rramk
from rramk import HfOxWeakReset, load_preset
from rramk.device.traces import file_sha256, read_traces, simulate_traces
from rramk.fit import main


@pytest.mark.parametrize("text,message", [
    ("device,pulse,resistance\nA,0,7000\nA,5,-3\n", "rramk.fit: line 3: resistance '-3' is not a resistance"),
    ("device,pulse\nA,0\n", "rramk.fit: .*: line 1: the header lacks column.s. resistance"),
    ("device,pulse,resistance\nA,0,7000\nA,5,7100\n", "rramk.fit: device 'A': 2 reads, too few to fit"),
], ids=["negative", "header", "few-reads"])
def test_bad_traces_exit_2_with_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    assert main([str(path), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert __import__("re").match(message, err)
    assert not (tmp_path / "p.json").exists()


def test_usage_errors_exit_2(tmp_path):
    run = subprocess.run([sys.executable, "-m", "rramk.fit", "--criterion", "xyz"], capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice" in run.stderr
    assert main([]) == 2


def test_traces_to_preset_and_report(tmp_path):
    cfg = HfOxWeakReset()
    lengths = np.random.default_rng(0).integers(300, 600, 40)
    traces, _ = simulate_traces(cfg, lengths, pulses_per_update=3, seed=4)
    csv = traces.write_csv(tmp_path / "traces.csv")
    out = tmp_path / "presets" / "mine.json"
    assert main([str(csv), "--out", str(out), "--report", str(tmp_path / "report")]) == 0
    preset = load_preset(out)
    assert isinstance(preset, HfOxWeakReset) and preset.imperfections == ("d2d", "pink", "rtn", "saturation")
    document = json.loads(out.read_text())
    assert document["provenance"]["sha256"] == file_sha256(csv)
    assert document["provenance"]["source"] == str(csv)
    assert document["provenance"]["rramk_version"] == rramk.__version__
    assert document["fit"]["devices"] == 40 and set(document["fit"]["parameters"]) == {"m1", "t_star", "m2", "c1",
                                                                                         "a_rtn"}
    assert document["parameters"]["r0"]["family"] == "Empirical"
    names = {p.name for p in (tmp_path / "report").iterdir()}
    assert names == {"mine_report.md", "mine_lnr_band.png", "mine_parameters.png", "mine_spectrum.png",
                     "mine_rtn_dwells.png"}
    report = (tmp_path / "report" / "mine_report.md").read_text()
    assert "- Machine: " in report and "- Date: " in report and "- Command: " in report


def test_demo_writes_traces_that_the_fit_reads(tmp_path, monkeypatch):
    """--demo --write-traces: each case's simulated traces as TRACES (read_traces reads them back bit for
    bit), ready for the loop (test_traces_to_preset_and_report fits such a file)."""
    import rramk.fitting.adequacy as adequacy
    import rramk.fitting.report as fit_report
    import rramk.fitting.recovery as recovery

    case = dataclasses.replace(recovery.DEMO_CASES[0], lengths=(300, 400))
    monkeypatch.setattr(recovery, "DEMO_CASES", (case,))
    monkeypatch.setattr(adequacy, "check_family", lambda *args, **kwargs: adequacy.Adequacy(()))
    for module, name in ((fit_report, "write_report"), (fit_report, "write_recovery")):
        monkeypatch.setattr(module, name, lambda *args, **kwargs: [])  # the reports are tested above
    assert main(["--demo", str(tmp_path / "demo"), "--devices", "20", "--write-traces"]) == 0
    csv = tmp_path / "demo" / "published_traces.csv"
    written, (simulated, _) = read_traces(csv), case.simulate(20)
    assert written.devices == simulated.devices
    for what in ("pulses", "resistance"):
        for name, a, b in zip(written.devices, getattr(written, what), getattr(simulated, what)):
            assert a.dtype == b.dtype and np.array_equal(a, b), f"{name}: {what}"


def test_replicates_are_other_populations_of_the_same_case():
    """DemoCase.simulate(replicate=0) is the case's own population bit for bit; replicate 1 another one."""
    from rramk.fitting.recovery import DEMO_CASES

    case = DEMO_CASES[0]
    own, again, other = case.simulate(20), case.simulate(20, replicate=0), case.simulate(20, replicate=1)
    assert all(np.array_equal(a, b) for a, b in zip(own[0].resistance, again[0].resistance))
    assert not np.array_equal(own[0].resistance[0][:5], other[0].resistance[0][:5])


def test_errors_across_replicates_against_closed_forms():
    """across_replicates: mean, sample sd, RMS / sqrt(q(1-q)/n) and the t test of a bias, by hand."""
    from rramk.fitting.recovery import across_replicates, t975

    rows = [[{"parameter": "m1", "level": 0.5, "error": e, "devices": 100}] for e in (0.01, 0.03, 0.05)]
    (row,) = across_replicates(rows)
    assert row["mean"] == pytest.approx(0.03) and row["sd"] == pytest.approx(0.02)
    assert row["inflation"] == pytest.approx(math.sqrt((0.01 ** 2 + 0.03 ** 2 + 0.05 ** 2) / 3) / 0.05)
    assert row["bias_resolved"] == (0.03 > 4.303 * 0.02 / math.sqrt(3))  # 0.03 < 0.0497: not resolved
    shifted = [[{**r[0], "error": r[0]["error"] + 0.1}] for r in rows]
    assert across_replicates(shifted)[0]["bias_resolved"]
    assert t975(2) == 4.303 and t975(30) == pytest.approx(2.0423, abs=3e-3)


def test_tails_against_closed_forms():
    """recovery.tails: a fitted m1 equal to the truth reaches 100 % of it; one cut at the true median
    (F = 1/2 of an exponential: loc + scale ln 2) reaches ~50 %; visible = 1 - 2/(n + 1)."""
    import types

    from rramk.device.distributions import TruncatedExponential
    from rramk.fitting.recovery import tails

    truth = HfOxWeakReset()
    m1 = truth.m1
    median = m1.loc + m1.scale * math.log(2 / (1 + math.exp(-(m1.high - m1.loc) / m1.scale)))
    cut = TruncatedExponential(loc=m1.loc, scale=m1.scale, low=m1.low, high=median, mean_truncated=m1.mean_truncated)
    for chosen, reached in ((m1, 1.0), (cut, 0.5)):
        fit = types.SimpleNamespace(r0=7000.0, parameters={"m1": types.SimpleNamespace(chosen=chosen, informative=99)})
        (row,) = tails(truth, fit)
        assert row["reached"] == pytest.approx(reached, abs=2e-3) and row["visible"] == pytest.approx(0.98)
        assert row["true_high"] >= row["fitted_high"]
