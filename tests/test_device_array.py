"""DeviceArray: input checks, determinism, checkpoints, and the agreement of its backends."""

import io

import pytest
import torch

from rramk import DeviceArray, HfOxWeakReset
from rramk.device import model_tables, weak_reset


def _irregular_pulses(shape, updates: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(updates):
        n = torch.randint(-14, 15, shape, generator=g, dtype=torch.int32)
        n[torch.rand(shape, generator=g) < 0.2] = 0
        if i == 3:
            n.view(-1)[:5] = torch.tensor([300, -1000, 2**15, 1, -1], dtype=torch.int32)  # beyond the optimizer's 14
        out.append(n)
    return out


def _snapshot(array: DeviceArray):
    return (torch.stack(array.pulse_counts()), torch.stack(array.rtn_states()), torch.stack(array.pink_terms()),
            array.weights(), array.log_resistance())


def _assert_same(a, b):
    for name, x, y in zip(("pulses", "rtn", "pink", "weights", "log_r"), a, b):
        assert torch.equal(x, y), f"{name} differs at {(x != y).nonzero()[:3].tolist()}"


@pytest.mark.parametrize(
    "bad,error,match",
    [
        (torch.zeros(3, 4), ValueError, "signed integer tensor.*float32"),
        (torch.zeros(3, 4, dtype=torch.bool), ValueError, "torch.bool"),
        (torch.zeros(4, 3, dtype=torch.int32), ValueError, r"expected shape \(3, 4\)"),
        (torch.zeros(12, dtype=torch.int32), ValueError, r"expected shape \(3, 4\)"),
        (torch.zeros(3, 4, dtype=torch.int32, device="meta"), ValueError, "expected a tensor on cpu"),
        ([[1, 2, 3, 4]] * 3, TypeError, "integer torch.Tensor"),
    ],
    ids=["float", "bool", "transposed", "flat", "other-device", "list"],
)
def test_apply_pulses_refuses_bad_input(bad, error, match):
    array = DeviceArray((3, 4), backend="reference")
    with pytest.raises(error, match=match):
        array.apply_pulses(bad)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(shape=(0, 3)), "shape"),
        (dict(shape=(3,), seed=-1), "seed"),
        (dict(shape=(3,), backend="cuda"), "backend: expected one of"),
        (dict(shape=(3,), config="HfOx"), "config"),
        (dict(shape=(3,), dtype=torch.float16), "dtype"),
        (dict(shape=(3,), backend="compiled", dtype=torch.float64), "dtype"),
    ],
    ids=["empty-shape", "negative-seed", "backend", "config", "dtype", "compiled-float64"],
)
def test_constructor_refuses_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DeviceArray(**kwargs)


def test_same_seed_same_bits_other_seed_other_bits():
    shape = (17, 9)
    arrays = [DeviceArray(shape, seed=s, backend="reference") for s in (5, 5, 6)]
    for n in _irregular_pulses(shape, 6):
        for a in arrays:
            a.apply_pulses(n)
    _assert_same(_snapshot(arrays[0]), _snapshot(arrays[1]))
    assert not torch.equal(arrays[0].log_resistance(), arrays[2].log_resistance())
    assert not torch.equal(arrays[0].weights(), arrays[2].weights())


def test_fresh_array_reads_random_weights_from_r0_and_c1():
    array = DeviceArray((5000,), seed=1, backend="reference")
    p = array.d2d_parameters()
    ln_r = p["ln_r0"] + p["c1"]
    expected = torch.where(ln_r[0] >= ln_r[1], 1.0, -1.0)
    assert torch.equal(array.weights(), expected)
    assert 0.45 < (expected > 0).float().mean().item() < 0.55


def test_weights_are_the_sign_of_the_resistance_difference():
    array = DeviceArray((50, 40), seed=2, backend="reference")
    for n in _irregular_pulses((50, 40), 5):
        array.apply_pulses(n)
    r_bl, r_blb = array.resistance()
    assert torch.equal(array.weights(), torch.where(r_bl >= r_blb, 1.0, -1.0))
    assert set(array.weights().unique().tolist()) == {-1.0, 1.0}


def test_cached_pink_equals_the_regenerated_pink():
    shape = (300,)
    array = DeviceArray(shape, seed=3, backend="reference")
    for n in _irregular_pulses(shape, 8):
        array.apply_pulses(n)
    t = torch.stack(array.pulse_counts())
    constants = model_tables.model_constants(array.config)
    index = torch.arange(300)
    regenerated = weak_reset.pink_term(array.config, constants, array.seed, index, weak_reset.side_index("cpu"), t)
    assert torch.equal(torch.stack(array.pink_terms()), regenerated)


def test_state_dict_round_trip_continues_bit_for_bit(tmp_path):
    shape = (31, 7)
    pulses = _irregular_pulses(shape, 10, seed=4)
    unbroken = DeviceArray(shape, seed=8, backend="reference")
    for n in pulses[:5]:
        unbroken.apply_pulses(n)
    buffer = io.BytesIO()
    torch.save(unbroken.state_dict(), buffer)
    for n in pulses[5:]:
        unbroken.apply_pulses(n)
    buffer.seek(0)
    restored = DeviceArray.from_state_dict(torch.load(buffer), backend="reference")
    assert restored.updates == 5
    for n in pulses[5:]:
        restored.apply_pulses(n)
    _assert_same(_snapshot(unbroken), _snapshot(restored))
    assert unbroken.state_bytes_per_synapse == 16


def test_load_state_dict_refuses_another_array():
    array = DeviceArray((4, 4), seed=1, backend="reference")
    state = array.state_dict()
    with pytest.raises(ValueError, match="seed"):
        DeviceArray((4, 4), seed=2, backend="reference").load_state_dict(state)
    with pytest.raises(ValueError, match="shape"):
        DeviceArray((16,), seed=1, backend="reference").load_state_dict(state)
    with pytest.raises(ValueError, match="differs in d2d"):
        DeviceArray((4, 4), HfOxWeakReset().without("d2d"), seed=1, backend="reference").load_state_dict(state)
    with pytest.raises(ValueError, match="format"):
        array.load_state_dict({"shape": [4, 4]})


def test_float64_reference_agrees_with_float32():
    shape = (200,)
    a32 = DeviceArray(shape, seed=6, backend="reference")
    a64 = DeviceArray(shape, seed=6, backend="reference", dtype=torch.float64)
    for n in _irregular_pulses(shape, 6):
        a32.apply_pulses(n)
        a64.apply_pulses(n)
    assert torch.equal(torch.stack(a32.pulse_counts()), torch.stack(a64.pulse_counts()))
    assert torch.equal(torch.stack(a32.rtn_states()), torch.stack(a64.rtn_states()))
    assert torch.allclose(a32.log_resistance().double(), a64.log_resistance(), atol=5e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("config", [HfOxWeakReset(), HfOxWeakReset().without("d2d", "rtn"),
                                    HfOxWeakReset().without("pink", "saturation")],
                         ids=["all", "no-d2d-rtn", "no-pink-saturation"])
def test_compiled_backend_gives_the_reference_bits(monkeypatch, config):
    """torch.compile of the reference (the fast CPU path), in chunks, over an odd shape; one
    compilation serves every config (the switches are data)."""
    from rramk.device import compiled as compiled_path

    monkeypatch.setattr(compiled_path, "COMPILE_CHUNK", 1000)  # several chunks, one ragged
    shape = (37, 129)
    reference = DeviceArray(shape, config, seed=12, backend="reference")
    compiled = DeviceArray(shape, config, seed=12, backend="compiled")
    _assert_same(_snapshot(reference), _snapshot(compiled))
    for n in _irregular_pulses(shape, 6, seed=9):
        reference.apply_pulses(n)
        compiled.apply_pulses(n)
        _assert_same(_snapshot(reference), _snapshot(compiled))
    m = [torch.zeros(shape), torch.zeros(shape)]
    m_ref = [torch.zeros(shape), torch.zeros(shape)]
    for step in range(1, 4):
        grad = torch.randn(shape, generator=torch.Generator().manual_seed(step))
        reference.adam_step(grad, *m_ref, step=step, lr_pulses=12)
        compiled.adam_step(grad, *m, step=step, lr_pulses=12)
        _assert_same(_snapshot(reference), _snapshot(compiled))
        assert torch.equal(m[0], m_ref[0]) and torch.equal(m[1], m_ref[1])




def _shifted_sum_chunk(flat, state, *, config, seed, first, constants):
    """A cheap stand-in for a compiled chunk function (same calling convention)."""
    return (state + flat + first,)


def test_compiled_path_sets_its_own_variant_limit(monkeypatch):
    """A compiled chunk function needs one variant per input layout (a whole array in one chunk,
    strided chunks, a one-synapse last chunk, ...), and torch counts the variants of all of them
    together: a process that trained MNIST then CIFAR-10's VGG went past torch's default limit
    of 8 and failed. The compiled path must not depend on that limit (here lowered to 1)."""
    from rramk.device import compiled as compiled_path

    monkeypatch.setattr(compiled_path, "COMPILE_CHUNK", 64)
    # torch's config objects need their own patch(): monkeypatch's undo deletes the entry
    with torch._dynamo.config.patch(recompile_limit=1):
        for n in (50, 129, 300):  # one chunk; strided chunks and a one-synapse last chunk
            flat = torch.arange(n, dtype=torch.float32)
            state = torch.arange(2 * n, dtype=torch.float32).reshape(2, n)
            out = torch.empty(2, n)
            compiled_path.run_compiled(_shifted_sum_chunk, HfOxWeakReset(), [out], [flat], [state], seed=1,
                                       constants=None)
            assert torch.equal(out, state + flat + torch.arange(n) // 64 * 64), n
        assert torch._dynamo.config.recompile_limit == 1  # raised only inside the compiled path


def test_saturation_alone_changes_no_weight():
    """Without D2D variability and noise, both devices of a synapse follow one strictly increasing
    ln R(t), so W = sign(ln R(t_BL) - ln R(t_BLb)) = sign(t_BL - t_BLb) for any such curve:
    adding saturation (a second, smaller, positive slope past t*) changes resistances but no
    weight. That is why the ablation's "only saturation" trains exactly like "none"."""
    shape = (40, 50)
    none = DeviceArray(shape, HfOxWeakReset().only(), seed=3, backend="reference")
    saturation = DeviceArray(shape, HfOxWeakReset().only("saturation"), seed=3, backend="reference")
    g = torch.Generator().manual_seed(5)
    for _ in range(120):  # ~10 pulses per device per update: past the mean t* (628) by the end
        magnitude = torch.randint(6, 15, shape, generator=g, dtype=torch.int32)
        sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1, 1).to(torch.int32)
        n = magnitude * sign * (torch.rand(shape, generator=g) < 0.9)  # a few synapses get no pulse
        none.apply_pulses(n)
        saturation.apply_pulses(n)
        assert torch.equal(none.weights(), saturation.weights())
    # not vacuous: saturation did act on the devices past t*, and both weight signs occur
    assert not torch.equal(none.log_resistance(), saturation.log_resistance())
    assert 0.2 < (none.weights() > 0).float().mean() < 0.8


def test_compiled_bits_do_not_depend_on_the_compilers_float_settings():
    """TORCHINDUCTOR_CPP_ENABLE_FLOATING_POINT_CONTRACT_FLAG=fast (or unsafe math) in the environment
    used to make the compiled path differ from the reference (contracted multiply-adds in the pink
    sum); the compiled path pins its own float options."""
    import torch._inductor.config as inductor

    from rramk.device import compiled as compiled_path

    compiled_path.compiled_chunk_function.cache_clear()
    torch._dynamo.reset()
    fast_math = {"cpp.enable_floating_point_contract_flag": "fast", "cpp.enable_unsafe_math_opt_flag": True}
    try:
        with inductor.patch(fast_math):  # torch's own patch: monkeypatch's undo would delete the entries
            shape = (9, 301)
            reference = DeviceArray(shape, seed=31, backend="reference")
            compiled = DeviceArray(shape, seed=31, backend="compiled")
            for n in _irregular_pulses(shape, 3, seed=4):
                reference.apply_pulses(n)
                compiled.apply_pulses(n)
                _assert_same(_snapshot(reference), _snapshot(compiled))
    finally:
        compiled_path.compiled_chunk_function.cache_clear()
        torch._dynamo.reset()


def test_backend_resolution_refuses_what_cannot_give_the_same_bits():
    """auto sends float32 CUDA arrays to the Triton kernel, float32 CPU arrays to the native kernel and
    float64 anywhere to the reference (the kernels and the compiled path compute in float32);
    'compiled' and 'native' are CPU paths and are refused on CUDA."""
    from rramk.device.backends import resolve_backend

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_backend("auto", cuda, torch.float64, 10**6) == "reference"
    assert resolve_backend("auto", cpu, torch.float64, 10**6) == "reference"
    assert resolve_backend("auto", cpu, torch.float32, 10**6) == "native"  # gcc is here: the C kernels build
    assert resolve_backend("auto", cpu, torch.float32, 10) == "native"
    with pytest.raises(ValueError, match="backend: 'compiled' is the CPU path"):
        resolve_backend("compiled", cuda, torch.float32, 10)
    with pytest.raises(ValueError, match="backend: 'native' is the CPU path"):
        resolve_backend("native", cuda, torch.float32, 10)
    with pytest.raises(ValueError, match="dtype: the 'native' backend computes in float32"):
        resolve_backend("native", cpu, torch.float64, 10)
    with pytest.raises(ValueError, match="dtype: the 'triton' backend computes in float32"):
        resolve_backend("triton", cuda, torch.float64, 10)
    with pytest.raises(ValueError, match="backend: expected one of auto, reference, compiled, native, triton"):
        resolve_backend("cuda", cpu, torch.float32, 10)


def test_auto_falls_back_to_the_compiled_path_without_a_c_compiler(monkeypatch, tmp_path):
    """Where the native kernel cannot be built (no C compiler named by CC), 'auto' takes torch.compile's
    path (large arrays, where torch finds its C++ compiler) or the reference, and asking for 'native' says
    what to do (no compiler at all: tests/test_portability.py)."""
    from rramk.device.backends import resolve_backend
    from rramk.kernels import native

    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("RRAMK_CACHE_DIR", str(tmp_path))  # nothing built there yet
    native.library.cache_clear()
    native.available.cache_clear()
    try:
        cpu = torch.device("cpu")
        assert resolve_backend("auto", cpu, torch.float32, 10**6) == "compiled"
        assert resolve_backend("auto", cpu, torch.float32, 10) == "reference"
        with pytest.raises(RuntimeError, match="set CC; or use backend='reference'"):
            resolve_backend("native", cpu, torch.float32, 10)
    finally:
        native.library.cache_clear()
        native.available.cache_clear()
