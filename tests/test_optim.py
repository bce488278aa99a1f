"""WeakResetAdam and LatentAdam: routing, one step by hand, checkpoints."""

import copy

import pytest
import torch
from torch import nn

from rramk import HfOxWeakReset
from rramk.nn.layers import BinaryLinear, is_binary
from rramk.optim import LatentAdam, WeakResetAdam, route_parameters


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(BinaryLinear(3, 4, binarize_input=False), nn.BatchNorm1d(4), BinaryLinear(4, 2))


def test_routing_puts_binary_weights_on_devices_and_the_rest_on_adam():
    model = tiny_model()
    opt = WeakResetAdam(model.parameters(), lr_pulses=10, lr=0.01)
    kinds = {g["kind"]: g for g in opt.param_groups}
    assert [id(p) for p in kinds["binary"]["params"]] == [id(model[0].weight), id(model[2].weight)]
    assert {id(p) for p in kinds["float"]["params"]} == {id(model[1].weight), id(model[1].bias)}
    assert kinds["binary"]["lr"] == 10 and kinds["float"]["lr"] == 0.01
    assert len(opt.device_arrays()) == 2
    # different tensors get different random streams
    assert opt.device_arrays()[0].seed != opt.device_arrays()[1].seed


def test_model_weights_are_the_device_weights():
    model = tiny_model()
    opt = WeakResetAdam(model.parameters(), seed=3)
    x = torch.randn(8, 3)
    for _ in range(3):
        for p, array in zip([model[0].weight, model[2].weight], opt.device_arrays()):
            assert torch.equal(p.data, array.weights())
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()


def test_identical_devices_start_from_random_weights():
    """Without D2D every fresh weight is a tie (+1); one initial pulse on a random side breaks it."""
    cfg = HfOxWeakReset().without("d2d", "pink", "rtn")
    layer = BinaryLinear(50, 50)
    WeakResetAdam([layer.weight], config=cfg, seed=2, initial_pulses=0)
    assert bool((layer.weight == 1).all())
    WeakResetAdam([layer.weight], config=cfg, seed=2)
    plus = (layer.weight == 1).float().mean().item()
    assert abs(plus - 0.5) < 4 * 0.5 / 50  # 2500 fair coins: 4 standard errors


BACKENDS = ["reference", "compiled", "native", "triton"]  # triton: the fused kernel (interpreted on a CPU)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_step_by_hand(backend):
    """Step 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2: u = -lr g / (|g| + eps)."""
    layer = BinaryLinear(2, 2)
    cfg = HfOxWeakReset()
    opt = WeakResetAdam([layer.weight], config=cfg, lr_pulses=5.0, seed=1, initial_pulses=0, backend=backend)
    array = opt.device_arrays()[0]
    assert array.backend == backend
    g = torch.tensor([[0.3, -2.0], [1e-9, 0.0]])
    layer.weight.grad = g.clone()
    opt.step()
    # 1e-9 / (1e-9 + 1e-8) = 1/11: u = -5/11 rounds to 0 pulses
    expected = torch.tensor([[-5, 5], [0, 0]], dtype=torch.int32)
    t_bl, t_blb = array.pulse_counts()
    assert torch.equal(t_bl, expected.clamp(min=0)) and torch.equal(t_blb, (-expected).clamp(min=0))
    state = opt.state[layer.weight]
    assert torch.allclose(state["exp_avg"], 0.1 * g) and torch.allclose(state["exp_avg_sq"], 0.001 * g * g)
    assert torch.equal(layer.weight.data, array.weights())


@pytest.mark.parametrize("backend", ["compiled", "native", "triton"])
def test_every_backend_trains_the_same_bits(backend):
    """Five optimizer steps of the fused Adam-to-pulses step on every backend equal the reference bit
    for bit: weights, both devices' ln R, pulse counts and Adam moments (gradients of every scale)."""
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    runs = {}
    for name in ("reference", backend):
        model = tiny_model()
        opt = WeakResetAdam(model.parameters(), seed=5, lr_pulses=30, backend=name)
        assert all(array.backend == name for array in opt.device_arrays())
        for step in range(5):
            opt.zero_grad()
            (model(x * 10.0 ** (step - 2)).square().sum() * 10.0 ** (2 - step)).backward()
            opt.step()
        runs[name] = (model, opt)
    (model_a, opt_a), (model_b, opt_b) = runs["reference"], runs[backend]
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    for arr_a, arr_b in zip(opt_a.device_arrays(), opt_b.device_arrays()):
        assert torch.equal(arr_a.log_resistance(), arr_b.log_resistance())
        assert all(torch.equal(a, b) for a, b in zip(arr_a.pulse_counts(), arr_b.pulse_counts()))
        assert arr_a.pulse_counts()[0].sum() + arr_a.pulse_counts()[1].sum() > 20  # not vacuous
    for p_a, p_b in zip(model_a.parameters(), model_b.parameters()):
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(opt_a.state[p_a][key], opt_b.state[p_b][key]), key


def test_scheduler_acts_on_the_pulse_learning_rate():
    model = tiny_model()
    opt = WeakResetAdam(model.parameters(), lr_pulses=16, lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    kinds = {g["kind"]: g["lr"] for g in opt.param_groups}
    assert kinds == {"binary": 8, "float": 0.005}


def test_state_dict_round_trip_continues_bit_for_bit():
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()

    model_a = tiny_model()
    opt_a = WeakResetAdam(model_a.parameters(), seed=5)
    train(model_a, opt_a, 3)
    saved_model, saved_opt = copy.deepcopy(model_a.state_dict()), copy.deepcopy(opt_a.state_dict())
    train(model_a, opt_a, 3)

    model_b = tiny_model()
    opt_b = WeakResetAdam(model_b.parameters(), seed=5)
    model_b.load_state_dict(saved_model)
    opt_b.load_state_dict(saved_opt)
    train(model_b, opt_b, 3)
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    for arr_a, arr_b in zip(opt_a.device_arrays(), opt_b.device_arrays()):
        assert torch.equal(arr_a.log_resistance(), arr_b.log_resistance())
    with pytest.raises(ValueError, match="seed"):
        WeakResetAdam(tiny_model().parameters(), seed=6).load_state_dict(saved_opt)


def test_latent_adam_clips_binary_weights_only():
    model = tiny_model()
    opt = LatentAdam(model.parameters(), lr=0.5)
    for _ in range(5):
        opt.zero_grad()
        (model(torch.randn(8, 3)) * 100).sum().backward()
        opt.step()
    for p in model.parameters():
        if is_binary(p):
            assert p.abs().max() <= 1.0
    assert model[1].bias.abs().max() > 1.0  # batch-norm shift is not clipped


def test_bad_arguments():
    with pytest.raises(ValueError, match="lr_pulses"):
        WeakResetAdam(tiny_model().parameters(), lr_pulses=0)
    with pytest.raises(ValueError, match="seed"):
        WeakResetAdam(tiny_model().parameters(), seed=2**32)
    with pytest.raises(ValueError, match="params"):
        route_parameters([], {}, {})


def test_device_statistics_count_pulses_wear_and_sign_flips():
    """Against a count kept here: pulse counts and each device's own t_star read from the arrays
    (integers, so the means are exact), sign flips seen by comparing the weights around every step."""
    model = tiny_model()
    opt = WeakResetAdam(model.parameters(), seed=7, lr_pulses=14, backend="reference")
    arrays = opt.device_arrays()
    # wear some devices past their t_star (>= 41 pulses) before training: 0 to 700 pulses a device
    wear = torch.Generator().manual_seed(3)
    for array in arrays:
        for side in (1, -1):
            array.apply_pulses(side * torch.randint(0, 701, array.shape, generator=wear, dtype=torch.int32))
    data = torch.Generator().manual_seed(1)
    x, target = torch.randn(32, 3, generator=data), torch.randn(32, 2, generator=data)
    flips = 0
    for step in range(6):
        before = [array.weights() for array in arrays]
        opt.zero_grad()
        ((model(x) * target).sum() * (-1) ** step).backward()  # to and fro: some weights flip back
        opt.step()
        flips += sum(int((a != array.weights()).sum()) for a, array in zip(before, arrays))
    pulses = sum(int(t.to(torch.int64).sum()) for array in arrays for t in array.pulse_counts())
    past = sum(int((torch.stack(array.pulse_counts()) >= array.d2d_parameters()["t_star"]).sum()) for array in arrays)
    synapses = 3 * 4 + 4 * 2
    assert flips > 0 and 0 < past < 2 * synapses, (flips, past)  # neither count is trivially 0 or all

    stats = opt.device_statistics()
    assert list(stats) == ["pulses_per_device", "fraction_past_t_star", "sign_flips_per_synapse"]
    assert stats == {"pulses_per_device": pulses / (2 * synapses), "fraction_past_t_star": past / (2 * synapses),
                     "sign_flips_per_synapse": flips / synapses}
    # the flips are counted since the previous call; the wear stays
    again = opt.device_statistics()
    assert again == {**stats, "sign_flips_per_synapse": 0.0}
    assert all(int(opt.state[p]["sign_flips"]) == 0 for p in (model[0].weight, model[2].weight))


def test_latent_adam_has_no_device_statistics():
    model = tiny_model()
    assert LatentAdam(model.parameters()).device_statistics() == {}
