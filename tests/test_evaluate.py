"""python -m rramk.evaluate and rramk.device.drift: a trained run's accuracy after drift and read noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rramk.device.drift import Retention, read_weights
from rramk.evaluate import main, seconds
from rramk.training.aging import accuracy_after, load_run, untouched_accuracy
from tests.test_train import _one_thread_no_network, metrics, needs_mnist, run  # noqa: F401


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run(out, "--epochs", "1", "--validation", "100") == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_durations_read_as_seconds():
    assert [seconds(t) for t in ("1s", "10min", "1h", "1d", "2w", "1y", "30", "1.5e3s")] == \
        [1.0, 600.0, 3600.0, 86400.0, 1209600.0, 31557600.0, 30.0, 1500.0]
    with pytest.raises(ValueError, match="expected a duration"):
        seconds("an hour")


@needs_mnist
def test_no_aging_is_the_trained_run(trained):
    """nu = 0, no read noise: every time reads the weights the training left, the checkpoint's last epoch's test
    accuracy; and the model's weights are given back after the evaluation."""
    loaded = load_run(trained)
    before = [p.detach().clone() for p in loaded.model.parameters()]
    rows = accuracy_after(loaded, [1.0, 3600.0, 3.15e7], Retention())
    assert untouched_accuracy(loaded) == metrics(trained)[-1]["test_accuracy"]
    assert [r["test_accuracy"] for r in rows] == [metrics(trained)[-1]["test_accuracy"]] * 3
    assert [r["flipped"] for r in rows] == [0.0] * 3
    assert all(torch.equal(a, b) for a, b in zip(before, loaded.model.parameters()))


@needs_mnist
def test_a_drift_common_to_every_device_flips_no_weight(trained):
    """W = sign(R_BL - R_BLb): the same nu on both devices of a pair moves both by nu ln(t/t0) (rounding is
    monotone, so not even a near-tie flips)."""
    rows = accuracy_after(load_run(trained), [3600.0, 3.15e7], Retention(nu_mean=0.1))
    assert [r["flipped"] for r in rows] == [0.0, 0.0]


@needs_mnist
def test_flips_from_the_spread_of_nu_against_the_closed_form(trained):
    """With nu ~ N(0, s) per device, a pair of margin m = ln R_BL - ln R_BLb flips with probability
    Phi(-|m| / (s sqrt(2) ln(t/t0))): the measured share of flipped weights within 4 binomial sd."""
    loaded = load_run(trained)
    arrays = loaded.optimizer.device_arrays()
    margins = np.concatenate([(a.log_resistance()[0] - a.log_resistance()[1]).double().flatten().numpy()
                              for a in arrays])
    s, t = 0.01, 3600.0
    spread = s * math.sqrt(2) * math.log(t)
    p = 0.5 * np.array([math.erfc(abs(m) / spread / math.sqrt(2)) for m in margins])
    (row,) = accuracy_after(loaded, [t], Retention(nu_sd=s))
    expected, sd = p.mean(), math.sqrt((p * (1 - p)).sum()) / len(p)
    assert 0.02 < expected < 0.98 and abs(row["flipped"] - expected) < 4 * sd, (row["flipped"], expected, sd)


def test_read_noise_draws_per_read_and_repeats():
    """Each read draws its own noise (another read index, another draw); the same seed and index, the same bits."""
    retention = Retention(read_noise=0.01)
    log_r = torch.zeros(2, 1000)
    nu = retention.exponents(1000, 3)
    a, b, c = (retention.read(log_r, nu, 1.0, 3, k) for k in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.std() == pytest.approx(0.01, rel=0.1)
    assert np.array_equal(read_weights(np.zeros((2, 3))), np.ones(3, dtype=np.float32))  # a tie reads +1


@needs_mnist
def test_the_command_writes_its_record_and_refuses_bad_input(trained, capsys):
    assert main([str(trained), "--after", "1s", "1d", "--drift-nu", "0.05,0.02", "--read-noise", "0.01"]) == 0
    record = json.loads((trained / "retention.json").read_text())
    assert [r["after_s"] for r in record["after"]] == [1.0, 86400.0]
    assert record["retention"] == {"nu_mean": 0.05, "nu_sd": 0.02, "read_noise": 0.01, "t0_s": 1.0}
    assert record["command"] and record["machine"] and record["date"]
    first = record["after"]
    assert main([str(trained), "--after", "1s", "1d", "--drift-nu", "0.05,0.02", "--read-noise", "0.01"]) == 0
    assert json.loads((trained / "retention.json").read_text())["after"] == first  # the same bits again
    capsys.readouterr()
    for argv, message in (([str(trained), "--after", "0.5s"], "at least --t0"),
                          ([str(trained), "--after", "soon"], "expected a duration"),
                          ([str(trained), "--after", "1h", "--drift-nu", "a,b,c"], "MEAN or MEAN,SD"),
                          ([str(trained), "--after", "1h", "--read-noise", "-1"], "read_noise: expected a number >= 0"),
                          ([str(trained / "nothing"), "--after", "1h"], "no checkpoint at")):
        assert main(argv) == 2
        assert message in capsys.readouterr().err
