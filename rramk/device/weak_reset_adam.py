"""PyTorch reference of the fused optimizer step: Adam turned into weak-RESET pulses (MODEL.md 3).

For one binary weight tensor with straight-through gradient g (float32):

    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    m_hat = m * c1,  v_hat = v * c2,     c1 = 1 / (1 - beta1**k), c2 = 1 / (1 - beta2**k)
    u = (-lr_pulses * m_hat) / (sqrt(v_hat) + eps)
    n = round_half_even(clamp(u, -max_pulses, max_pulses))      (0 where u is NaN)

then ``rramk.device.weak_reset.weak_reset_update`` applies n (n > 0: pulses to BL, the weight moves
towards +1; n < 0: to BLb) and the weights are read again. k is the 1-based step of the
tensor. Every float operation is float32 in this order, with the scalars rounded once from
Python floats to float32 and a correctly rounded square root, so the Triton kernel
(``rramk.kernels.weak_reset_adam``) computes the same pulses bit for bit.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import model_tables, weak_reset
from .config import HfOxWeakReset


class AdamScalars(NamedTuple):
    """float32 0-dim tensors of one step (tensors, so that compiled code does not recompile)."""

    beta1: torch.Tensor
    one_minus_beta1: torch.Tensor
    beta2: torch.Tensor
    one_minus_beta2: torch.Tensor
    bias_correction1: torch.Tensor  # 1 / (1 - beta1**k)
    bias_correction2: torch.Tensor  # 1 / (1 - beta2**k)
    neg_lr_pulses: torch.Tensor
    eps: torch.Tensor
    max_pulses: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """The same float32 values as Python floats (for kernel launches)."""
        return {name: float(value) for name, value in self._asdict().items()}


def adam_scalars(step: int, lr_pulses: float, *, betas: tuple[float, float], eps: float, max_pulses: int,
                 device="cpu") -> AdamScalars:
    """The scalars of step ``step`` (1-based), each computed in float64 and rounded once to float32.

    ``betas`` and ``eps`` are the optimizer's Adam settings; ``max_pulses`` the device's
    per-step limit (``HfOxWeakReset.max_pulses``).
    """
    if step < 1:
        raise ValueError(f"step: expected a 1-based step >= 1, got {step}")
    b1, b2 = betas
    values = (b1, 1.0 - b1, b2, 1.0 - b2, 1.0 / (1.0 - b1**step), 1.0 / (1.0 - b2**step), -float(lr_pulses),
              eps, float(max_pulses))
    return AdamScalars(*(torch.tensor(v, dtype=torch.float32, device=device) for v in values))


def adam_pulses(grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, scalars: AdamScalars):
    """(new exp_avg, new exp_avg_sq, pulses int32): steps 1-3 of MODEL.md section 3."""
    g = grad.to(torch.float32)
    m = exp_avg * scalars.beta1 + g * scalars.one_minus_beta1
    v = exp_avg_sq * scalars.beta2 + (g * g) * scalars.one_minus_beta2
    m_hat = m * scalars.bias_correction1
    v_hat = v * scalars.bias_correction2
    # sqrt in float64, rounded once: the correctly rounded float32 square root on every backend
    denominator = torch.sqrt(v_hat.to(torch.float64)).to(torch.float32) + scalars.eps
    u = (scalars.neg_lr_pulses * m_hat) / denominator
    u = torch.where(u == u, u, 0.0)  # a NaN gradient gives no pulse, not an undefined count
    pulses = torch.round(torch.clamp(u, -scalars.max_pulses, scalars.max_pulses)).to(torch.int32)
    return m, v, pulses


def weak_reset_adam_step(grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                         device_state: torch.Tensor, pink: torch.Tensor, *, config: HfOxWeakReset, seed, update,
                         scalars: AdamScalars, first=0, constants: model_tables.ModelConstants | None = None,
                         cycles: bool = False):
    """One fused step on flat tensors (N,) and device state (2, N) (``cycles``: as in
    ``weak_reset.weak_reset_update``).

    Returns (exp_avg, exp_avg_sq, device_state, pink, weights int8 (N,), pulses int32 (N,)).
    The inputs are not modified.
    """
    m, v, pulses = adam_pulses(grad, exp_avg, exp_avg_sq, scalars)
    state, pink, weights, _ = weak_reset.weak_reset_update(device_state, pink, pulses, config=config, seed=seed,
                                                           update=update, first=first, constants=constants,
                                                           cycles=cycles)
    return m, v, state, pink, weights, pulses
