"""The Triton device-update and fused-step kernels against the PyTorch reference, bit for bit.

Runs under TRITON_INTERPRET=1 on a CPU (small shapes) and compiled on a GPU (the `device`
fixture); the same assertions hold in both places.
"""

import pytest
import torch

from rramk import DeviceArray, HfOxWeakReset
from rramk.device import weak_reset

CONFIGS = {
    "full": HfOxWeakReset(),
    "no-d2d": HfOxWeakReset().without("d2d"),
    "no-pink": HfOxWeakReset().without("pink"),
    "no-rtn": HfOxWeakReset().without("rtn"),
    "no-saturation": HfOxWeakReset().without("saturation"),
    "none": HfOxWeakReset().without("d2d", "pink", "rtn"),
}
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
def test_update_kernel_matches_reference(device, config_name, shape_name):
    config, shape = CONFIGS[config_name], SHAPES[shape_name]
    reference = DeviceArray(shape, config, seed=21, backend="reference")
    kernel = DeviceArray(shape, config, seed=21, device=device, backend="triton")
    _assert_same_state(reference, kernel, "fresh")
    for i, n in enumerate(_pulse_sequence(shape, 4, seed=3)):
        reference.apply_pulses(n)
        kernel.apply_pulses(n.to(device))
        _assert_same_state(reference, kernel, f"{config_name} {shape_name} after update {i}")
    # reads from the kernel's state: resistances equal (to the last bit)
    assert torch.equal(reference.log_resistance(), kernel.log_resistance().cpu())


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_update_kernel_odd_shapes_and_large_seed(device, shape_name):
    shape = SHAPES[shape_name]
    reference = DeviceArray(shape, seed=2**62 + 12345, backend="reference")
    kernel = DeviceArray(shape, seed=2**62 + 12345, device=device, backend="triton")
    for n in _pulse_sequence(shape, 3, seed=5):
        reference.apply_pulses(n)
        kernel.apply_pulses(n.to(device))
    _assert_same_state(reference, kernel, shape_name)


def _gradients(shape, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    for i in range(steps):
        grad = torch.randn(shape, generator=g) * 10 ** torch.randint(-4, 2, shape, generator=g).float()
        grad[torch.rand(shape, generator=g) < 0.1] = 0.0
        yield grad


@pytest.mark.parametrize("config_name", ["full", "no-d2d", "none"])
def test_fused_step_kernel_matches_reference(device, config_name):
    config, shape = CONFIGS[config_name], (5, 29)
    reference = DeviceArray(shape, config, seed=8, backend="reference")
    kernel = DeviceArray(shape, config, seed=8, device=device, backend="triton")
    moments = {k: [torch.zeros(shape), torch.zeros(shape)] for k in ("ref", "ker")}
    moments["ker"] = [m.to(device) for m in moments["ker"]]
    for step, grad in enumerate(_gradients(shape, 5, seed=1), start=1):
        lr = 8.0 if step < 3 else 30.0
        reference.adam_step(grad, *moments["ref"], step=step, lr_pulses=lr)
        kernel.adam_step(grad.to(device), *moments["ker"], step=step, lr_pulses=lr)
        for a, b, name in zip(moments["ref"], moments["ker"], ("exp_avg", "exp_avg_sq")):
            assert torch.equal(a, b.cpu()), f"{name} differs at step {step}"
        _assert_same_state(reference, kernel, f"{config_name} step {step}")


@pytest.mark.parametrize("backend", ["reference", "triton"])
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


def test_nan_gradient_gives_no_pulse(device):
    array = DeviceArray((3,), seed=1, device=device, backend="triton")
    grad = torch.tensor([float("nan"), 1.0, -1.0], device=device)
    array.adam_step(grad, torch.zeros(3, device=device), torch.zeros(3, device=device), step=1, lr_pulses=8)
    t_bl, t_blb = array.pulse_counts()
    assert (t_bl + t_blb).tolist() == [0, 8, 8]


def test_launchers_refuse_bad_input(device):
    from rramk.kernels import weak_reset as kernel

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
                                     seed=0, update=0, **weak_reset.kernel_arguments(cfg, device))


def test_kernel_on_cpu_without_interpreter_explains(monkeypatch):
    from rramk.kernels import _launch

    monkeypatch.setattr(_launch, "runs_interpreted", lambda kernel: False)
    with pytest.raises(RuntimeError, match="backend='reference'.*TRITON_INTERPRET=1"):
        DeviceArray((4,), backend="triton")
    with pytest.raises(RuntimeError, match="device_state: a Triton kernel needs a CUDA tensor"):
        from rramk.kernels import weak_reset as kernel

        kernel.weak_reset_update(torch.zeros(2, 4, dtype=torch.int32), torch.zeros(2, 4),
                                 torch.zeros(4, dtype=torch.int32), torch.zeros(4, dtype=torch.int8),
                                 seed=0, update=0, **weak_reset.kernel_arguments(HfOxWeakReset(), "cpu"))


def test_model_constants_are_what_the_kernel_reads():
    """The kernel's hard-wired bit layout matches rramk.streams (an import-time assertion)."""
    import rramk.kernels.weak_reset as kernel

    assert kernel.ROW_LN_R0 == weak_reset.TABLE_ROWS.index("ln_r0")
