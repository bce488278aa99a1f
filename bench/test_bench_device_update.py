"""Speed of one device update (DeviceArray.apply_pulses) against the published structure and a copy.

Shapes: weight tensors of the published networks (size set ``cpu``) or 1e6, 1e7, 1e8 synapses
(``gpu``). Pulse counts (the ``/every`` and ``/training`` suffixes of the shape at ``cpu``;
``every`` elsewhere): ``every`` pulses every synapse, |n| uniform in 1..14 with a random sign;
``training`` is like a training step, n = round(N(0, 2.4^2)) clamped to 14 (its statistics:
reports/perf-notes.md, issue 18). Providers: ``rramk-<backend>`` (the API, in place);
``triton-in-place`` (the bare kernel ``rramk.kernels.weak_reset.weak_reset_update`` on one state, in
place, after a bit-for-bit check of its first update against the reference); ``published-structure``
(bench/published_baseline.py on the same device; ``gpu``: 1e6 only); ``torch-copy`` (a
device-to-device copy of the bytes an update must move: the memory ceiling). Derived figures:
synapse-updates per second and, at the ``gpu`` and ``tiny`` sizes, GB/s of the ``UPDATE_BYTES`` per
synapse an update must move, so that the ratio to ``torch-copy`` is the fraction of the copy
bandwidth reached. Every provider of a size runs in one session: ratios compare like with like.
"""

import itertools
import math

import pytest
import torch

from conftest import CONFIG, DEVICE, SIZE, narrower_native_levels, native_level
from published_baseline import PublishedStructureArray
from rramk import DeviceArray
from rramk.device import model_tables, weak_reset

SHAPES = {
    "cpu": {"mnist-784x3000": (3000, 784), "64k": (256, 256)},
    "gpu": {"1e6": (1000, 1000), "1e7": (10_000, 1000), "1e8": (100_000, 1000)},
    "tiny": {"128": (1, 128), "3x100": (3, 100)},  # one program of the interpreted kernel; three, one masked
}[SIZE]
BACKENDS = ["native", "compiled"] if SIZE == "cpu" else ["triton", "reference"]
# the native kernel also at the narrower levels of narrower_native_levels (AVX2 on an AVX-512 CPU)
NATIVE_LEVELS = [None] + (narrower_native_levels() if SIZE == "cpu" else [])
PULSES = ["every", "training"] if SIZE == "cpu" else ["every"]
PUBLISHED_SHAPES = [s for s in SHAPES if SIZE != "gpu" or s == "1e6"]
UPDATE_BYTES = 37  # per synapse: pulses 4 + state and pink 16 read, 16 written + weight 1
KERNEL_ONLY = pytest.mark.skipif(SIZE == "cpu", reason="Triton kernel and copy reference: size sets gpu and tiny")


def _pulses(shape, device, seed=0, kind="every"):
    """Signed pulse counts of ``kind`` (module docstring)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "training":
        n = torch.round(torch.randn(shape, generator=g) * 2.4).clamp(-14, 14)
    else:
        sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1, 1)
        n = torch.randint(1, 15, shape, generator=g) * sign
    return n.to(torch.int32).to(device)


def _label(shape_name, kind):
    return f"{shape_name}/{kind}" if SIZE == "cpu" else shape_name


def _bytes(synapses: int) -> dict:
    """Derived GB/s of an update (not in the records of the cpu size set)."""
    return {} if SIZE == "cpu" else {"gb_per_s": synapses * UPDATE_BYTES / 1e9}


def assert_equals_reference(state, pink, weights, reference: DeviceArray, what: str) -> None:
    """The in-place kernel's state, pink terms and weights equal the reference array's, bit for bit."""
    t, rtn = weak_reset.unpack_device_state(state)
    pairs = {"weights": (weights, reference.weights_int8().reshape(-1)),
             "pulse counts": (t, torch.stack(reference.pulse_counts()).reshape(2, -1)),
             "RTN states": (rtn, torch.stack(reference.rtn_states()).reshape(2, -1)),
             "pink terms": (pink, torch.stack(reference.pink_terms()).reshape(2, -1))}
    for name, (got, expected) in pairs.items():
        differ = got != expected
        if differ.any():
            first = tuple(differ.nonzero()[0].tolist())
            raise AssertionError(f"{what}: {name}: {int(differ.sum())} of {differ.numel()} differ from the reference; "
                                 f"first at {first}: got {got[first].item()}, expected {expected[first].item()}")


def _providers():
    return [(backend, level) for backend in BACKENDS for level in (NATIVE_LEVELS if backend == "native" else [None])]


@pytest.mark.parametrize("kind", PULSES)
@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("backend,level", _providers(), ids=[b + (f"-{lv}" if lv else "") for b, lv in _providers()])
def test_device_update(record, shape_name, backend, level, kind):
    shape = SHAPES[shape_name]
    with native_level(level):
        array = DeviceArray(shape, CONFIG, seed=1, device=DEVICE, backend=backend)
        n = _pulses(shape, DEVICE, kind=kind)
        synapses = array.numel
        record(lambda: array.apply_pulses(n), device=DEVICE,
               derived={"synapse_updates_per_s": synapses, **_bytes(synapses)},
               rounds=None if backend != "reference" or synapses <= 10**7 else 3, warmup=2,
               operation="device update", provider=f"rramk-{backend}" + (f"-{level}" if level else ""),
               shape=_label(shape_name, kind), synapses=synapses, state_bytes_per_synapse=array.state_bytes_per_synapse)


FAMILIES = {"hfox": "HfOxWeakReset", "soft-bounds": "SoftBounds", "bidirectional": "Bidirectional"}
"""The device families (their default presets: the published HfOx fit, ReRAM soft bounds, ECRAM), timed side by side."""


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("shape_name", list(SHAPES)[:1])
def test_device_update_family(record, shape_name, family):
    """Every family's update in one session, on the backend 'auto' picks (``every`` pulses)."""
    from rramk.device.families import FAMILIES as CLASSES

    shape = SHAPES[shape_name]
    array = DeviceArray(shape, CLASSES[FAMILIES[family]](), seed=1, device=DEVICE, backend=BACKENDS[0])
    n = _pulses(shape, DEVICE)
    record(lambda: array.apply_pulses(n), device=DEVICE,
           derived={"synapse_updates_per_s": array.numel, **_bytes(array.numel)}, warmup=2,
           operation="device update by family", provider=f"rramk-{BACKENDS[0]}-{family}", shape=_label(shape_name, "every"),
           synapses=array.numel, state_bytes_per_synapse=array.state_bytes_per_synapse)


@KERNEL_ONLY
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_device_update_in_place(record, shape_name):
    from rramk.kernels import weak_reset as kernel

    shape = SHAPES[shape_name]
    synapses = math.prod(shape)
    pulses = _pulses(shape, DEVICE).reshape(-1)
    state = torch.zeros((2, synapses), dtype=torch.int32, device=DEVICE)  # a fresh DeviceArray's state
    pink = torch.zeros((2, synapses), dtype=torch.float32, device=DEVICE)
    weights = torch.empty(synapses, dtype=torch.int8, device=DEVICE)
    config = CONFIG
    model = model_tables.kernel_arguments(config, DEVICE)
    kernel.weak_reset_update(state, pink, pulses, weights, seed=1, update=0, **model)
    reference = DeviceArray(shape, config, seed=1, device=DEVICE, backend="reference")
    reference.apply_pulses(pulses.reshape(shape))
    assert_equals_reference(state, pink, weights, reference, f"in-place kernel, {shape_name}")
    del reference
    updates = itertools.count(1)
    record(lambda: kernel.weak_reset_update(state, pink, pulses, weights, seed=1, update=next(updates), **model),
           device=DEVICE, derived={"synapse_updates_per_s": synapses, **_bytes(synapses)}, warmup=2,
           operation="device update", provider="triton-in-place", shape=shape_name, synapses=synapses,
           bytes_per_synapse=UPDATE_BYTES)


@KERNEL_ONLY
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_device_update_copy_reference(record, shape_name):
    synapses = math.prod(SHAPES[shape_name])
    nbytes = synapses * UPDATE_BYTES // 2  # read once and written once: the update's bytes
    g = torch.Generator(device=DEVICE).manual_seed(1)
    src = torch.randint(-128, 128, (nbytes,), generator=g, dtype=torch.int8, device=DEVICE)
    dst = torch.full_like(src, 0x7F)
    dst.copy_(src)
    assert torch.equal(dst, src), "torch copy_: the copy differs from its source"
    record(lambda: dst.copy_(src), device=DEVICE, derived={"gb_per_s": 2 * nbytes / 1e9}, warmup=2,
           operation="device update", provider="torch-copy", shape=shape_name, synapses=synapses,
           bytes_moved=2 * nbytes)


@pytest.mark.parametrize("kind", PULSES)
@pytest.mark.parametrize("shape_name", PUBLISHED_SHAPES)
def test_device_update_published_structure(record, shape_name, kind):
    shape = SHAPES[shape_name]
    baseline = PublishedStructureArray(shape, seed=1, device=DEVICE)
    n = _pulses(shape, DEVICE, kind=kind)
    record(lambda: baseline.apply_pulses(n), device=DEVICE,
           derived={"synapse_updates_per_s": baseline.numel, **_bytes(baseline.numel)}, rounds=3,
           operation="device update", provider="published-structure", shape=_label(shape_name, kind),
           synapses=baseline.numel,
           state_bytes_per_synapse=baseline.state_bytes_per_synapse)
