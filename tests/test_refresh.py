"""Refresh: the SET of a synapse pair (a new cycle) and its re-written weight, and the cycle-aware update
on every backend (tests/test_refresh_array.py: DeviceArray.refresh; tests/test_refresh_policy.py: the
optimizer's refresh policy and its endurance counts)."""

import pytest
import torch

from rramk import HfOxWeakReset
from rramk.device import streams, model_tables, weak_reset
from rramk.device.philox import philox4x32
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)


CONFIGS = {"all": HfOxWeakReset(), "all-but-rtn": HfOxWeakReset().without("rtn"),
           "only-saturation": HfOxWeakReset().only("saturation")}


def _first_mismatch(name: str, a: torch.Tensor, b: torch.Tensor, where: str) -> None:
    if not torch.equal(a, b):
        bad = (a != b).nonzero()[0].tolist()
        raise AssertionError(f"{where}: {name} differs first at index {bad}: {a[tuple(bad)]} vs {b[tuple(bad)]}")


def _worn_state(numel: int, seed: int, max_cycle: int = 6):
    """Packed states with t in [0, 4000) (most devices past t*), random RTN states, pink terms and
    SET cycles (the same on both devices of a synapse)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 4000, (2, numel), generator=g, dtype=torch.int32)
    s = torch.randint(0, 2, (2, numel), generator=g, dtype=torch.uint8)
    k = torch.randint(0, max_cycle + 1, (numel,), generator=g, dtype=torch.int32)
    held = torch.where(torch.rand(numel, generator=g) < 0.5, 1, -1).to(torch.int8)
    return weak_reset.pack_device_state(t, s, k), torch.rand(2, numel, generator=g) * 0.1, held


# ------------------------------------------------------------------ the state word and the counters

def test_state_word_holds_t_cycle_and_rtn_state():
    t = torch.tensor([[0, streams.PULSES_MASK, 5], [17, 0, 1]], dtype=torch.int32)
    s = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.uint8)
    k = torch.tensor([streams.MAX_CYCLE, 0, 3], dtype=torch.int32)
    words = weak_reset.pack_device_state(t, s, k)
    assert words.dtype == torch.int32
    assert torch.equal(weak_reset.unpack_device_state(words)[0], t)
    assert torch.equal(weak_reset.unpack_device_state(words)[1], s)
    assert torch.equal(weak_reset.unpack_cycle(words), k.expand(2, 3))
    assert (streams.PULSE_BITS, streams.CYCLE_BITS, streams.RTN_BIT) == (20, 11, 31)
    # cycle 0 packs as before the cycle field existed: t | s << 31
    assert torch.equal(weak_reset.pack_device_state(t, s), weak_reset.pack_device_state(t, s, 0))


def test_fresh_draws_are_a_function_of_seed_device_and_cycle():
    """Cycle 0 is the array's first draw; each SET cycle k draws c1 and R0 from the D2D call with
    c2 = k (m1, t*, m2, A_rtn stay the device's own), from the same distributions."""
    config, n = HfOxWeakReset(), 4000
    constants = model_tables.model_constants(config)
    index = torch.arange(n, dtype=torch.int64)
    first = weak_reset.d2d_words(9, index)
    assert all(torch.equal(a, b) for a, b in zip(first, philox4x32(9, index, 2 * streams.STREAM_D2D, 0, 0)))
    assert all(torch.equal(a, b) for a, b in zip(first, weak_reset.d2d_words(9, index, torch.zeros(n, dtype=torch.int32))))
    side = weak_reset.side_index("cpu")
    cycle0 = weak_reset.d2d_parameters(config, constants, first, side)
    per_cycle = {}
    for k in (1, 2):
        words = weak_reset.d2d_words(9, index, k)
        again = weak_reset.d2d_words(9, index, torch.full((n,), k))
        assert all(torch.equal(a, b) for a, b in zip(words, again))  # same seed, device, cycle: same bits
        per_cycle[k] = weak_reset.d2d_parameters(config, constants, first, side, words)
        for name in ("m1", "t_star", "m2", "a_rtn"):
            assert torch.equal(per_cycle[k][name], cycle0[name]), name
        for name in ("c1", "r0"):
            assert (per_cycle[k][name] != cycle0[name]).float().mean() > 0.99, name
        # drawn from the same truncated distribution: the mean within 4 standard errors
        r0 = per_cycle[k]["r0"].double()
        assert abs(r0.mean().item() - config.r0.mean_truncated) < 4 * r0.std().item() / (2 * n) ** 0.5
        # independent of the previous cycle's draw: |correlation| within 4 / sqrt(n)
        corr = torch.corrcoef(torch.stack([r0.flatten(), cycle0["r0"].double().flatten()]))[0, 1]
        assert abs(corr.item()) < 4 / (2 * n) ** 0.5
    assert (per_cycle[1]["r0"] != per_cycle[2]["r0"]).float().mean() > 0.99
    other = weak_reset.d2d_parameters(config, constants, first, side, weak_reset.d2d_words(10, index, 1))
    assert (other["r0"] != per_cycle[1]["r0"]).float().mean() > 0.99  # another seed: other bits


# ------------------------------------------------------------------ the SET (reference)

@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_set_starts_a_new_cycle_and_rewrites_the_held_weight(config_name):
    config, numel, seed, updates = CONFIGS[config_name], 600, 31, 12
    state, pink, held = _worn_state(numel, seed=5)
    index = torch.arange(numel, dtype=torch.int64)
    new_state, new_pink, weights, log_r, n = weak_reset.weak_reset_set(
        state, pink, index, held, config=config, seed=seed, updates=updates, max_write_pulses=1023)
    t, s = weak_reset.unpack_device_state(new_state)
    cycle = weak_reset.unpack_cycle(new_state)
    assert torch.equal(cycle, (weak_reset.unpack_cycle(state)[0] + 1).expand(2, numel))
    hi = torch.where(held >= 0, 0, 1).to(torch.int64)  # the device that must read higher
    lo = 1 - hi
    cols = torch.arange(numel)
    assert torch.equal(t[hi, cols], n) and bool((t[lo, cols] == 0).all())
    assert bool((new_pink[lo, cols] == 0).all()) and bool((s[lo, cols] == 0).all())
    constants = model_tables.model_constants(config)
    expected_pink = weak_reset.pink_term(config, constants, seed, index, hi, n, cycle[0].to(torch.int64))
    _first_mismatch("pink", new_pink[hi, cols], expected_pink, config_name)
    # the weight reads as held, except where the bound of write pulses was reached without it
    failed = weights != held
    assert bool((n[failed] == 1023).all())
    assert failed.float().mean() < 0.06
    # the fewest pulses: one fewer does not bring the mean ln R of the written device across
    params = [weak_reset.d2d_parameters(config, constants, weak_reset.d2d_words(seed, index), side,
                                        weak_reset.d2d_words(seed, index, cycle[0].to(torch.int64)))
              for side in (0, 1)]
    mean = [p["ln_r0"] + weak_reset.mean_log_resistance(torch.zeros(numel), p["m1"], p["t_star"], p["c1"], p["m2"])
            for p in params]
    before = [params[i]["ln_r0"] + weak_reset.mean_log_resistance((n - 1).clamp(min=0), params[i]["m1"],
                                                                  params[i]["t_star"], params[i]["c1"], params[i]["m2"])
              for i in (0, 1)]
    pulsed = (n > 0) & (n < 1023)
    short_plus = (held > 0) & pulsed & ~(before[0] < mean[1])
    short_minus = (held < 0) & pulsed & ~(before[1] <= mean[0])
    assert not bool(short_plus.any() or short_minus.any())
    assert bool(((n == 0) == ((held > 0) & (mean[0] >= mean[1]) | (held < 0) & (mean[1] > mean[0]))).all())
    assert 0.3 < (n > 0).float().mean() < 0.7 if config.d2d else True  # not vacuous
    # a read of the new state gives the SET's own ln R, bit for bit (and so the same weights)
    read = weak_reset.read_log_resistance(new_state, new_pink, config=config, seed=seed, updates=updates, cycles=True)
    _first_mismatch("log_r", read, log_r, config_name)
    assert torch.equal(weak_reset.read_weights(read), weights)


def test_set_of_a_slice_equals_the_set_of_those_synapses_in_the_whole_array():
    """The SET of a synapse depends on its flat index, not on which other synapses are SET with it."""
    config, numel = HfOxWeakReset(), 300
    state, pink, held = _worn_state(numel, seed=8)
    index = torch.arange(numel, dtype=torch.int64)
    whole = weak_reset.weak_reset_set(state, pink, index, held, config=config, seed=3, updates=4, max_write_pulses=255)
    some = torch.tensor([0, 7, 8, 150, 299])
    part = weak_reset.weak_reset_set(state[:, some], pink[:, some], some, held[some], config=config, seed=3, updates=4,
                                     max_write_pulses=255)
    for name, a, b in zip(("state", "pink", "weights", "log_r", "n"), whole, part):
        _first_mismatch(name, a[..., some], b, "slice")


# ------------------------------------------------------------------ the update with cycles on every backend

def test_cycles_off_and_cycle_zero_give_the_same_bits():
    """An array that has never been SET (every cycle 0) computes the same bits with or without cycles."""
    config = HfOxWeakReset()
    t = torch.randint(0, 3000, (2, 257), generator=torch.Generator().manual_seed(2), dtype=torch.int32)
    state = weak_reset.pack_device_state(t, torch.zeros(2, 257, dtype=torch.uint8))
    pink = torch.rand(2, 257, generator=torch.Generator().manual_seed(3)) * 0.1
    n = torch.randint(-14, 15, (257,), generator=torch.Generator().manual_seed(4), dtype=torch.int32)
    off = weak_reset.weak_reset_update(state, pink, n, config=config, seed=5, update=9)
    on = weak_reset.weak_reset_update(state, pink, n, config=config, seed=5, update=9, cycles=True)
    for name, a, b in zip(("state", "pink", "weights", "log_r"), off, on):
        _first_mismatch(name, a, b, "cycles off vs on")


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_update_kernel_reads_the_cycles(fused, config_name):
    """The fused update kernel with CYCLES gives the reference's bits on synapses of many cycles
    (up to MAX_CYCLE), t up to the field's limit, and keeps the cycle field of every word."""
    kernel, device = fused.update, fused.device

    config, numel = CONFIGS[config_name], 203
    state, pink, _ = _worn_state(numel, seed=6, max_cycle=streams.MAX_CYCLE)
    t, s = weak_reset.unpack_device_state(state)
    t[:, :2] = streams.PULSES_MASK - 14  # the largest counts 14 more pulses still fit
    state = weak_reset.pack_device_state(t, s, weak_reset.unpack_cycle(state[0]))
    g = torch.Generator().manual_seed(11)
    for update in (0, 5, 2**31 + 1):
        n = torch.randint(-14, 15, (numel,), generator=g, dtype=torch.int32)
        n[:2] = torch.tensor([14, -14]) if update == 0 else 0  # to the limit once, then no further
        ref = weak_reset.weak_reset_update(state, pink, n, config=config, seed=2**40 + 3, update=update, cycles=True)
        k_state, k_pink = state.to(device), pink.to(device)
        k_weights = torch.empty(numel, dtype=torch.int8, device=device)
        k_log_r = torch.empty(2, numel, device=device)
        kernel.weak_reset_update(k_state, k_pink, n.to(device), k_weights, seed=2**40 + 3, update=update,
                                 log_r=k_log_r, cycles=True, **model_tables.kernel_arguments(config, device))
        for name, a, b in zip(("device_state", "pink", "weights", "log_r"), ref, (k_state, k_pink, k_weights, k_log_r)):
            _first_mismatch(name, a, b.cpu(), f"{config_name} update {update}")
        assert torch.equal(weak_reset.unpack_cycle(ref[0]), weak_reset.unpack_cycle(state))
        state, pink = ref[0], ref[1]
    assert int(weak_reset.unpack_device_state(state)[0].max()) == streams.PULSES_MASK


def test_fused_adam_kernel_reads_the_cycles(fused):
    from rramk.device import weak_reset_adam

    kernel, device = fused.adam, fused.device

    config, numel = HfOxWeakReset(), 150
    state, pink, _ = _worn_state(numel, seed=7, max_cycle=40)
    g = torch.Generator().manual_seed(12)
    grad = torch.randn(numel, generator=g)
    m, v = torch.randn(numel, generator=g) * 0.1, torch.rand(numel, generator=g) * 0.01
    scalars = weak_reset_adam.adam_scalars(3, 20.0, betas=(0.9, 0.999), eps=1e-8, max_pulses=14)
    ref = weak_reset_adam.weak_reset_adam_step(grad, m, v, state, pink, config=config, seed=8, update=6,
                                               scalars=scalars, cycles=True)
    k = [x.clone().to(device) for x in (grad, m, v, state, pink)]
    weights = torch.empty(numel, dtype=torch.int8, device=device)
    kernel.weak_reset_adam_step(*k, weights, seed=8, update=6, scalars=scalars.as_floats(), cycles=True,
                                **model_tables.kernel_arguments(config, device))
    for name, a, b in zip(("m", "v", "device_state", "pink", "weights"), ref[:5], (*k[1:], weights)):
        _first_mismatch(name, a, b.cpu(), "adam with cycles")
    assert (ref[5] != 0).float().mean() > 0.5  # not vacuous: most synapses pulsed
