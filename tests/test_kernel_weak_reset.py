"""The fused device-update kernels (Triton, and the native C ones) against the PyTorch reference, bit for
bit (the fused optimizer step: tests/test_kernel_weak_reset_adam.py).

Triton's run under TRITON_INTERPRET=1 on a CPU (small shapes) and compiled on a GPU (the `device`
fixture); the native ones on the CPU; the `fused` fixture (conftest.py) runs a test on both, with
the same assertions.
"""

import pytest
import torch

from rramk import DeviceArray, HfOxWeakReset
from rramk.studies.configs import ABLATIONS
from rramk.device import model_tables, weak_reset

# the full model, each imperfection off alone, and the noise-free mean device with its two slopes
CONFIGS = {ABLATIONS[label].slug: ABLATIONS[label].device()
           for label in ("all", "all but d2d", "all but pink", "all but rtn", "all but saturation", "only saturation")}
CONFIGS["all-pair0.4"] = HfOxWeakReset().scaled(d2d_pair=0.4)  # BLb's draws coupled to BL's (the d2d_pair knob)
SHAPES = {"1": (1,), "37": (37,), "3x37x5": (3, 37, 5), "130x3": (130, 3)}


def _pulse_sequence(shape, updates, seed=0):
    g = torch.Generator().manual_seed(seed)
    for i in range(updates):
        n = torch.randint(-14, 15, shape, generator=g, dtype=torch.int32)
        n[torch.rand(shape, generator=g) < 0.25] = 0
        if i == 1:
            n.view(-1)[: min(3, n.numel())] = torch.tensor([9000, -20, 14], dtype=torch.int32)[: min(3, n.numel())]
        yield n


def _assert_same_state(reference: DeviceArray, kernel: DeviceArray, where: str):
    for name in ("_state", "_pink", "_weights"):
        a, b = getattr(reference, name), getattr(kernel, name).cpu()
        if not torch.equal(a, b):
            bad = (a != b).nonzero()[0].tolist()
            raise AssertionError(f"{where}: {name} differs first at index {bad}: {a[tuple(bad)]} vs {b[tuple(bad)]}")


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("shape_name", ["37", "3x37x5"])
def test_update_kernel_matches_reference(fused, config_name, shape_name):
    config, shape, device = CONFIGS[config_name], SHAPES[shape_name], fused.device
    reference = DeviceArray(shape, config, seed=21, backend="reference")
    kernel = DeviceArray(shape, config, seed=21, device=device, backend=fused.backend)
    _assert_same_state(reference, kernel, "fresh")
    for i, n in enumerate(_pulse_sequence(shape, 4, seed=3)):
        reference.apply_pulses(n)
        kernel.apply_pulses(n.to(device))
        _assert_same_state(reference, kernel, f"{config_name} {shape_name} after update {i}")
        # ln R as the backend reads it (the native kernel's own read; Triton's reads are the reference's)
        assert torch.equal(reference.log_resistance(), kernel.log_resistance().cpu()), f"log_r after update {i}"


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_update_kernel_odd_shapes_and_large_seed(fused, shape_name):
    shape, device = SHAPES[shape_name], fused.device
    reference = DeviceArray(shape, seed=2**62 + 12345, backend="reference")
    kernel = DeviceArray(shape, seed=2**62 + 12345, device=device, backend=fused.backend)
    for n in _pulse_sequence(shape, 3, seed=5):
        reference.apply_pulses(n)
        kernel.apply_pulses(n.to(device))
    _assert_same_state(reference, kernel, shape_name)


def test_launchers_refuse_bad_input(fused):
    kernel, device = fused.update, fused.device
    cfg = HfOxWeakReset()
    state = torch.zeros(2, 8, dtype=torch.int32, device=device)
    pink = torch.zeros(2, 8, device=device)
    pulses = torch.zeros(8, dtype=torch.int32, device=device)
    weights = torch.zeros(8, dtype=torch.int8, device=device)
    cases = [
        (dict(device_state=state.float()), "device_state: expected an int32"),
        (dict(pink=pink.double()), "pink: expected a float32"),
        (dict(pulses=pulses.long()), "pulses: expected a torch.int32"),
        (dict(pulses=pulses[:7]), r"pulses: expected shape \(8,\)"),
        (dict(weights=torch.zeros(16, dtype=torch.int8, device=device)[::2]), "weights: expected a contiguous"),
        (dict(pink=torch.zeros(8, 2, device=device).t()), "pink: expected a contiguous"),
    ]
    for change, match in cases:
        args = dict(device_state=state, pink=pink, pulses=pulses, weights=weights) | change
        with pytest.raises(ValueError, match=match):
            kernel.weak_reset_update(args["device_state"], args["pink"], args["pulses"], args["weights"],
                                     seed=0, update=0, **model_tables.kernel_arguments(cfg, device))


def test_kernel_on_cpu_without_interpreter_explains(monkeypatch):
    from rramk.kernels import _launch

    monkeypatch.setattr(_launch, "runs_interpreted", lambda kernel: False)
    with pytest.raises(RuntimeError, match="backend='reference'.*TRITON_INTERPRET=1"):
        DeviceArray((4,), backend="triton")
    with pytest.raises(RuntimeError, match="device_state: a Triton kernel needs a CUDA tensor"):
        from rramk.kernels import weak_reset as kernel

        kernel.weak_reset_update(torch.zeros(2, 4, dtype=torch.int32), torch.zeros(2, 4),
                                 torch.zeros(4, dtype=torch.int32), torch.zeros(4, dtype=torch.int8),
                                 seed=0, update=0, **model_tables.kernel_arguments(HfOxWeakReset(), "cpu"))


def _first_mismatch(name: str, a: torch.Tensor, b: torch.Tensor, where: str) -> None:
    if not torch.equal(a, b):
        bad = (a != b).nonzero()[0].tolist()
        raise AssertionError(f"{where}: {name} differs first at index {bad}: {a[tuple(bad)]} vs {b[tuple(bad)]}")


def _deep_state(numel: int, seed: int):
    """Packed states with t spread over [0, 4000] on both devices (most past their t*, which lies in
    [41, 2000]), random RTN states and pink terms: the saturated regime the kernel must get right."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 4000, (2, numel), generator=g, dtype=torch.int32)
    t[:, :4] = torch.tensor([[0, 2000, 41, 3999], [2000, 0, 40, 3998]], dtype=torch.int32)
    s = torch.randint(0, 2, (2, numel), generator=g, dtype=torch.uint8)
    return weak_reset.pack_device_state(t, s), torch.rand(2, numel, generator=g) * 0.1


@pytest.mark.parametrize("config_name", ["all", "all-but-d2d", "all-but-pink", "all-but-saturation", "only-saturation",
                                         "all-pair0.4"])
def test_update_kernel_past_t_star_both_devices(fused, config_name):
    """ln R (the kernel's own, not read back through the reference) of devices deep in saturation,
    pulsed on both sides, at an update index past 2**31 (counter words of both signs)."""
    kernel, device = fused.update, fused.device
    config, numel = CONFIGS[config_name], 301
    state, pink = _deep_state(numel, seed=4)
    g = torch.Generator().manual_seed(9)
    past = 0
    for update in (0, 7, 2**31 + 5, 2**32 + 11):
        n = torch.randint(-14, 15, (numel,), generator=g, dtype=torch.int32)
        ref_state, ref_pink, ref_weights, ref_log_r = weak_reset.weak_reset_update(
            state, pink, n, config=config, seed=77, update=update)
        k_state, k_pink = state.to(device), pink.to(device)
        k_weights = torch.empty(numel, dtype=torch.int8, device=device)
        k_log_r = torch.empty(2, numel, device=device)
        kernel.weak_reset_update(k_state, k_pink, n.to(device), k_weights, seed=77, update=update, log_r=k_log_r,
                                 **model_tables.kernel_arguments(config, device))
        where = f"{config_name} update {update}"
        for name, a, b in (("device_state", ref_state, k_state), ("pink", ref_pink, k_pink),
                           ("weights", ref_weights, k_weights), ("log_r", ref_log_r, k_log_r)):
            _first_mismatch(name, a, b.cpu(), where)
        t = weak_reset.unpack_device_state(ref_state)[0]
        index = torch.arange(numel, dtype=torch.int64)
        constants = model_tables.model_constants(config)
        t_star = weak_reset.d2d_parameters(config, constants, weak_reset.d2d_words(77, index),
                                           weak_reset.side_index("cpu"))["t_star"]
        past += int((t >= t_star).sum())
        state, pink = ref_state, ref_pink
    assert past > numel  # not vacuous: most devices of both sides are past their t*


def test_update_index_words_type_as_int32():
    """Launch arguments of every update index are int32 words (an index >= 2**31 used to be typed i64,
    which tl.philox refuses when compiling for a GPU), and they carry the index's bits."""
    from triton.runtime.jit import mangle_type

    from rramk.kernels.weak_reset_args import counter_words

    for update in (0, 1, 16, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40 + 2**31 + 3, 2**63 - 1):
        lo, hi = counter_words(update)
        assert mangle_type(lo) == "i32" and mangle_type(hi) == "i32", update
        assert (lo & 0xFFFFFFFF) | (hi << 32) == update
    with pytest.raises(ValueError, match="update: expected an integer in"):
        counter_words(-1)


def _cpu_has_fma() -> bool:
    try:
        return " fma " in open("/proc/cpuinfo").read().replace("\n", " ")
    except OSError:
        return False


@pytest.mark.skipif(not _cpu_has_fma(), reason="without FMA instructions contraction cannot change the bits")
def test_native_kernel_bits_need_its_pinned_float_flags(monkeypatch, tmp_path):
    """Built with -ffp-contract=fast (multiply-adds fused) the native kernel's pink terms and ln R differ
    from the reference: the flag its build pins matters, and the kernel tests above would see it go."""
    from rramk.kernels import native

    monkeypatch.setattr(native, "FLAGS", [f if f != "-ffp-contract=off" else "-ffp-contract=fast" for f in native.FLAGS])
    monkeypatch.setenv("RRAMK_CACHE_DIR", str(tmp_path))
    native.library.cache_clear()
    try:
        config, numel = HfOxWeakReset(), 2000
        state, pink = _deep_state(numel, seed=5)
        n = torch.randint(-14, 15, (numel,), generator=torch.Generator().manual_seed(6), dtype=torch.int32)
        _, ref_pink, _, ref_log_r = weak_reset.weak_reset_update(state, pink, n, config=config, seed=7, update=3)
        log_r, weights = torch.empty(2, numel), torch.empty(numel, dtype=torch.int8)
        native.weak_reset_update(state, pink, n, weights, seed=7, update=3, log_r=log_r,
                                 **model_tables.kernel_arguments(config, "cpu"))
        assert not torch.equal(pink, ref_pink) or not torch.equal(log_r, ref_log_r)
    finally:
        native.library.cache_clear()
