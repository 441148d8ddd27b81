"""Image data: decode once to uint8 tensors, load whole batches, augment on the device.

Public entry points:
- ``ImageDataModule``: the LightningDataModule used by training (cifar10/cifar100/folder/synthetic).
- ``augment_batch`` / ``normalize_batch`` / ``to_float``: the batched transforms, reusable by
  benchmarks and plain PyTorch loops.
- ``make_synthetic``: the procedurally generated 10-class dataset.
"""

from project.data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    augment_batch,
    channel_stats,
    crop_flip,
    normalize_batch,
    to_float,
)
from project.data.batches import batch_loader, split_indices
from project.data.datamodule import ImageDataModule
from project.data.options import DATASETS
from project.data.synthetic import make_synthetic

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "ImageDataModule",
    "augment_batch",
    "batch_loader",
    "channel_stats",
    "crop_flip",
    "make_synthetic",
    "normalize_batch",
    "split_indices",
    "to_float",
]
