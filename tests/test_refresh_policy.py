"""The refresh policy: its command-line form, WeakResetAdam's refresh and endurance counts, and
python -m rramk.train --refresh (helpers from tests/test_refresh.py)."""

import pytest
import torch

from tests.test_refresh import _first_mismatch


# ------------------------------------------------------------------ the policy and the optimizer

def test_policy_reads_its_command_line_form():
    from rramk.device.refresh import Refresh

    assert Refresh.parse(None) is None and Refresh.parse("off") is None
    assert Refresh.parse("past_t_star") == Refresh()
    policy = Refresh.parse("window:margin=0.05,every=10,max-write-pulses=255")
    assert policy == Refresh("window", margin=0.05, every=10, max_write_pulses=255)
    assert Refresh.parse(str(policy)) == policy and str(Refresh()) == "past_t_star"
    assert [policy.due_at(step) for step in (1, 10, 15, 20)] == [False, True, False, True]
    assert Refresh.parse("window:retries=3") == Refresh("window", retries=3) and str(Refresh(retries=2)) == \
        "past_t_star:retries=2"
    noisy = Refresh.parse("pulses:limit=542,read_noise=0.02,verify_margin=0.06,retries=3")
    assert noisy == Refresh("pulses", limit=542, retries=3, read_noise=0.02, verify_margin=0.06)
    assert Refresh.parse(str(noisy)) == noisy
    counted = Refresh.parse("pulses:limit=542,every=2")
    assert counted == Refresh("pulses", limit=542, every=2) and str(counted) == "pulses:limit=542,every=2"
    for bad, match in (("past_t_star:retries=-1", "retries: expected an integer >= 0"), ("pulses", "expected limit=N"), ("pulses:limit=0", "expected limit=N"),
                       ("window:limit=5", "'pulses' condition only"), ("pulses:limit=x", "limit: expected an integer"),
                       ("sometimes", "unknown condition"), ("window:margin", "key=value"),
                       ("window:every=x", "every: expected an integer"), ("past_t_star:margin=0.1", "window"),
                       ("window:every=0", "every"), ("window:margin=1", "fraction"),
                       ("window:max_write_pulses=-1", "max_write_pulses"),
                       ("past_t_star:read_noise=-0.01", "read_noise: expected the sd of ln R"),
                       ("past_t_star:verify_margin=-1", "verify_margin: expected ln R >= 0")):
        with pytest.raises(ValueError, match=match):
            Refresh.parse(bad)


def _tiny_model():
    from torch import nn

    from rramk.nn.layers import BinaryLinear

    torch.manual_seed(0)
    return nn.Sequential(BinaryLinear(6, 9, binarize_input=False), nn.BatchNorm1d(9), BinaryLinear(9, 3))


def _train(model, opt, x, steps):
    for _ in range(steps):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()


def test_optimizer_refresh_resumes_bit_for_bit_and_counts_endurance():
    import copy

    from rramk.optim import WeakResetAdam

    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))

    def make():
        model = _tiny_model()
        opt = WeakResetAdam(model.parameters(), seed=5, lr_pulses=200, refresh="past_t_star:every=2")
        for array in opt.device_arrays():  # worn devices: many past their t*
            array.apply_pulses(torch.randint(-900, 901, array.shape, generator=torch.Generator().manual_seed(2),
                                             dtype=torch.int32))
        return model, opt

    model_a, opt_a = make()
    _train(model_a, opt_a, x, 3)
    saved = copy.deepcopy((model_a.state_dict(), opt_a.state_dict()))
    _train(model_a, opt_a, x, 5)
    model_b, opt_b = make()
    model_b.load_state_dict(saved[0])
    opt_b.load_state_dict(saved[1])
    _train(model_b, opt_b, x, 5)
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    for arr_a, arr_b in zip(opt_a.device_arrays(), opt_b.device_arrays()):
        for name in ("_state", "_pink", "_weights"):
            _first_mismatch(name, getattr(arr_a, name), getattr(arr_b, name), "resumed optimizer")
    stats = opt_a.device_statistics()
    assert list(stats)[:3] == ["pulses_per_device", "fraction_past_t_star", "sign_flips_per_synapse"]
    arrays = opt_a.device_arrays()
    devices = sum(2 * a.numel for a in arrays)
    sets = sum(int(torch.stack(a.set_counts()).sum()) for a in arrays)
    assert sets > 0 and stats["sets_per_device"] == sets / devices
    assert stats["max_sets_per_device"] == max(int(torch.stack(a.set_counts()).max()) for a in arrays)
    assert stats["reset_pulses_per_device"] == sum(a.reset_pulses() for a in arrays) / devices
    assert stats["reset_pulses_per_device"] > stats["pulses_per_device"]
    assert stats["failed_rewrites"] == sum(a.failed_rewrites for a in arrays)
    for p, array in zip([model_a[0].weight, model_a[2].weight], arrays):
        assert torch.equal(p.data, array.weights())


def test_optimizer_without_refresh_is_unchanged():
    from rramk.optim import WeakResetAdam

    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))
    runs = []
    for refresh in (None, "off"):
        model = _tiny_model()
        opt = WeakResetAdam(model.parameters(), seed=5, lr_pulses=200, refresh=refresh)
        _train(model, opt, x, 4)
        runs.append((model, opt))
    assert runs[0][1].refresh is None and runs[1][1].refresh is None
    assert list(runs[0][1].device_statistics()) == ["pulses_per_device", "fraction_past_t_star",
                                                    "sign_flips_per_synapse"]
    assert "refresh" not in runs[0][1].state_dict()["rramk"]
    assert all("cycles" not in a.state_dict() for a in runs[0][1].device_arrays())
    with pytest.raises(ValueError, match="unknown condition"):
        WeakResetAdam(_tiny_model().parameters(), refresh="sometimes")


# ------------------------------------------------------------------ python -m rramk.train --refresh

def test_run_settings_take_refresh_and_old_settings_compare_equal():
    import dataclasses

    from rramk.training.run_settings import RunSettings
    from rramk.training.loop import UsageError

    plain = RunSettings("mnist")
    assert plain.refresh == "off" and plain.out == "runs/mnist-all-seed0"
    old = dataclasses.asdict(plain)
    del old["refresh"]  # a checkpoint written before --refresh existed
    assert RunSettings(**old).comparable() == plain.comparable()
    policy = RunSettings("mnist", refresh="window:every=5,margin=0.1")
    assert policy.refresh == "window:margin=0.1,every=5" and "refresh" in policy.out
    assert policy.comparable() != plain.comparable()  # --resume refuses a change of policy
    with pytest.raises(UsageError, match="--refresh: unknown condition"):
        RunSettings("mnist", refresh="sometimes")
    with pytest.raises(UsageError, match="no device to refresh"):
        RunSettings("mnist", imperfections="ideal", refresh="past_t_star")


from tests.test_train import _one_thread_no_network, needs_mnist, run  # noqa: E402,F401


@needs_mnist
def test_train_with_refresh_records_endurance_and_resumes_bit_for_bit(tmp_path):
    import json

    args = ["--refresh", "window:margin=0.9", "--imperfections", "all"]
    assert run(tmp_path / "whole", "--epochs", "2", *args) == 0
    assert run(tmp_path / "part", "--epochs", "1", *args) == 0
    assert run(tmp_path / "part", "--epochs", "2", "--resume", *args) == 0
    assert run(tmp_path / "part", "--epochs", "3", "--resume") == 2  # another policy: refused
    records = [[json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
               for name in ("whole", "part")]
    for a, b in zip(*records):
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    last = records[0][-1]
    assert last["sets_per_device"] > 0 and last["max_sets_per_device"] >= 1
    assert last["reset_pulses_per_device"] > last["pulses_per_device"]
    summary = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["settings"]["refresh"] == "window:margin=0.9"
