"""Refresh: the SET of a synapse pair (a new cycle) and its re-written weight, the cycle-aware update
on every backend, the optimizer's refresh policy and its endurance counts."""

import pytest
import torch

from rramk import HfOxWeakReset
from rramk.device import streams, model_tables, weak_reset
from rramk.device.philox import philox4x32

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


# ------------------------------------------------------------------ DeviceArray.refresh

def _wear(shape, updates, seed, scale=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(-14, 15, shape, generator=g, dtype=torch.int32) * scale for _ in range(updates)]


def _due_by_hand(array, condition="past_t_star", margin=0.0, limit=0):
    t = torch.stack(array.pulse_counts()).float()
    if condition == "pulses":
        return (t >= limit).any(0)
    t_star = array.d2d_parameters()["t_star"]
    if condition == "past_t_star":
        return (t >= t_star).any(0)
    return (t >= (1.0 - margin) * t_star).all(0)


@pytest.mark.parametrize("condition,options", [("past_t_star", {}), ("window", {"margin": 0.1}),
                                               ("pulses", {"limit": 200})])
def test_refresh_sets_exactly_the_synapses_due_and_leaves_the_others_bit_for_bit(condition, options):
    """An array refreshed after every update against the same array never refreshed: the synapses
    never due keep every bit (state words, pink terms, weights, ln R); the ones due start a new cycle
    with their weight re-written; SETs and RESET pulses equal an independent count."""
    from rramk import DeviceArray

    shape = (23, 17)
    refreshed = DeviceArray(shape, seed=41, backend="reference")
    plain = DeviceArray(shape, seed=41, backend="reference")
    ever = torch.zeros(shape, dtype=torch.bool)
    sets, pulses, total_due = torch.zeros((2,) + shape, dtype=torch.int32), 0, 0
    for i, n in enumerate(_wear(shape, 10, seed=4)):
        refreshed.apply_pulses(n)
        plain.apply_pulses(n)
        pulses += int(n.abs().sum())
        due = _due_by_hand(refreshed, condition, **options)
        held = refreshed.weights()
        cycles_before = torch.stack(refreshed.set_counts())
        assert refreshed.refresh(condition, **options) == int(due.sum())
        total_due += int(due.sum())
        ever |= due
        sets += due.to(torch.int32)
        assert torch.equal(torch.stack(refreshed.set_counts()), cycles_before + due.to(torch.int32))
        t = torch.stack(refreshed.pulse_counts())
        pulses += int(t[:, due].sum())  # the re-write pulses (t of the pair right after the SET)
        read = refreshed.weights()
        assert torch.equal(read[~due], held[~due])
        ok = (read == held) | (t.max(0).values == 1023)  # re-written, unless the bound of write pulses was reached
        assert bool(ok[due].all())
        keep = (~ever).reshape(-1)
        for name in ("_state", "_pink"):
            _first_mismatch(name, getattr(refreshed, name)[:, keep], getattr(plain, name)[:, keep], f"update {i}")
        _first_mismatch("weights", refreshed.weights_int8()[keep], plain.weights_int8()[keep], f"update {i}")
        _first_mismatch("log_r", refreshed.log_resistance().reshape(2, -1)[:, keep],
                        plain.log_resistance().reshape(2, -1)[:, keep], f"update {i}")
    assert 0 < ever.float().mean() < 1 and total_due > ever.sum()  # not vacuous: some synapses SET twice or more
    assert torch.equal(torch.stack(refreshed.set_counts()), sets.expand(2, *shape))
    assert refreshed.reset_pulses() == pulses
    assert plain.reset_pulses() == sum(int(n.abs().sum()) for n in _wear(shape, 10, seed=4))


def test_retries_set_again_only_the_failed_rewrites():
    """refresh(retries=k): the first attempt is refresh(retries=0)'s, bit for bit; a synapse SET again is one
    whose re-write failed, each retry one more cycle, at most k; it stops at the first re-write that reads
    its weight; failed_rewrites counts those still wrong after k retries (a subset of the failures without
    retries), retried_rewrites the retries; the synapses not due keep every bit."""
    import copy

    from rramk import DeviceArray

    shape = (40, 25)
    base = DeviceArray(shape, seed=17, backend="reference")
    for n in _wear(shape, 6, seed=9, scale=30):
        base.apply_pulses(n)
    once, retried = copy.deepcopy(base), copy.deepcopy(base)
    due = _due_by_hand(base)
    held = base.weights()
    cycles = torch.stack(base.set_counts())
    assert once.refresh(max_write_pulses=3) == retried.refresh(max_write_pulses=3, retries=2) == int(due.sum())
    failed_once = once.weights() != held
    assert int(failed_once.sum()) == once.failed_rewrites > 20  # not vacuous: 3 write pulses often fail
    extra = (torch.stack(retried.set_counts()) - cycles)[0]  # SETs each synapse had in this refresh
    assert torch.equal(extra[~due], torch.zeros_like(extra[~due]))
    assert torch.equal(extra[due] >= 2, failed_once[due])  # retried exactly where the first attempt failed
    assert int(extra.max()) == 3 and retried.retried_rewrites == int((extra[due] - 1).sum())
    wrong = retried.weights() != held
    assert bool((~wrong[due & (extra < 3)]).all())  # a retry stops at the first re-write that reads the weight
    assert retried.failed_rewrites == int(wrong.sum()) < once.failed_rewrites
    assert bool((wrong <= failed_once).all())  # still wrong after retries: wrong after the first attempt too
    first = due & ~failed_once  # one SET only: the same bits as without retries
    keep = (first | ~due).reshape(-1)
    for name in ("_state", "_pink"):
        _first_mismatch(name, getattr(retried, name)[:, keep], getattr(once, name)[:, keep], "retries")
    restored = DeviceArray.from_state_dict(retried.state_dict(), backend="reference")
    assert restored.retried_rewrites == retried.retried_rewrites and restored.failed_rewrites == retried.failed_rewrites
    with pytest.raises(ValueError, match="retries: expected an integer >= 0"):
        retried.refresh(retries=-1)


def test_refreshed_array_resumes_bit_for_bit_and_every_backend_agrees(fused):
    """A refreshed array's state_dict continues bit for bit; the fused kernel (and the kernels' cycle
    counters) give the reference's bits through updates, refreshes (past_t_star, then pulses) and Adam steps."""
    from rramk import DeviceArray

    shape = (37, 5)
    arrays = {"reference": DeviceArray(shape, seed=2**33 + 7, backend="reference"),
              "triton": DeviceArray(shape, seed=2**33 + 7, device=fused.device, backend=fused.backend)}
    moments = {name: (torch.zeros(shape, device=a.device), torch.zeros(shape, device=a.device))
               for name, a in arrays.items()}
    g = torch.Generator().manual_seed(3)
    saved = None
    for i, n in enumerate(_wear(shape, 8, seed=6)):
        grad = torch.randn(shape, generator=g)
        for name, a in arrays.items():
            a.apply_pulses(n.to(a.device))
            a.refresh("past_t_star", max_write_pulses=300)
            a.refresh("pulses", limit=250, max_write_pulses=300)  # the counters' condition, on the state as it is
            a.adam_step(grad.to(a.device), *moments[name], step=i + 1, lr_pulses=30.0)
        if i == 4:
            saved = arrays["reference"].state_dict()
            resumed = DeviceArray.from_state_dict(saved, backend="reference")
            resumed_moments = tuple(m.clone() for m in moments["reference"])
        if i > 4:
            resumed.apply_pulses(n)
            resumed.refresh("past_t_star", max_write_pulses=300)
            resumed.refresh("pulses", limit=250, max_write_pulses=300)
            resumed.adam_step(grad, *resumed_moments, step=i + 1, lr_pulses=30.0)
        for name in ("_state", "_pink", "_weights"):
            _first_mismatch(name, getattr(arrays["reference"], name), getattr(arrays["triton"], name).cpu(),
                            f"triton after update {i}")
            if i > 4:
                _first_mismatch(name, getattr(arrays["reference"], name), getattr(resumed, name), f"resumed {i}")
    assert saved is not None and "cycles" in saved and int(saved["cycles"].max()) >= 1
    assert torch.stack(arrays["reference"].set_counts()).max() >= 2  # not vacuous


@pytest.mark.parametrize("first", [0, 2**31 + 5])
@pytest.mark.parametrize("config_name,table", [("all", "fitted"), ("only-saturation", "fitted"),
                                               ("all", "even t_star")])
def test_native_due_kernel_equals_the_reference_at_the_thresholds(config_name, table, first):
    """The native kernel's refresh condition against rramk.device.refresh.refresh_due, both
    conditions and margins whose 1 - margin is not a float32 (0.05, 0.3), on devices placed one
    pulse below, at and above keep * t_star on each side (either side alone, both, neither), with
    SET cycles and RTN bits in the words (t_star is the cycle-0 one), at a Philox counter past 2**31.
    "even t_star": a table of even integer t_star, so that t lands exactly on keep * t_star (margins 0
    and 0.5): t >= is not t >."""
    from rramk.device import refresh
    from rramk.kernels import native

    config, seed, numel = CONFIGS[config_name], 2**40 + 9, 3000
    constants = model_tables.model_constants(config, torch.device("cpu"))
    arguments = model_tables.kernel_arguments(config, torch.device("cpu"))
    margins = [("past_t_star", 0.0), ("window", 0.0), ("window", 0.05), ("window", 0.3)]
    if table == "even t_star":
        d2d_table = constants.d2d_table.clone()
        row = streams.D2D_TABLE_ROWS.index("t_star")
        d2d_table[row] = (d2d_table[row] / 2).round() * 2
        constants, arguments["d2d_table"] = constants._replace(d2d_table=d2d_table), d2d_table.contiguous()
        margins = [("past_t_star", 0.0), ("window", 0.0), ("window", 0.5)]
    index = weak_reset.synapse_index(first, numel, torch.device("cpu"))
    t_star = weak_reset.d2d_parameters(config, constants, weak_reset.d2d_words(seed, index),
                                       weak_reset.side_index(torch.device("cpu")))["t_star"]
    g = torch.Generator().manual_seed(first % 1000)
    for condition, margin in margins:
        limit = ((1.0 - margin) * t_star).ceil().to(torch.int32)  # the first t that counts as used up
        t = (limit + torch.randint(-1, 2, (2, numel), generator=g, dtype=torch.int32)).clamp(min=0)
        s = torch.randint(0, 2, (2, numel), generator=g, dtype=torch.uint8)
        k = torch.randint(0, 5, (numel,), generator=g, dtype=torch.int32)
        state = weak_reset.pack_device_state(t, s, k)
        expected = refresh.refresh_due(state, config=config, seed=seed, condition=condition, margin=margin,
                                       first=first, constants=constants)
        due = torch.empty(numel, dtype=torch.bool)
        native.refresh_due(state, due, seed=seed, condition=condition, margin=margin, first=first,
                           **arguments)
        _first_mismatch(f"due ({condition}, margin {margin})", due, expected, config_name)
        used = t >= (1.0 - margin) * t_star
        for case in (used[0] & ~used[1], ~used[0] & used[1], used.all(0), ~used.any(0)):
            assert int(case.sum()) > 100  # not vacuous: every combination of the two sides is there
        if table == "even t_star":
            assert int((t == (1.0 - margin) * t_star).sum()) > 500  # not vacuous: ties on the threshold


def test_native_due_kernel_refuses_bad_input_naming_the_argument():
    from rramk.kernels import native

    model = model_tables.kernel_arguments(HfOxWeakReset(), torch.device("cpu"))
    state, due = torch.zeros(2, 8, dtype=torch.int32), torch.empty(8, dtype=torch.bool)
    good = dict(seed=1, condition="past_t_star", margin=0.0, **model)
    for args, kwargs, match in [((torch.zeros(8, 2, dtype=torch.int32).T, due), good, "device_state: expected a contiguous"),
                                ((state.float(), due), good, "device_state: expected an int32"),
                                ((state, due.to(torch.uint8)), good, "due: expected a torch.bool"),
                                ((state, torch.empty(7, dtype=torch.bool)), good, r"due: expected shape \(8,\)"),
                                ((state, due), {**good, "condition": "soon"}, "condition: expected"),
                                ((state, due), {**good, "margin": 1.0}, "margin: expected"),
                                ((state, due), {**good, "first": 2**32 - 4}, "first: expected")]:
        with pytest.raises(ValueError, match=match):
            native.refresh_due(*args, **kwargs)
    native.refresh_due(state, due, **good)  # the good call passes: no device is used up at t = 0
    assert not due.any()


@pytest.mark.parametrize("backend", ["compiled", "native"])
def test_compiled_backend_refreshes_with_the_reference_bits(backend):
    from rramk import DeviceArray

    shape = (64, 70)  # above COMPILE_THRESHOLD: 'auto' would pick the compiled path too
    arrays = {name: DeviceArray(shape, seed=5, backend=name) for name in ("reference", backend)}
    arrays["compiled"] = arrays.pop(backend)
    for i, n in enumerate(_wear(shape, 6, seed=8)):
        for a in arrays.values():
            a.apply_pulses(n)
            a.refresh("window", margin=0.05)
        for name in ("_state", "_pink", "_weights"):
            _first_mismatch(name, getattr(arrays["reference"], name), getattr(arrays["compiled"], name),
                            f"compiled after update {i}")
    _first_mismatch("log_r", arrays["reference"].log_resistance(), arrays["compiled"].log_resistance(), "read")
    assert torch.stack(arrays["reference"].set_counts()).max() >= 1


def test_pulse_and_cycle_limits_are_refused_clearly():
    from rramk import DeviceArray

    array = DeviceArray((3,), seed=1, backend="reference")
    array.apply_pulses(torch.tensor([streams.PULSES_MASK, 0, -5], dtype=torch.int32))
    with pytest.raises(OverflowError, match="refresh the array"):
        array.apply_pulses(torch.tensor([1, 0, 0], dtype=torch.int32))
    assert array.refresh("past_t_star") == 1  # the device at 2**20 - 1 pulses, far past its t*
    array.apply_pulses(torch.tensor([14, 0, 0], dtype=torch.int32))  # after its SET it takes pulses again
    state = array.state_dict()
    state["cycles"][0] = streams.MAX_CYCLE
    state["pulses_done"][0, 0] = 5000
    full = DeviceArray.from_state_dict(state, backend="reference")
    with pytest.raises(OverflowError, match="2047 SETs"):
        full.refresh("past_t_star")
    with pytest.raises(ValueError, match="condition"):
        full.refresh("never")


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
    counted = Refresh.parse("pulses:limit=542,every=2")
    assert counted == Refresh("pulses", limit=542, every=2) and str(counted) == "pulses:limit=542,every=2"
    for bad, match in (("past_t_star:retries=-1", "retries: expected an integer >= 0"), ("pulses", "expected limit=N"), ("pulses:limit=0", "expected limit=N"),
                       ("window:limit=5", "'pulses' condition only"), ("pulses:limit=x", "limit: expected an integer"),
                       ("sometimes", "unknown condition"), ("window:margin", "key=value"),
                       ("window:every=x", "every: expected an integer"), ("past_t_star:margin=0.1", "window"),
                       ("window:every=0", "every"), ("window:margin=1", "fraction"),
                       ("window:max_write_pulses=-1", "max_write_pulses")):
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


from tests.test_train import TINY, _one_thread_no_network, needs_mnist, run  # noqa: E402,F401


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
