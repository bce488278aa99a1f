"""DeviceArray.refresh: which synapses are SET and their bits, retries, resuming, the native kernel's refresh
condition, and every backend agreeing with the reference (helpers from tests/test_refresh.py)."""

import pytest
import torch

import rramk

from rramk import HfOxWeakReset
from rramk.device import streams, model_tables, weak_reset
from tests.test_refresh import CONFIGS, _first_mismatch
from tests.test_train import _one_thread_no_network  # noqa: F401  (autouse: one thread, no downloads)


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


def _worn_array(seed=5):
    array = rramk.DeviceArray((4000,), rramk.HfOxWeakReset(), seed=seed, backend="reference")
    for n in _wear((4000,), 10, seed):
        array.apply_pulses(n)
    return array


def test_noisy_verify_stops_at_the_first_read_that_says_the_weight():
    """read_noise > 0: n is the first k at which mean ln R plus the verify stream's noise reads the held weight,
    recomputed here read by read from the Philox words; read_noise 0 is the noise-free bisection bit for bit."""
    from rramk.device import streams, weak_reset
    from rramk.device.model_tables import model_constants
    from rramk.device.philox import philox4x32, uniform_from_bits

    cfg = rramk.HfOxWeakReset()
    constants = model_constants(cfg, torch.device("cpu"), torch.float32)
    index = torch.arange(64, dtype=torch.int64)
    held = torch.where(index % 3 == 0, -1, 1).to(torch.int8)
    words, cycle = weak_reset.d2d_words(0, index), torch.ones(64, dtype=torch.int64)
    fresh = weak_reset.d2d_words(0, index, cycle)
    p = [weak_reset.d2d_parameters(cfg, constants, words, s, fresh) for s in (0, 1)]
    hi = {k: torch.where(held >= 0, p[0][k], p[1][k]) for k in p[0]}
    lo = {k: torch.where(held >= 0, p[1][k], p[0][k]) for k in p[0]}
    n = weak_reset.noisy_write_pulses(held, hi, lo, 300, 0.02, 0, index, cycle)
    zero = torch.zeros(64, dtype=torch.int64)
    target = lo["ln_r0"] + weak_reset.mean_log_resistance(zero, lo["m1"], lo["t_star"], lo["c1"], lo["m2"])
    for i in range(64):
        for k in range(301):
            w = philox4x32(0, index[i:i + 1], streams.counter_stream(streams.STREAM_VERIFY), cycle[i:i + 1], k)
            u = [float(uniform_from_bits(x, torch.float32)) for x in w]
            mean = float(hi["ln_r0"][i] + weak_reset.mean_log_resistance(
                torch.tensor([k]), hi["m1"][i:i + 1], hi["t_star"][i:i + 1], hi["c1"][i:i + 1], hi["m2"][i:i + 1]))
            a = mean + 0.02 * 6 ** 0.5 * (u[0] + u[1] - 1)
            b = float(target[i]) + 0.02 * 6 ** 0.5 * (u[2] + u[3] - 1)
            if (a >= b) if held[i] >= 0 else (a > b):
                break
        assert int(n[i]) == k, i
    exact = weak_reset.write_pulses_needed(held, hi, lo, 300)
    assert (n != exact).any() and (n <= 300).all()


def test_noisy_verify_fails_rewrites_that_the_noise_free_verify_keeps():
    """The same worn array refreshed with exact verify reads and with noisy ones (read noise 0.05 of ln R, the
    spread of R0 across devices): re-writes that stop early fail, beyond those that fail without noise (a
    device too flat to pass its partner within max_write_pulses); retries SET those again and fail fewer;
    read_noise 0 gives the bits of no read_noise at all."""
    exact, zero, noisy, retried = _worn_array(), _worn_array(), _worn_array(), _worn_array()
    assert exact.refresh("past_t_star") > 1000
    zero.refresh("past_t_star", read_noise=0.0)
    assert torch.equal(zero.weights_int8(), exact.weights_int8()) and torch.equal(zero._state, exact._state)
    noisy.refresh("past_t_star", read_noise=0.05)
    retried.refresh("past_t_star", read_noise=0.05, retries=3)
    assert noisy.failed_rewrites > 2 * exact.failed_rewrites, (noisy.failed_rewrites, exact.failed_rewrites)
    assert retried.failed_rewrites < noisy.failed_rewrites
    with pytest.raises(ValueError, match="read_noise"):
        exact.refresh("past_t_star", read_noise=-0.1)


def test_a_verify_margin_pays_for_the_read_noise():
    """A re-write that must pass its partner by 3 sd of the read noise fails about as rarely as an exact verify
    (the noise rarely crosses 3 sd twice over); with the exact verify a margin adds pulses: the mean at the n
    found passes target + margin, at n - 1 it does not (bisection against the closed comparison)."""
    exact, noisy, guarded = _worn_array(), _worn_array(), _worn_array()
    exact.refresh("past_t_star")
    noisy.refresh("past_t_star", read_noise=0.02)
    guarded.refresh("past_t_star", read_noise=0.02, verify_margin=0.06)
    assert guarded.failed_rewrites <= exact.failed_rewrites + 5 < noisy.failed_rewrites
    from rramk.device import weak_reset

    held = torch.ones(50, dtype=torch.int8)
    lo = {"ln_r0": torch.full((50,), 8.85), "m1": torch.full((50,), 7e-4), "t_star": torch.full((50,), 600.0),
          "c1": torch.zeros(50), "m2": torch.full((50,), 3e-5)}
    hi = {**lo, "ln_r0": torch.linspace(8.70, 8.85, 50)}
    plain, margined = (weak_reset.write_pulses_needed(held, hi, lo, 1023, m) for m in (0.0, 0.03))
    assert (margined >= plain).all() and (margined > plain).any()
    mean = lambda n: hi["ln_r0"] + weak_reset.mean_log_resistance(n, hi["m1"], hi["t_star"], hi["c1"], hi["m2"])  # noqa: E731
    target = lo["ln_r0"] + 0.03
    assert (mean(margined) >= target).all() and (mean((margined - 1).clamp(min=0)) < target).all()
    with pytest.raises(ValueError, match="verify_margin"):
        exact.refresh("past_t_star", verify_margin=-1.0)
