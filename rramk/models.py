"""The two binarized networks of the published study (MODEL.md section 5), and the VGG sized for 28x28 images.

``nn.Sequential`` with named layers; the binary weights (``rramk.nn.binary_parameters``) are exactly
those of the ``BinaryLinear``/``BinaryConv2d`` layers (no biases), every other parameter a batch-norm
scale or shift (PyTorch's defaults). ``q``: the sign with the hard-tanh STE (``sign_ste``)::

    MNIST 784-3000-10: x (pixels) -> flatten -> fc1 (binarize_input=False) -> bn1 -> q -> fc2 -> bn2
    CIFAR-10 VGG:      x (image) -> k = 1..6: conv_k (3x3, padding 1) -> [pool_k: max 2, k = 2, 4, 6]
                       -> bn_k -> q; flatten -> fc7 -> bn7 -> q -> fc8 -> bn8 -> q -> fc9 -> bn9

VGG as Courbariaux, Hubara et al. 2016; at ``width=1`` conv 384-384-768-768-1536-512,
fc 8192-1024-1024-10. Pooling comes before batch norm and sign: it pools integer pre-activations
(pooled signs would mostly be +1). Only the first layer sees real inputs. ``mnist_vgg``: the same
family on (N, 1, 28, 28); the poolings give 14, 7, 3 pixels, fc7 sees C6 * 3 * 3 features.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict

from torch import nn

from rramk.nn.binarize import SignSTE
from rramk.nn.layers import BinaryConv2d, BinaryLinear, binary_parameters
from rramk.nn.pooling import MaxPool2x2

__all__ = ["CIFAR10_CONV_WIDTHS", "CIFAR10_FC_WIDTHS", "cifar10_vgg", "count_synapses", "mnist_mlp", "mnist_vgg", "vgg"]

MNIST_PIXELS = 28 * 28
MNIST_CLASSES = 10

CIFAR10_CONV_WIDTHS = (384, 384, 768, 768, 1536, 512)  # channels of conv1..conv6 at width=1
CIFAR10_POOL_AFTER = (2, 4, 6)  # max-pool 2 after these convolutions: 32 -> 16 -> 8 -> 4
CIFAR10_FC_WIDTHS = (1024, 1024)  # hidden fully connected layers at width=1
CIFAR10_CHANNELS, CIFAR10_SIZE, CIFAR10_CLASSES = 3, 32, 10


def count_synapses(model: nn.Module) -> int:
    """Number of binary weights of ``model``, i.e. of 2T2R synapses (two devices each)."""
    return sum(p.numel() for p in binary_parameters(model))


def mnist_mlp(hidden: int = 3000) -> nn.Sequential:
    """The MNIST BNN 784-``hidden``-10, batch norm after each layer (MODEL.md section 5).

    ``fc1`` takes the pixels as they are (``binarize_input=False``); ``fc2`` takes the signs of
    the ``hidden`` batch-normalized pre-activations. Binary weights:
    ``784 * hidden + hidden * 10`` (2 382 000 for the published ``hidden=3000``).
    """
    if isinstance(hidden, bool) or not isinstance(hidden, numbers.Integral) or hidden < 1:
        raise ValueError(f"hidden: expected a positive int, got {hidden!r}")
    hidden = int(hidden)
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", BinaryLinear(MNIST_PIXELS, hidden, binarize_input=False)),
        ("bn1", nn.BatchNorm1d(hidden)),
        ("sign1", SignSTE()),
        ("fc2", BinaryLinear(hidden, MNIST_CLASSES)),
        ("bn2", nn.BatchNorm1d(MNIST_CLASSES)),
    ]))


def _scaled(channels: int, width: float) -> int:
    """``round(width * channels)``, at least 1."""
    return max(1, round(width * channels))


def cifar10_vgg(width: float = 1.0) -> nn.Sequential:
    """The CIFAR-10 VGG-style BNN of the published study, its layer widths scaled by ``width``
    (:func:`vgg` on (N, 3, 32, 32) images)."""
    return vgg(width, channels=CIFAR10_CHANNELS, size=CIFAR10_SIZE)


def mnist_vgg(width: float = 0.125) -> nn.Sequential:
    """The VGG family on (N, 1, 28, 28) images (MNIST, Fashion-MNIST): :func:`vgg` with one input
    channel; at the default ``width`` 1/8, 0.51 M synapses (conv 48-48-96-96-192-64, fc 576-128-128-10)."""
    return vgg(width, channels=1, size=MNIST_SIDE)


MNIST_SIDE = 28


def vgg(width: float = 1.0, *, channels: int = CIFAR10_CHANNELS, size: int = CIFAR10_SIZE) -> nn.Sequential:
    """The VGG-style BNN of the published study on (N, ``channels``, ``size``, ``size``) images, its layer
    widths scaled by ``width``.

    Convolution ``k`` has ``max(1, round(width * C_k))`` output channels, ``C = (384, 384, 768,
    768, 1536, 512)``; both hidden fully connected layers have ``max(1, round(width * 1024))``
    units (scaled too, so that a small ``width`` gives a small network); the flattened feature
    has ``conv6_channels * s * s`` entries, s = ``size`` halved (floor) three times (8192 at
    ``width=1`` on 32x32 images); the output has 10 classes. See the module docstring for the layer order.
    """
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not (
            math.isfinite(width) and width > 0):
        raise ValueError(f"width: expected a positive finite number, got {width!r}")
    conv_widths = [_scaled(c, width) for c in CIFAR10_CONV_WIDTHS]
    fc_widths = [_scaled(c, width) for c in CIFAR10_FC_WIDTHS]

    layers: list[tuple[str, nn.Module]] = []
    in_channels = channels
    for k, out_channels in enumerate(conv_widths, start=1):
        layers.append((f"conv{k}", BinaryConv2d(in_channels, out_channels, kernel_size=3, padding=1,
                                                binarize_input=k > 1)))
        if k in CIFAR10_POOL_AFTER:
            layers.append((f"pool{k}", MaxPool2x2()))  # nn.MaxPool2d(2), by the native kernel on CPUs
            size //= 2
        layers.append((f"bn{k}", nn.BatchNorm2d(out_channels)))
        layers.append((f"sign{k}", SignSTE()))
        in_channels = out_channels

    layers.append(("flatten", nn.Flatten()))
    in_features = in_channels * size * size
    last = len(conv_widths) + len(fc_widths) + 1
    for k, out_features in enumerate(fc_widths + [CIFAR10_CLASSES], start=len(conv_widths) + 1):
        layers.append((f"fc{k}", BinaryLinear(in_features, out_features)))
        layers.append((f"bn{k}", nn.BatchNorm1d(out_features)))
        if k < last:
            layers.append((f"sign{k}", SignSTE()))
        in_features = out_features
    return nn.Sequential(OrderedDict(layers))
