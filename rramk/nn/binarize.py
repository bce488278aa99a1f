"""Binarization by sign with the straight-through estimator (STE), written once.

The forward pass binarizes with a tie read as +1, as the 2T2R synapse does
(``W = sign(R_BL - R_BLb)``, MODEL.md section 2): q(x) = +1 if x >= 0, else -1. ``q`` has zero
derivative almost everywhere, so training uses that of the hard tanh ``clamp(x, -1, 1)``
(Courbariaux, Hubara et al. 2016), the boundary |x| = 1 included::

    dL/dx := dL/dq * 1{|x| <= 1}          (NaN: q = -1, pseudo-gradient 0)

On activations this is "hard tanh then sign" (MODEL.md section 5); on the ideal BNN's latent weights
it stops the gradient of a weight that left [-1, 1] (the optimizer clips it back). Binary layers
take the binarization as a callable ``Tensor -> Tensor`` (default :func:`sign_ste`), as larq's
``input_quantizer``/``kernel_quantizer`` do, so that no layer copies this code; :class:`SignSTE` is
the same function as an ``nn.Module``, the sign of ``rramk.models``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rramk.nn.xnor import sign_pm1

__all__ = ["SignSTE", "sign_ste"]


class _SignSTEFunction(torch.autograd.Function):
    """q(x) = +1 if x >= 0 else -1; pseudo-gradient dL/dx = dL/dq * 1{|x| <= 1}."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        # One byte per element kept for the backward pass instead of the whole input; none where no
        # gradient is wanted (evaluation under no_grad). On CPUs one native pass makes both (the same values).
        wanted = ctx.needs_input_grad[0]
        if x.dtype == torch.float32 and x.device.type == "cpu" and native_available():
            from rramk.kernels import native_cnn

            out, inside = native_cnn.sign_ste(x, with_mask=wanted)
        else:
            out, inside = sign_pm1(x), (x.abs() <= 1 if wanted else None)
        if wanted:
            ctx.save_for_backward(inside)
        return out

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        (inside,) = ctx.saved_tensors
        return pass_where(inside, grad_output)


_SAME_SIZE_INT = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def native_available() -> bool:
    """Whether the native C kernels build and load here (cached by ``rramk.kernels.native``): the CPU paths
    of the sign, the pooling and the binary convolutions of ``rramk.nn`` (imported late: no kernels at import)."""
    from rramk.kernels import native

    return native.available()


def pass_where(inside: Tensor, grad: Tensor) -> Tensor:
    """``torch.where(inside, grad, +0.0)``, bit for bit, as an AND of the float's bits with an
    all-ones or all-zeros mask: not a product with the mask (a blocked inf or NaN gradient must
    not leak), and 6x faster on CPUs than torch.where, whose CPU kernel is not vectorized
    (reports/perf-notes.md #21)."""
    integer = _SAME_SIZE_INT[grad.element_size()]
    keep = inside.to(integer).neg_()  # -1: every bit set
    return (grad.view(integer) & keep).view(grad.dtype)


def sign_ste(x: Tensor) -> Tensor:
    """Binarize ``x`` by sign, with the hard-tanh straight-through gradient.

    Forward: ``q(x) = +1 if x >= 0 else -1`` (a tie reads +1), same dtype and shape as ``x``.

    Backward: ``dL/dx = dL/dq * 1{|x| <= 1}`` (the derivative of ``clamp(x, -1, 1)``; the
    boundary ``|x| = 1`` passes).
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
    return _SignSTEFunction.apply(x)


class SignSTE(nn.Module):
    """The sign activation ``q(x)`` of :func:`sign_ste` as a module (hard tanh then sign).

    A module, not a bare function, so that a network prints it and a forward hook can watch it.
    """

    def forward(self, x: Tensor) -> Tensor:
        return sign_ste(x)
