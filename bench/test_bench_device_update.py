"""Speed of one device update (DeviceArray.apply_pulses) against the published structure.

Shapes are weight tensors of the published networks; pulse counts are uniform in [-14, 14].
The derived figure is synapse-updates per second. Every backend of the same size runs in the
same session, so the ratios in reports/ compare like with like.
"""

import pytest
import torch

from conftest import SIZE
from published_baseline import PublishedStructureArray
from rramk import DeviceArray

CPU_SHAPES = {"mnist-784x3000": (3000, 784), "64k": (256, 256)}
GPU_SHAPES = {"1e6": (1000, 1000), "1e7": (10_000, 1000), "1e8": (100_000, 1000)}
SHAPES = CPU_SHAPES if SIZE == "cpu" else GPU_SHAPES
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BACKENDS = ["compiled"] if DEVICE == "cpu" else ["triton", "reference"]


def _pulses(shape, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-14, 15, shape, generator=g, dtype=torch.int32).to(device)


@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_device_update(record, shape_name, backend):
    shape = SHAPES[shape_name]
    array = DeviceArray(shape, seed=1, device=DEVICE, backend=backend)
    n = _pulses(shape, DEVICE)
    synapses = array.numel
    record(lambda: array.apply_pulses(n), device=DEVICE, derived={"synapse_updates_per_s": synapses},
           rounds=None if backend != "reference" or synapses <= 10**7 else 3, warmup=2,
           operation="device update", provider=f"rramk-{backend}", shape=shape_name, synapses=synapses,
           state_bytes_per_synapse=array.state_bytes_per_synapse)


@pytest.mark.parametrize("shape_name", [s for s in SHAPES if SIZE == "cpu" or s != "1e8"])
def test_device_update_published_structure(record, shape_name):
    shape = SHAPES[shape_name]
    baseline = PublishedStructureArray(shape, seed=1)
    n = _pulses(shape, "cpu")
    record(lambda: baseline.apply_pulses(n), derived={"synapse_updates_per_s": baseline.numel}, rounds=3,
           operation="device update", provider="published-structure", shape=shape_name, synapses=baseline.numel,
           state_bytes_per_synapse=baseline.state_bytes_per_synapse)
