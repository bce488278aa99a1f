"""WeakResetAdam and LatentAdam: routing, one step by hand, checkpoints."""

import copy

import pytest
import torch
from torch import nn

from rramk import HfOxWeakReset
from rramk.nn import BinaryLinear, is_binary
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


def test_one_step_by_hand():
    """Step 1: m = 0.1 g, v = 0.001 g^2, m_hat = g, v_hat = g^2: u = -lr g / (|g| + eps)."""
    layer = BinaryLinear(2, 2)
    cfg = HfOxWeakReset()
    opt = WeakResetAdam([layer.weight], config=cfg, lr_pulses=5.0, seed=1, initial_pulses=0)
    array = opt.device_arrays()[0]
    g = torch.tensor([[0.3, -2.0], [1e-9, 0.0]])
    layer.weight.grad = g.clone()
    opt.step()
    u = -5.0 * g / (g.abs() + 1e-8)
    expected = torch.round(u.clamp(-14, 14)).to(torch.int32)
    assert expected.tolist() == [[-5, 5], [-0, 0]] or expected.tolist() == [[-5, 5], [0, 0]]
    t_bl, t_blb = array.pulse_counts()
    assert torch.equal(t_bl, expected.clamp(min=0)) and torch.equal(t_blb, (-expected).clamp(min=0))
    state = opt.state[layer.weight]
    assert torch.allclose(state["exp_avg"], 0.1 * g) and torch.allclose(state["exp_avg_sq"], 0.001 * g * g)
    assert torch.equal(layer.weight.data, array.weights())


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
