"""The data set every loader returns, held in memory, and its per-channel standardization."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

__all__ = ["NORMALIZATION", "ImageDataset", "normalize", "validation_split"]

NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    # Computed from the real training set (../shared/datasets/fashion-mnist): the mean and the
    # population standard deviation of all 47,040,000 pixels of the 60,000 training images
    # scaled to [0, 1] are 0.286041 and 0.353024 (the test set gives 0.286849 and 0.352444).
    # The MNIST values above are the same statistics of its training set (0.130660, 0.308108).
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
"""Per-channel (mean, std) of the training pixels scaled to [0, 1], by data set name."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image data set held in memory, split into train and test."""

    name: str
    """Short name, also the key of :data:`NORMALIZATION`: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``."""
    train_images: torch.Tensor
    """uint8, (N_train, C, H, W), pixel values 0..255."""
    train_labels: torch.Tensor
    """int64, (N_train,), class indices into ``classes``."""
    test_images: torch.Tensor
    """uint8, (N_test, C, H, W)."""
    test_labels: torch.Tensor
    """int64, (N_test,)."""
    classes: tuple[str, ...]
    """Class names; label k is ``classes[k]``."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_images.shape[1:]
        return (c, h, w)

    def to(self, device: torch.device | str) -> ImageDataset:
        """A copy with every tensor on ``device`` (images stay uint8: 4x less to move)."""
        return replace(
            self,
            train_images=self.train_images.to(device),
            train_labels=self.train_labels.to(device),
            test_images=self.test_images.to(device),
            test_labels=self.test_labels.to(device),
        )


def normalize(images: torch.Tensor, dataset_name: str) -> torch.Tensor:
    """Standardize images per channel: ``(x - mean_c) / std_c`` in float32 (:data:`NORMALIZATION`).

    uint8 images are first scaled by 1/255; floating-point images are taken to be in [0, 1]
    already. Works on (C, H, W) or (N, C, H, W) on any device.
    """
    if dataset_name not in NORMALIZATION:
        raise ValueError(f"dataset_name must be one of {sorted(NORMALIZATION)}, got {dataset_name!r}")
    if not isinstance(images, torch.Tensor) or images.dim() not in (3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor (C, H, W) or (N, C, H, W), got {shape}")
    mean, std = NORMALIZATION[dataset_name]
    if images.shape[-3] != len(mean):
        raise ValueError(
            f"images must have {len(mean)} channel(s) for {dataset_name}, got shape {tuple(images.shape)}"
        )
    if images.dtype == torch.uint8:
        x = images.to(torch.float32) / 255.0
    elif images.dtype.is_floating_point:
        x = images.to(torch.float32)
    else:
        raise ValueError(f"images must be uint8 (0..255) or floating point (0..1), got {images.dtype}")
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    return (x - m) / s


def validation_split(images: torch.Tensor, labels: torch.Tensor, n: int):
    """((train images, labels), (validation images, labels)): the validation set is the *last* ``n``
    examples of the official training set, the same on every machine and for every seed, and never
    trained on (n = 0: an empty validation set)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < len(images):
        raise ValueError(f"validation: expected a number of examples in [0, {len(images)}) to hold out of the "
                         f"{len(images)} training examples, got {n!r}")
    cut = len(images) - n
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])
