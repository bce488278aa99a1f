"""Binary layers: ``BinaryLinear`` and ``BinaryConv2d``, and how an optimizer finds their weights.

With ``q`` the sign STE of ``rramk.nn.binarize``::

    BinaryLinear:  y = q(x) @ q(W)^T (+ b)          BinaryConv2d:  y = conv2d(q(x), q(W)) (+ b)

``W`` is an ordinary parameter: a latent float weight (the software BNN, clipped to [-1, 1] after
each step) or the +1/-1 weights the optimizer reads from the simulated synapses (device mode; the
STE passes at |W| = 1). An input layer takes real pixels (``binarize_input=False``: y = x @ q(W)^T).
The one routing convention: a binary weight carries ``weight.binary = True`` (:func:`is_binary`),
kept through deepcopy, pickling, ``.to(...)`` and ``load_state_dict(assign=True)``; everything else is
a plain float parameter. Products of +-1 operands go through ``rramk.nn.binary_products``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rramk.nn.binarize import sign_ste
from rramk.nn.binary_products import binary_conv2d, binary_linear

__all__ = [
    "BinaryConv2d",
    "BinaryLinear",
    "binary_parameters",
    "clip_latent_weights_",
    "is_binary",
    "mark_binary",
]

Binarizer = Callable[[Tensor], Tensor]

BINARY_MARK = "binary"  # name of the attribute that marks a binary weight parameter


def mark_binary(param: nn.Parameter) -> nn.Parameter:
    """Mark ``param`` as a binary weight (``param.binary = True``) and return it."""
    setattr(param, BINARY_MARK, True)
    return param


def is_binary(param: Tensor) -> bool:
    """True for the weight of a binary layer (to be stored in RRAM synapses), else False."""
    return getattr(param, BINARY_MARK, False) is True


def binary_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The binary weights of ``module`` and its submodules, in ``module.parameters()`` order.

    Every other parameter of ``module`` (biases, batch-norm affine parameters) is a plain float
    parameter: ``[p for p in module.parameters() if not is_binary(p)]``.
    """
    return [p for p in module.parameters() if is_binary(p)]


@torch.no_grad()
def clip_latent_weights_(module: nn.Module) -> None:
    """Clamp every binary weight of ``module`` to [-1, 1] in place (the ideal BNN, after each step).

    Beyond [-1, 1] the STE gradient of a latent weight is zero and the weight would never come
    back; clipping keeps it where a gradient can flip its sign. Harmless in device mode (+-1).
    """
    for param in binary_parameters(module):
        param.clamp_(-1.0, 1.0)


class _BinaryWeight:
    """What ``BinaryLinear`` and ``BinaryConv2d`` share: the binarizer and the weight's mark.

    Mixed in before the torch layer (``class BinaryLinear(_BinaryWeight, nn.Linear)``).
    """

    binarize_input: bool
    binarizer: Binarizer

    def _init_binarization(self, binarize_input: bool, binarizer: Binarizer) -> None:
        if not callable(binarizer):
            raise TypeError(f"binarizer: expected a callable Tensor -> Tensor, got {binarizer!r}")
        self.binarize_input = bool(binarize_input)
        self.binarizer = binarizer

    def binarized_weight(self) -> Tensor:
        """``q(W)``: +-1, with the STE gradient to the latent weight."""
        return self.binarizer(self.weight)

    def binarized_input(self, x: Tensor) -> Tensor:
        """``q(x)``, or ``x`` itself in an input layer (``binarize_input=False``)."""
        return self.binarizer(x) if self.binarize_input else x

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, binarize_input={self.binarize_input}"

    # -- keeping the mark on the weight through every way torch replaces a Parameter object --

    def _mark_weight(self) -> None:
        weight = self._parameters.get("weight")
        if weight is not None:
            mark_binary(weight)

    def register_parameter(self, name: str, param: nn.Parameter | None) -> None:
        # Called for `self.weight = Parameter(...)` in __init__ and for load_state_dict(assign=True).
        super().register_parameter(name, param)
        if name == "weight":
            self._mark_weight()

    def _apply(self, fn, recurse=True):
        # .to()/.cuda()/.double() may build a new Parameter (meta device, swap-tensors mode).
        module = super()._apply(fn, recurse)
        self._mark_weight()
        return module

    def __setstate__(self, state) -> None:
        # copy.deepcopy and unpickling rebuild the Parameters without their attributes.
        super().__setstate__(state)
        self._mark_weight()


class BinaryLinear(_BinaryWeight, nn.Linear):
    """Fully connected layer with binary weights: ``y = q(x) @ q(W)^T (+ b)``.

    ``q`` is ``binarizer`` (default :func:`rramk.nn.binarize.sign_ste`: sign, hard-tanh STE); with
    ``binarize_input=False`` (the input layer) ``y = x @ q(W)^T (+ b)``. ``weight`` has the
    shape ``(out_features, in_features)``, nn.Linear's initialization, and the mark
    ``weight.binary = True``; the bias, if any, is a plain float parameter.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 binarize_input: bool = True, *, binarizer: Binarizer = sign_ste,
                 device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_binarization(binarize_input, binarizer)

    def forward(self, x: Tensor) -> Tensor:
        w_sign = self.binarized_weight()
        if self.binarize_input:
            return binary_linear(self.binarizer(x), w_sign, self.bias)
        return F.linear(x, w_sign, self.bias)


class BinaryConv2d(_BinaryWeight, nn.Conv2d):
    """2-D convolution with binary weights: ``y = conv2d(q(x), q(W)) (+ b)``, zero padding.

    ``q`` is ``binarizer`` (default :func:`rramk.nn.binarize.sign_ste`); with
    ``binarize_input=False`` (the input layer) ``y = conv2d(x, q(W)) (+ b)``. ``weight`` has the
    shape ``(out_channels, in_channels, kh, kw)`` and the mark ``weight.binary = True``.
    Dilation and groups are 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = False, binarize_input: bool = True, *,
                 binarizer: Binarizer = sign_ste, device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         bias=bias, device=device, dtype=dtype)
        self._init_binarization(binarize_input, binarizer)

    def forward(self, x: Tensor) -> Tensor:
        w_sign = self.binarized_weight()
        if self.binarize_input:
            return binary_conv2d(self.binarizer(x), w_sign, self.bias,
                                 stride=self.stride, padding=self.padding)
        return F.conv2d(x, w_sign, self.bias, stride=self.stride, padding=self.padding)
