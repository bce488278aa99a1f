"""The soft-bounds device family (rramk.device.soft_bounds): its config and preset, its mean response
against the closed form, and its kernels (Triton under the interpreter, the native C one) against the
PyTorch reference, bit for bit, over every bit of t, both devices and every flag."""

import itertools
import math

import pytest
import torch

from rramk import DeviceArray, HfOxWeakReset, load_preset
from rramk.device import model_tables, streams, weak_reset
from rramk.device.families import device_from_dict
from rramk.device.preset import PresetError
from rramk.device.soft_bounds import SoftBounds
from rramk.cli import UsageError
from rramk.training.run_settings import RunSettings
from tests.test_kernel_weak_reset import _assert_same_state, _first_mismatch

PRESET = model_tables.__file__.replace("model_tables.py", "presets/reram_sb_gong2018.json")
FLAGS = list(itertools.product([True, False], repeat=4))  # d2d, pink, rtn, saturation


def _config(d2d=True, pink=True, rtn=True, saturation=True) -> SoftBounds:
    # rtn at 3x its what-if range, so that its term is not lost beside the white noise
    return SoftBounds(d2d=d2d, pink=pink, rtn=rtn, saturation=saturation).scaled(rtn=3.0)


def test_defaults_are_aihwkit_reram_sb_converted():
    """aihwkit ReRamSBPresetDevice: dw_min 0.002, w_max 1.25 (dtod 0.3/1.25), w_min -0.75 (dtod 0.3/0.75),
    dw_min_dtod 0.3, write_noise_std 56: rate = dw_min / w_max, sds in units of w, white noise of sd 0.112."""
    c = SoftBounds()
    assert c.rate.scale == pytest.approx(0.002 / 1.25) and c.rate.s == 0.3
    assert (c.g_max.loc, c.g_max.scale) == (1.25, pytest.approx(0.3 / 1.25 * 1.25))
    assert (c.g0.loc, c.g0.scale) == (-0.75, pytest.approx(0.3 / 0.75 * 0.75))
    assert (c.pink_order, c.pink_d) == (1, 0.0) and c.pink_coefficients() == [1.0]
    assert c.pink_alpha / math.sqrt(12) == pytest.approx(56 * 0.002)  # the sd of alpha * u, u ~ U[0, 1)
    assert c.imperfections == ("d2d", "pink", "saturation")  # no RTN in the source
    for name in ("rate", "g_max", "g0"):  # each truncated at 2 sd: its mean after truncation the centre's
        assert getattr(c, name).truncated_mean() == pytest.approx(getattr(c, name).mean_truncated, rel=1e-6)


def test_config_refuses_bad_values_and_round_trips():
    from rramk.device.distributions import TruncatedNormal, Uniform

    with pytest.raises(ValueError, match="rate: expected a fraction per pulse in \\(0, 1\\)"):
        SoftBounds(rate=Uniform(low=0.0, high=0.1, mean_truncated=0.05))
    with pytest.raises(ValueError, match="g_max: every bound must lie above every reset state"):
        SoftBounds(g_max=TruncatedNormal(loc=0.0, scale=0.3, low=-0.5, high=0.5, mean_truncated=0.0))
    with pytest.raises(ValueError, match="unknown knob.*d2d_m1"):
        SoftBounds().scaled(d2d_m1=0.5)
    config = SoftBounds().without("pink").scaled(d2d_rate=0.5)
    assert device_from_dict(config.to_dict()) == config
    assert "device_family" not in HfOxWeakReset().to_dict()  # HfOx dicts stay as before the families
    with pytest.raises(ValueError, match="a SoftBounds dict is not a HfOxWeakReset"):
        HfOxWeakReset.from_dict(config.to_dict())
    assert load_preset(PRESET) == SoftBounds()


def test_preset_of_an_unknown_family_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(open(PRESET).read().replace('"SoftBounds"', '"ExpStep"'))
    with pytest.raises(PresetError, match="unknown family 'ExpStep'; expected one of HfOxWeakReset, SoftBounds"):
        load_preset(path)


def _state_over_every_bit(numel: int, seed: int):
    """Packed states whose t covers every bit of the 20-bit counter on both devices (0, 1, powers of two, the
    largest count a device can hold before 14 more pulses), random RTN states and white-noise terms."""
    g = torch.Generator().manual_seed(seed)
    t = (torch.rand(2, numel, generator=g) ** 4 * (streams.PULSES_MASK - 14)).to(torch.int32)
    special = torch.tensor([0, 1, 2**19, streams.PULSES_MASK - 14, 1023, 2**10, 7, 2**19 + 2**18 - 1])
    t[0, :8], t[1, :8] = special, special.flip(0)
    s = torch.randint(0, 2, (2, numel), generator=g, dtype=torch.uint8)
    return weak_reset.pack_device_state(t, s), torch.rand(2, numel, generator=g) * 0.3


@pytest.mark.parametrize("saturation", [True, False])
def test_mean_response_is_the_closed_form(saturation):
    """Noise off: y = g0 + (g_max - g0) (1 - (1 - rate)^t) (saturation off: g0 + (g_max - g0) rate t) in float64,
    from the devices' own parameters, at t over every bit of the counter; within float32's rounding (the power
    rows are products of at most 20 factors of 1 - (1 - rate)^(2^b), each rounded once)."""
    config = SoftBounds(pink=False, saturation=saturation)
    numel = 400
    state, pink = _state_over_every_bit(numel, seed=1)
    _, _, _, y = weak_reset.weak_reset_update(state, torch.zeros_like(pink), torch.zeros(numel, dtype=torch.int32),
                                              config=config, seed=5, update=0)
    index = torch.arange(numel, dtype=torch.int64)
    constants = model_tables.model_constants(config, "cpu", torch.float64)
    params = weak_reset.d2d_parameters(config, constants, weak_reset.d2d_words(5, index), weak_reset.side_index("cpu"))
    t = weak_reset.unpack_device_state(state)[0].double()
    rate, g0, g_max = params["m1"], params["ln_r0"], params["m2"]
    closed = g0 + (g_max - g0) * ((1 - (1 - rate) ** t) if saturation else rate * t)
    tolerance = 2e-6 * closed.abs().clamp(min=1.0)
    assert ((y.double() - closed).abs() <= tolerance).all(), (y.double() - closed).abs().max()
    if saturation:  # the bound: every device ends within float32 of g_max, and none passes it
        assert (y.double() <= g_max + tolerance).all()
        far = t >= 2**19
        assert ((g_max - y.double())[far].abs() <= 1e-5).all()


def test_each_pulse_moves_a_fraction_of_the_remaining_window():
    """The defining property, from pulse to pulse: y(t + 1) - y(t) = rate (g_max - y(t))."""
    config = SoftBounds(pink=False, d2d=True)
    array = DeviceArray((64,), config, seed=2, backend="reference", dtype=torch.float64)
    rate, g_max = array.d2d_parameters("rate")["rate"][0], array.d2d_parameters("g_max")["g_max"][0]
    before = array.log_resistance()[0]
    for _ in range(30):
        array.apply_pulses(torch.ones(64, dtype=torch.int32))
        after = array.log_resistance()[0]
        assert torch.allclose(after - before, rate * (g_max - before), rtol=1e-9, atol=1e-12)
        before = after


@pytest.mark.parametrize("flags", FLAGS, ids=lambda f: ",".join(n for n, on in zip(("d2d", "pink", "rtn", "sat"), f)
                                                                if on) or "none")
def test_update_kernel_matches_reference_over_every_bit(fused, flags):
    """ln R (the kernel's own), states, white-noise terms and weights, pulsed on both sides, at update indices
    past 2**31; t over all 20 bits of the counter."""
    kernel, device = fused.update, fused.device
    config, numel = _config(*flags), 203
    state, pink = _state_over_every_bit(numel, seed=4)
    g = torch.Generator().manual_seed(9)
    for update in (0, 7, 2**31 + 5):
        n = torch.randint(-14, 15, (numel,), generator=g, dtype=torch.int32)
        ref_state, ref_pink, ref_weights, ref_y = weak_reset.weak_reset_update(state, pink, n, config=config, seed=77,
                                                                               update=update)
        k_state, k_pink = state.to(device), pink.to(device)
        k_weights = torch.empty(numel, dtype=torch.int8, device=device)
        k_y = torch.empty(2, numel, device=device)
        kernel.weak_reset_update(k_state, k_pink, n.to(device), k_weights, seed=77, update=update, log_r=k_y,
                                 **model_tables.kernel_arguments(config, device))
        for name, a, b in (("device_state", ref_state, k_state), ("pink", ref_pink, k_pink),
                           ("weights", ref_weights, k_weights), ("y", ref_y, k_y)):
            _first_mismatch(name, a, b.cpu(), f"{flags} update {update}")
        state, pink = ref_state, ref_pink


@pytest.mark.parametrize("flags", [(True, True, True, True), (True, True, False, False), (False, True, True, True)])
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


def test_refresh_rewrites_the_weights_and_refuses_t_star_conditions():
    array = DeviceArray((500,), SoftBounds(), seed=3, backend="reference")
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        array.apply_pulses(torch.randint(-14, 15, (500,), generator=g, dtype=torch.int32))
    held = array.weights().clone()
    with pytest.raises(ValueError, match="'past_t_star' reads each device's t_star, which a SoftBounds device has not"):
        array.refresh("past_t_star")
    t_before = torch.stack(array.pulse_counts())
    count = array.refresh("pulses", limit=200)
    due = (t_before >= 200).any(0)
    assert count == int(due.sum()) > 0
    assert torch.equal(array.weights(), held) and array.failed_rewrites == 0
    t_after = torch.stack(array.pulse_counts())
    assert (t_after[:, due].min(0).values == 0).all()  # the partner that must read lower stays at its reset state
    assert torch.equal(t_after[:, ~due], t_before[:, ~due])


def test_wear_counts_devices_past_their_time_constant():
    array = DeviceArray((50,), SoftBounds(d2d=False), seed=1, backend="reference")
    tau = 1 / SoftBounds().rate.mean_truncated  # ~604 pulses
    array.apply_pulses(torch.full((50,), 14, dtype=torch.int32))
    for _ in range(math.ceil(tau / 14) - 2):
        array.apply_pulses(torch.full((50,), 14, dtype=torch.int32))
    total, past = array.wear()
    assert total == 50 * 14 * (math.ceil(tau / 14) - 1) and past == 0
    array.apply_pulses(torch.full((50,), 14, dtype=torch.int32))
    assert array.wear()[1] == 50  # now every BL device has t * rate >= 1


def test_spread_knobs_scale_the_spread_of_one_parameter():
    """d2d_rate scales the sd of ln rate exactly and keeps its mean; d2d_g0 only g0's sd (linear, signed); a
    spread that would put a reset state above a bound is refused with the knob named."""
    base = model_tables._d2d_table(SoftBounds())
    half = model_tables._d2d_table(SoftBounds().scaled(d2d_rate=0.5))
    rate = 0
    assert torch.log(half[rate]).std() == pytest.approx(0.5 * torch.log(base[rate]).std().item(), rel=1e-9)
    assert half[rate].mean() == pytest.approx(SoftBounds().rate.mean_truncated, rel=1e-12)
    assert torch.equal(half[3], base[3]) and torch.equal(half[4], base[4])  # g_max, g0 untouched
    g0 = model_tables._d2d_table(SoftBounds().scaled(d2d_g0=1.5))[4]
    assert (g0 - g0.mean()).std() == pytest.approx(1.5 * base[4].std().item(), rel=1e-9)
    with pytest.raises(ValueError, match="d2d_g0.*lies at or below a reset state"):
        model_tables._d2d_table(SoftBounds().scaled(d2d_g0=3.0))


def test_training_settings_take_a_soft_bounds_preset():
    settings = RunSettings(dataset="mnist", preset=PRESET, scale="d2d_rate=0.5", refresh="pulses:limit=2000")
    assert isinstance(settings.device_config, SoftBounds) and settings.device_config.scales == {"d2d_rate": 0.5}
    with pytest.raises(UsageError, match="--refresh: past_t_star reads each device's t_star"):
        RunSettings(dataset="mnist", preset=PRESET, refresh="past_t_star")
    with pytest.raises(UsageError, match="unknown knob 'd2d_m1'"):
        RunSettings(dataset="mnist", preset=PRESET, scale="d2d_m1=0.5")
