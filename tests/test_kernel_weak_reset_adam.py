"""The fused optimizer-step kernels (``rramk.kernels.weak_reset_adam``, and the native C one) against the
PyTorch reference (``rramk.device.weak_reset_adam``), bit for bit, and the pulses of a first step by hand.

Triton's run under TRITON_INTERPRET=1 on a CPU (small shapes) and compiled on a GPU (the `device`
fixture); the native one on the CPU; the `fused` fixture (conftest.py) runs a test on both.
"""

import pytest
import torch

from rramk import DeviceArray, HfOxWeakReset
from tests.test_kernel_weak_reset import CONFIGS, _assert_same_state


def _gradients(shape, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    for i in range(steps):
        grad = torch.randn(shape, generator=g) * 10 ** torch.randint(-4, 2, shape, generator=g).float()
        grad[torch.rand(shape, generator=g) < 0.1] = 0.0
        yield grad


@pytest.mark.parametrize("config_name", ["all", "all-but-d2d", "only-saturation", "all-pair0.4"])
def test_fused_step_kernel_matches_reference(fused, config_name):
    config, shape, device = CONFIGS[config_name], (5, 29), fused.device
    reference = DeviceArray(shape, config, seed=8, backend="reference")
    kernel = DeviceArray(shape, config, seed=8, device=device, backend=fused.backend)
    moments = {k: [torch.zeros(shape), torch.zeros(shape)] for k in ("ref", "ker")}
    moments["ker"] = [m.to(device) for m in moments["ker"]]
    for step, grad in enumerate(_gradients(shape, 5, seed=1), start=1):
        lr = 8.0 if step < 3 else 30.0
        reference.adam_step(grad, *moments["ref"], step=step, lr_pulses=lr)
        kernel.adam_step(grad.to(device), *moments["ker"], step=step, lr_pulses=lr)
        for a, b, name in zip(moments["ref"], moments["ker"], ("exp_avg", "exp_avg_sq")):
            assert torch.equal(a, b.cpu()), f"{name} differs at step {step}"
        _assert_same_state(reference, kernel, f"{config_name} step {step}")


@pytest.mark.parametrize("backend", ["reference", "triton", "native"])
@pytest.mark.parametrize("lr,expected", [(2.5, 2), (3.5, 4), (20.0, 14)], ids=["tie-down", "tie-up", "clamp"])
def test_first_step_pulses_by_hand(device, backend, lr, expected):
    """Step 1: m_hat = g, v_hat = g^2, so u = -lr g / (|g| + eps) = -lr sign(g) for |g| >= 1;
    round half to even (2.5 -> 2, 3.5 -> 4) and the 14-pulse clamp."""
    dev = device if backend == "triton" else torch.device("cpu")
    array = DeviceArray((4,), HfOxWeakReset(), seed=1, device=dev, backend=backend)
    grad = torch.tensor([1.0, -1.0, 4.0, 0.0], device=dev)
    m, v = torch.zeros(4, device=dev), torch.zeros(4, device=dev)
    array.adam_step(grad, m, v, step=1, lr_pulses=lr)
    t_bl, t_blb = array.pulse_counts()
    # g > 0 -> u < 0 -> pulses to BLb (the weight moves towards -1)
    assert t_bl.tolist() == [0, expected, 0, 0]
    assert t_blb.tolist() == [expected, 0, expected, 0]
    assert torch.allclose(m.cpu(), 0.1 * grad.cpu()) and torch.allclose(v.cpu(), 0.001 * grad.cpu() ** 2)


@pytest.mark.parametrize("backend", ["reference", "triton", "native"])
def test_nan_gradient_gives_no_pulse(device, backend):
    """A NaN gradient gives 0 pulses; without the guard a GPU's max.f32 clamps NaN to -14 (14 pulses),
    and the kernel's integer clamp gives the interpreter that same answer, so this test fails there too."""
    dev = device if backend == "triton" else torch.device("cpu")
    array = DeviceArray((4,), seed=1, device=dev, backend=backend)
    grad = torch.tensor([float("nan"), 1.0, -1.0, float("inf")], device=dev)
    array.adam_step(grad, torch.zeros(4, device=dev), torch.zeros(4, device=dev), step=1, lr_pulses=8)
    t_bl, t_blb = array.pulse_counts()
    assert (t_bl + t_blb).tolist() == [0, 8, 8, 0]  # inf: m_hat / sqrt(v_hat) = inf / inf = NaN
