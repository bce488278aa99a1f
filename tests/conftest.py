"""Shared fixtures: the seed, the `gpu` marker, and Triton's interpreter on machines without CUDA.

The same test files run on a CPU (Triton kernels under TRITON_INTERPRET=1, small shapes) and
on a GPU (compiled kernels, CUDA tensors).
"""

import os

from rramk import cli

# the commands' process set-up, before torch loads: tests that compare a run in this process with one
# of `python -m rramk.train` need the same CPU code path (rramk.cli.pin_code_path)
cli.prepare_process()

import pytest  # noqa: E402
import torch  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    # Must be set before any @triton.jit function is defined, i.e. before rramk.kernels imports.
    os.environ.setdefault("TRITON_INTERPRET", "1")

torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_gpu)


@pytest.fixture
def seed() -> int:
    return 20211001


@pytest.fixture
def device() -> torch.device:
    """Where kernel tests run: CUDA when present, else the CPU (Triton interpreter)."""
    return torch.device("cuda" if HAS_CUDA else "cpu")


@pytest.fixture(params=["triton", "native"])
def fused(request, device):
    """A fused-kernel path, as DeviceArray uses it: ``backend``, ``device`` and the launcher modules of
    the update (``update.weak_reset_update``) and of the optimizer step (``adam.weak_reset_adam_step``).
    "triton": the Triton kernels (CUDA, or the interpreter on a CPU); "native": the C kernels (CPU)."""
    from types import SimpleNamespace

    if request.param == "native":
        from rramk.kernels import native

        return SimpleNamespace(backend="native", device=torch.device("cpu"), update=native, adam=native)
    from rramk.kernels import weak_reset, weak_reset_adam

    return SimpleNamespace(backend="triton", device=device, update=weak_reset, adam=weak_reset_adam)
