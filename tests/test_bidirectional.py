"""The bidirectional (ECRAM-like) family (rramk.device.bidirectional): its config and preset, one update
against the closed form, the step noise's statistics, the fixed reference device, and its kernels (Triton
under the interpreter, the native C one) against the reference, bit for bit, over every bit of |n|."""

import itertools

import pytest
import torch

from rramk import DeviceArray, load_preset
from rramk.cli import UsageError
from rramk.device import model_tables, streams, weak_reset
from rramk.device.bidirectional import Bidirectional
from rramk.device.families import device_from_dict
from rramk.training.run_settings import RunSettings
from tests.test_kernel_weak_reset import _assert_same_state, _first_mismatch

PRESET = model_tables.__file__.replace("model_tables.py", "presets/ecram_tang2018.json")
FLAGS = list(itertools.product([True, False], repeat=4))  # d2d, pink, rtn, saturation


def _config(d2d=True, pink=True, rtn=True, saturation=True) -> Bidirectional:
    return Bidirectional(d2d=d2d, pink=pink, rtn=rtn, saturation=saturation)


def test_defaults_are_aihwkit_ecram_converted():
    """aihwkit EcRamPresetDevice (LinearStep): up step dw_min (1 - gamma_up w / w_max) = rate_up (s_up - w), down
    step dw_min (1 + gamma_down w / |w_min|) = rate_down (w - s_down); the soft targets as linearity x range."""
    c = Bidirectional()
    assert c.rate_up.scale == pytest.approx(0.002 * 0.1153 / 1.1724)
    assert c.rate_down.scale == pytest.approx(0.002 * 0.5085 / 0.8276)
    span = c.g_max.mean_truncated - c.g_min.mean_truncated
    assert c.g_max.mean_truncated + c.linearity_up * span == pytest.approx(1.1724 / 0.1153)
    assert c.g_min.mean_truncated - c.linearity_down * span == pytest.approx(-0.8276 / 0.5085)
    for name in ("rate_up", "rate_down"):
        assert getattr(c, name).truncated_mean() == pytest.approx(getattr(c, name).mean_truncated, rel=1e-9)
    assert c.imperfections == ("d2d", "pink", "saturation") and c.pink_alpha == 0.3
    assert load_preset(PRESET) == c and device_from_dict(c.scaled(d2d_rate=2).to_dict()) == c.scaled(d2d_rate=2)


def test_config_refuses_a_reset_state_outside_its_bounds():
    from rramk.device.distributions import TruncatedNormal

    with pytest.raises(ValueError, match="g0: every reset state must lie strictly between"):
        Bidirectional(g0=TruncatedNormal(loc=1.0, scale=0.1, low=0.8, high=1.2, mean_truncated=1.0))
    with pytest.raises(ValueError, match="linearity_up: expected a finite number >= 0"):
        Bidirectional(linearity_up=-1.0)
    with pytest.raises(ValueError, match="a reset state g0 lies outside its bounds"):
        model_tables._d2d_table(Bidirectional().scaled(d2d_g0=200.0))


def _parameters(config, seed, numel, dtype=torch.float64):
    index = torch.arange(numel, dtype=torch.int64)
    constants = model_tables.model_constants(config, "cpu", dtype)
    return weak_reset.d2d_parameters(config, constants, weak_reset.d2d_words(seed, index), streams.SIDE_BL)


@pytest.mark.parametrize("saturation", [True, False])
def test_one_update_is_the_closed_form(saturation):
    """Noise off, from displacements d inside the bounds: d' = clip(d + (s - g0 - d)(1 - (1 - rate)^|n|)) toward
    the soft target s of n's direction (saturation off: d + (s - g0) rate n, no clip), in float64 from the
    devices' own parameters, for |n| over all 15 bits; BLb (the reference) does not move."""
    config, numel = _config(pink=False, saturation=saturation), 600
    g = torch.Generator().manual_seed(3)
    n = torch.randint(-2**15 + 1, 2**15, (numel,), generator=g, dtype=torch.int32)
    n[:6] = torch.tensor([0, 1, -1, 2**15 - 1, -(2**15 - 1), 2**14])
    p = _parameters(config, 11, numel)
    d = (torch.rand(numel, generator=g, dtype=torch.float64) * 0.9 + 0.05) * (p["m2"] - p["c1"]) + (p["c1"] - p["ln_r0"])
    state = torch.zeros(2, numel, dtype=torch.int32)
    pink = torch.stack([d, torch.zeros(numel, dtype=torch.float64)]).float()
    new_state, new_pink, weights, y = weak_reset.weak_reset_update(state, pink, n, config=config, seed=11, update=4)
    d = pink[0].double()
    up = n > 0
    target = torch.where(up, p["s_up"], p["s_down"]) - p["ln_r0"]
    rate = torch.where(up, p["m1"], p["t_star"])
    k = n.abs().double()
    if saturation:
        expected = (d + (target - d) * (1 - (1 - rate) ** k)).clamp(min=p["c1"] - p["ln_r0"], max=p["m2"] - p["ln_r0"])
    else:
        expected = d + target * rate * k
    assert torch.allclose(new_pink[0].double(), expected, rtol=4e-6, atol=4e-6), (new_pink[0].double() - expected).abs().max()
    assert torch.equal(new_pink[1], pink[1]) and (weak_reset.unpack_device_state(new_state)[0][1] == 0).all()
    assert torch.equal(weak_reset.unpack_device_state(new_state)[0][0], n.abs())
    assert torch.equal(weights, torch.where(y[0] >= y[1], 1, -1).to(torch.int8))
    if saturation:
        assert bool((expected == p["m2"] - p["ln_r0"]).any()) and bool((expected == p["c1"] - p["ln_r0"]).any())


def test_step_noise_is_multiplicative_with_sd_alpha():
    """From d = 0, one update of n pulses: (d' - step) / |step| over 40 000 identical devices has mean 0 and
    sd alpha (sqrt(6) (u + u' - 1) has variance 1), within 4 standard errors."""
    config, numel = Bidirectional(d2d=False, saturation=False), 40_000
    n = torch.where(torch.arange(numel) % 2 == 0, 5, -7).to(torch.int32)
    state, pink = torch.zeros(2, numel, dtype=torch.int32), torch.zeros(2, numel)
    _, new_pink, _, _ = weak_reset.weak_reset_update(state, pink, n, config=config, seed=2, update=0)
    p = _parameters(config, 2, numel, torch.float32)
    step = torch.where(n > 0, (p["s_up"] - p["ln_r0"]) * p["m1"], (p["s_down"] - p["ln_r0"]) * p["t_star"]) * n.abs()
    z = ((new_pink[0] - step) / step.abs()).double()
    alpha = config.pink_alpha
    assert abs(z.mean().item()) < 4 * alpha / numel ** 0.5
    assert abs(z.std().item() - alpha) < 4 * alpha / (2 * numel) ** 0.5 * 1.2  # the triangle's kurtosis 2.4


def _displaced_state(numel: int, seed: int):
    """Packed states with random RTN states and pulse counts, BL displacements spread over (and beyond) the range."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 2**19, (2, numel), generator=g, dtype=torch.int32)
    s = torch.randint(0, 2, (2, numel), generator=g, dtype=torch.uint8)
    pink = torch.zeros(2, numel)
    pink[0] = torch.rand(numel, generator=g) * 2.2 - 1.0
    return weak_reset.pack_device_state(t, s), pink


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(n for n, on in zip(("d2d", "pink", "rtn", "sat"), f)
                                                                if on) or "none")
def test_update_kernel_matches_reference(fused, flags):
    """State words, displacements, weights and the kernel's own reads, at update indices past 2**31, with |n| over
    all 15 bits of the step composition (and 0)."""
    kernel, device = fused.update, fused.device
    config, numel = _config(*flags).scaled(rtn=3.0), 203
    state, pink = _displaced_state(numel, seed=4)
    g = torch.Generator().manual_seed(9)
    for update in (0, 7, 2**31 + 5):
        n = torch.randint(-2**15 + 1, 2**15, (numel,), generator=g, dtype=torch.int32)
        n[::5] = 0
        n[1::7] = torch.randint(-14, 15, n[1::7].shape, generator=g, dtype=torch.int32)
        ref = weak_reset.weak_reset_update(state, pink, n, config=config, seed=77, update=update)
        k_state, k_pink = state.to(device), pink.to(device)
        k_weights = torch.empty(numel, dtype=torch.int8, device=device)
        k_y = torch.empty(2, numel, device=device)
        kernel.weak_reset_update(k_state, k_pink, n.to(device), k_weights, seed=77, update=update, log_r=k_y,
                                 **model_tables.kernel_arguments(config, device))
        for name, a, b in zip(("device_state", "pink", "weights", "y"), ref, (k_state, k_pink, k_weights, k_y)):
            _first_mismatch(name, a, b.cpu(), f"{flags} update {update}")
        state, pink = ref[0], ref[1]


@pytest.mark.parametrize("flags", [(True, True, True, True), (True, True, False, False), (False, False, True, True)])
def test_fused_step_matches_reference(fused, flags):
    from tests.test_kernel_weak_reset_adam import _gradients

    config, shape, device = _config(*flags), (3, 23), fused.device
    reference = DeviceArray(shape, config, seed=8, backend="reference")
    kernel = DeviceArray(shape, config, seed=8, device=device, backend=fused.backend)
    moments = {"ref": [torch.zeros(shape), torch.zeros(shape)], "ker": [torch.zeros(shape, device=device),
                                                                       torch.zeros(shape, device=device)]}
    for step, grad in enumerate(_gradients(shape, 4, seed=1), start=1):
        reference.adam_step(grad, *moments["ref"], step=step, lr_pulses=30.0)
        kernel.adam_step(grad.to(device), *moments["ker"], step=step, lr_pulses=30.0)
        _assert_same_state(reference, kernel, f"{flags} step {step}")


def test_bounds_hold_under_noise_and_refresh_is_refused():
    array = DeviceArray((300,), Bidirectional().scaled(pink=3.0), seed=5, backend="reference")
    p = array.d2d_parameters()
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        array.apply_pulses(torch.randint(-14, 15, (300,), generator=g, dtype=torch.int32).abs())  # up only: to g_max
    y = array.log_resistance()[0]
    assert (y <= p["g_max"][0] + 1e-6).all() and (y >= p["g_min"][0] - 1e-6).all()
    assert int((y >= p["g_max"][0] - 1e-6).sum()) > 0  # some devices sit at their hard bound
    with pytest.raises(ValueError, match="needs no refresh"):
        array.refresh("pulses", limit=10)
    with pytest.raises(UsageError, match="--refresh: a Bidirectional device moves both ways"):
        RunSettings(dataset="mnist", preset=PRESET, refresh="pulses:limit=100")
