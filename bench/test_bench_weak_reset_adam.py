"""The fused optimizer step (gradient -> Adam -> pulses -> device update in one pass) against the
unfused composition (Adam moments and pulse counts by separate torch operations, then an update).

Providers: ``fused-<backend>`` (``DeviceArray.adam_step``, in place), ``unfused-<backend>``,
``published-structure`` (the same Adam arithmetic in torch operations, then the pulses applied by
bench/published_baseline.py, as the published code steps its devices), and at the ``gpu`` and
``tiny`` sizes ``triton-in-place`` (``rramk.kernels.weak_reset_adam.weak_reset_adam_step``, the bare
kernel, on one state and its moments, in place, after a bit-for-bit check of its first step against
the reference). Derived figures: synapse-updates per second; at the ``gpu`` and ``tiny`` sizes also
GB/s of the ``FUSED_BYTES`` per synapse the fused step must move (compare with ``torch-copy`` of
test_bench_device_update.py) and, on CUDA, the memory a step needs: the peak of allocated CUDA
memory during one step over the synapses (state, moments, gradient, weights and the step's copies)
and how many synapses fit in this GPU's memory at that rate.
"""

import gc
import itertools

import pytest
import torch

from conftest import CONFIG, DEVICE, SIZE
from rramk import DeviceArray
from rramk.device import model_tables, weak_reset_adam
from published_baseline import PublishedStructureArray
from test_bench_device_update import assert_equals_reference

SHAPES = {
    "cpu": {"mnist-784x3000": (3000, 784)},
    "gpu": {"1e6": (1000, 1000), "1e7": (10_000, 1000), "1e8": (100_000, 1000)},
    "tiny": {"128": (1, 128), "3x100": (3, 100)},
}[SIZE]
BACKENDS = ["native", "compiled"] if SIZE == "cpu" else ["triton"]
BACKEND = BACKENDS[0]  # the one 'auto' picks
FUSED_BYTES = 53  # per synapse: gradient 4 + moments 8 + state and pink 16 read; 8 + 16 + weight 1 written
LR_PULSES, BETAS, EPS = 20.0, (0.9, 0.999), 1e-8  # DeviceArray.adam_step's defaults


def _setup(shape, backend=BACKEND):
    g = torch.Generator(device=DEVICE).manual_seed(0)
    grad = torch.randn(shape, generator=g, device=DEVICE) * 1e-3
    array = DeviceArray(shape, CONFIG, seed=1, device=DEVICE, backend=backend)
    return array, grad, torch.zeros(shape, device=DEVICE), torch.zeros(shape, device=DEVICE)


def _figures(synapses: int) -> dict:
    derived = {"synapse_updates_per_s": synapses}
    if SIZE != "cpu":
        derived["gb_per_s"] = synapses * FUSED_BYTES / 1e9
    return derived


def step_memory(step, synapses: int) -> dict:
    """Run ``step()`` once; on CUDA return its peak allocated memory per synapse and how many
    synapses fit in this GPU's memory at that rate (extra_info), else {}."""
    if DEVICE != "cuda":
        step()
        return {}
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    per_synapse = torch.cuda.max_memory_allocated() / synapses
    total = torch.cuda.mem_get_info()[1]
    return {"peak_bytes_per_synapse": per_synapse, "gpu_memory_bytes": total,
            "synapses_that_fit": int(total / per_synapse), "fits_1e9_synapses": 1e9 * per_synapse <= total}


@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_step(record, shape_name, backend):
    array, grad, m, v = _setup(SHAPES[shape_name], backend)
    step = {"k": 0}

    def fused():
        step["k"] += 1
        array.adam_step(grad, m, v, step=step["k"], lr_pulses=LR_PULSES)

    memory = {} if SIZE == "cpu" else step_memory(fused, array.numel)
    record(fused, device=DEVICE, derived=_figures(array.numel), warmup=2, operation="optimizer step",
           provider=f"fused-{backend}", shape=shape_name, synapses=array.numel, **memory)


@pytest.mark.parametrize("family", ["hfox", "soft-bounds", "bidirectional"])
@pytest.mark.parametrize("shape_name", list(SHAPES)[:1])
def test_fused_step_family(record, shape_name, family):
    """Every device family's fused step in one session (its default preset), on the backend 'auto' picks."""
    from rramk.device.families import FAMILIES
    from test_bench_device_update import FAMILIES as NAMES

    shape = SHAPES[shape_name]
    g = torch.Generator(device=DEVICE).manual_seed(0)
    grad = torch.randn(shape, generator=g, device=DEVICE) * 1e-3
    array = DeviceArray(shape, FAMILIES[NAMES[family]](), seed=1, device=DEVICE, backend=BACKEND)
    m, v, step = torch.zeros(shape, device=DEVICE), torch.zeros(shape, device=DEVICE), {"k": 0}

    def fused():
        step["k"] += 1
        array.adam_step(grad, m, v, step=step["k"], lr_pulses=LR_PULSES)

    record(fused, device=DEVICE, derived=_figures(array.numel), warmup=2, operation="optimizer step by family",
           provider=f"fused-{BACKEND}-{family}", shape=shape_name, synapses=array.numel)


def unfused_step(array, grad, m, v):
    """An optimizer step as separate operations: Adam's moments and pulse counts in torch operations, then
    ``array.apply_pulses`` (a DeviceArray, or the published structure)."""
    step = {"k": 0}

    def run():
        step["k"] += 1
        scalars = weak_reset_adam.adam_scalars(step["k"], LR_PULSES, betas=BETAS, eps=EPS,
                                               max_pulses=array.config.max_pulses, device=DEVICE)
        m_new, v_new, pulses = weak_reset_adam.adam_pulses(grad, m, v, scalars)
        m.copy_(m_new)
        v.copy_(v_new)
        array.apply_pulses(pulses)

    return run


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_unfused_step(record, shape_name):
    array, grad, m, v = _setup(SHAPES[shape_name])
    record(unfused_step(array, grad, m, v), device=DEVICE, derived={"synapse_updates_per_s": array.numel}, warmup=2,
           operation="optimizer step", provider=f"unfused-{BACKEND}", shape=shape_name, synapses=array.numel)


@pytest.mark.skipif(SIZE == "gpu", reason="its scipy draws take seconds per million synapses: cpu and tiny sizes")
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_published_structure_step(record, shape_name):
    """Adam in torch operations, then the published structure's update: the step rramk replaces."""
    shape = SHAPES[shape_name]
    _, grad, m, v = _setup(shape, backend="reference")
    baseline = PublishedStructureArray(shape, seed=1, device=DEVICE)
    record(unfused_step(baseline, grad, m, v), device=DEVICE, derived={"synapse_updates_per_s": baseline.numel},
           rounds=3, warmup=1, operation="optimizer step", provider="published-structure", shape=shape_name,
           synapses=baseline.numel)


@pytest.mark.skipif(SIZE == "cpu", reason="Triton kernel: size sets gpu and tiny")
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_fused_step_in_place(record, shape_name):
    from rramk.kernels import weak_reset_adam as kernel

    reference, grad, m_ref, v_ref = _setup(SHAPES[shape_name], backend="reference")
    synapses, config = reference.numel, reference.config
    state = torch.zeros((2, synapses), dtype=torch.int32, device=DEVICE)  # a fresh DeviceArray's state
    pink = torch.zeros((2, synapses), dtype=torch.float32, device=DEVICE)
    weights = torch.empty(synapses, dtype=torch.int8, device=DEVICE)
    g, m, v = grad.reshape(-1), m_ref.clone().reshape(-1), v_ref.clone().reshape(-1)
    model = model_tables.kernel_arguments(config, DEVICE)

    def scalars(step):
        return weak_reset_adam.adam_scalars(step, LR_PULSES, betas=BETAS, eps=EPS, max_pulses=config.max_pulses,
                                            device=DEVICE).as_floats()

    kernel.weak_reset_adam_step(g, m, v, state, pink, weights, seed=1, update=0, scalars=scalars(1), **model)
    reference.adam_step(grad, m_ref, v_ref, step=1, lr_pulses=LR_PULSES, betas=BETAS, eps=EPS)
    what = f"in-place fused kernel, {shape_name}"
    assert_equals_reference(state, pink, weights, reference, what)
    assert torch.equal(m, m_ref.reshape(-1)) and torch.equal(v, v_ref.reshape(-1)), f"{what}: Adam moments differ"
    del reference, m_ref, v_ref
    step_scalars = scalars(2)  # every step does the same work: one step's scalars, outside the timed call
    updates = itertools.count(1)

    def fused():
        kernel.weak_reset_adam_step(g, m, v, state, pink, weights, seed=1, update=next(updates),
                                    scalars=step_scalars, **model)

    memory = step_memory(fused, synapses)
    record(fused, device=DEVICE, derived=_figures(synapses), warmup=2, operation="optimizer step",
           provider="triton-in-place", shape=shape_name, synapses=synapses, bytes_per_synapse=FUSED_BYTES, **memory)
