"""The fused optimizer step (gradient -> Adam -> pulses -> device update in one pass) against the
unfused composition (Adam moments and pulse counts by separate torch operations, then an update).

Derived figure: synapse-updates per second; on CUDA also the GB/s of the bytes the fused step must
move (53 B/synapse, kernels/weak_reset_adam.py).
"""

import pytest
import torch

from conftest import SIZE
from rramk import DeviceArray
from rramk.device import weak_reset_adam

CPU_SHAPES = {"mnist-784x3000": (3000, 784)}
GPU_SHAPES = {"1e6": (1000, 1000), "1e7": (10_000, 1000), "1e8": (100_000, 1000)}
SHAPES = CPU_SHAPES if SIZE == "cpu" else GPU_SHAPES
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BACKEND = "triton" if DEVICE == "cuda" else "compiled"
FUSED_BYTES = 53


def _setup(shape):
    g = torch.Generator().manual_seed(0)
    grad = (torch.randn(shape, generator=g) * 1e-3).to(DEVICE)
    array = DeviceArray(shape, seed=1, device=DEVICE, backend=BACKEND)
    return array, grad, torch.zeros(shape, device=DEVICE), torch.zeros(shape, device=DEVICE)


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_fused_step(record, shape_name):
    array, grad, m, v = _setup(SHAPES[shape_name])
    step = {"k": 0}

    def fused():
        step["k"] += 1
        array.adam_step(grad, m, v, step=step["k"], lr_pulses=20.0)

    derived = {"synapse_updates_per_s": array.numel}
    if DEVICE == "cuda":
        derived["gb_per_s"] = array.numel * FUSED_BYTES / 1e9
    record(fused, device=DEVICE, derived=derived, warmup=2, operation="optimizer step",
           provider=f"fused-{BACKEND}", shape=shape_name, synapses=array.numel)


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_unfused_step(record, shape_name):
    array, grad, m, v = _setup(SHAPES[shape_name])
    step = {"k": 0}

    def unfused():
        step["k"] += 1
        scalars = weak_reset_adam.adam_scalars(step["k"], 20.0, betas=(0.9, 0.999), eps=1e-8,
                                               max_pulses=array.config.max_pulses, device=DEVICE)
        m_new, v_new, pulses = weak_reset_adam.adam_pulses(grad, m, v, scalars)
        m.copy_(m_new)
        v.copy_(v_new)
        array.apply_pulses(pulses)

    record(unfused, device=DEVICE, derived={"synapse_updates_per_s": array.numel}, warmup=2,
           operation="optimizer step", provider=f"unfused-{BACKEND}", shape=shape_name, synapses=array.numel)
