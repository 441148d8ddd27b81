"""Image data: decode once to uint8 tensors, load whole batches, augment on the device.

Public entry points:
- ``ImageDataModule``: the LightningDataModule base every source shares; the sources
  ``CIFARDataModule`` (cifar10/cifar100), ``FolderDataModule`` and ``SyntheticDataModule`` (one
  ``conf/data`` file each), and ``make_datamodule(name, **kwargs)`` to build one by short name.
- ``validate_data_config``: the checks of a ``data`` config before anything is built.
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
from project.data.cifar import CIFARDataModule
from project.data.datamodule import ImageDataModule
from project.data.factory import DATASETS, make_datamodule
from project.data.folder import FolderDataModule
from project.data.options import dataset_name, validate_data_config
from project.data.synthetic import SyntheticDataModule, make_synthetic

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "DATASETS",
    "CIFARDataModule",
    "FolderDataModule",
    "ImageDataModule",
    "SyntheticDataModule",
    "augment_batch",
    "batch_loader",
    "channel_stats",
    "crop_flip",
    "dataset_name",
    "make_datamodule",
    "make_synthetic",
    "normalize_batch",
    "split_indices",
    "to_float",
    "validate_data_config",
]
