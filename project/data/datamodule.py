"""``ImageDataModule``: CIFAR-10/100, ImageFolder or synthetic images as in-memory uint8 tensors.

Pipeline: every image is decoded once into a uint8 tensor ``(N, 3, H, W)``; loaders gather whole
batches by index (see ``batches.py``); on the training device ``on_after_batch_transfer`` converts
to float, augments (train only) and normalizes with batched tensor ops (see ``augment.py``).

Splits: the dataset's train split is divided into train/val by a permutation seeded with ``seed``;
the test split is only ever served by ``test_dataloader``/``predict_dataloader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from project.data import cifar, folder
from project.data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    augment_batch,
    channel_stats,
    normalize_batch,
    to_float,
)
from project.data.batches import batch_loader, split_indices
from project.data.options import validate_options
from project.data.synthetic import SYNTHETIC_CLASSES, make_synthetic

PADDING = 4  # CIFAR convention: random 32x32 crop of the 40x40 zero-padded image


class ImageDataModule(L.LightningDataModule):
    """Image classification data as device-friendly uint8 tensors.

    Batches from every loader are ``(uint8 (B, 3, H, W), int64 (B,))``; after the transfer hook
    they are ``(float32 (B, 3, H, W) normalized, int64 (B,))``. ``num_classes`` and
    ``class_names`` are available right after construction; ``split_sizes`` after ``setup``.
    Arguments are documented in the project's data config (``conf/data``); see the module doc.
    """

    def __init__(
        self,
        dataset: str,
        root: str = "data",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: float | int = 10000,
        augment: bool = True,
        normalize: str = "train",
        download: bool = True,
        seed: int = 0,
        num_workers: int = 0,
        resident: bool | str = "auto",
        cache: bool = True,
        cache_dir: str | None = None,
        train_size: int = 2000,
        test_size: int = 500,
        noise: float = 0.1,
        image_size: int = 32,
        eval_splits: tuple[str, ...] = ("test",),
    ) -> None:
        super().__init__()
        validate_options(
            dataset,
            batch_size,
            eval_batch_size,
            val_size,
            normalize,
            resident,
            num_workers,
            image_size,
            train_size,
            test_size,
        )
        self.dataset = dataset
        self.root = Path(root).expanduser().resolve()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 256)
        self.val_size = val_size
        self.augment = augment
        self.normalize = normalize
        self.download = download
        self.seed = seed
        self.num_workers = num_workers
        self.resident = resident
        self.cache = cache
        self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else None
        self.train_size, self.test_size, self.noise = train_size, test_size, noise
        self.image_size = image_size

        # Class names need no image decoding; for folder this also checks the root layout early.
        if dataset in cifar.CIFAR_NUM_CLASSES:
            self._class_names = cifar.cifar_class_names(dataset, self.root)
        elif dataset == "folder":
            self._class_names = folder.folder_class_names(self.root)
        else:
            self._class_names = list(SYNTHETIC_CLASSES)
        self._check_val_size_upper_bound()

        self._splits: dict[str, tuple[Tensor, Tensor]] = {}
        self.eval_splits: tuple[str, ...] = tuple(eval_splits)
        self.mean = torch.zeros(3)
        self.std = torch.ones(3)
        self._aug_generators: dict[torch.device, tuple[torch.Generator, int]] = {}
        self._device_stats: dict[torch.device, tuple[Tensor, Tensor, Tensor]] = {}

    # ----------------------------------------------------------------- metadata
    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    @property
    def split_sizes(self) -> dict[str, int]:
        """``{"train": n, "val": n, "test": n}``; requires ``setup``."""
        if not self._splits:
            raise RuntimeError("split_sizes is available after setup()")
        return {name: labels.shape[0] for name, (_, labels) in self._splits.items()}

    @property
    def data_stats(self) -> dict:
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "normalize": self.normalize,
            "dataset": self.dataset,
        }

    def _check_val_size_upper_bound(self) -> None:
        """Check int val_size against the train size when it is known without reading files."""
        known = {"cifar10": cifar.CIFAR_TRAIN_SIZE, "cifar100": cifar.CIFAR_TRAIN_SIZE}
        known["synthetic"] = self.train_size
        n = known.get(self.dataset)
        if n is not None and isinstance(self.val_size, int) and self.val_size >= n:
            split_indices(n, self.val_size, self.seed)  # raises the UserError

    # ----------------------------------------------------------------- loading
    def prepare_data(self) -> None:
        """Download CIFAR (once, on rank 0) or decode + cache a folder dataset."""
        if self.dataset in cifar.CIFAR_NUM_CLASSES and self.download:
            cifar.download_cifar(self.dataset, self.root)
        elif self.dataset == "folder" and self.cache:
            for split in folder.SPLITS:
                self._load_split(split)

    def _load_split(self, split: str) -> tuple[Tensor, Tensor]:
        """Whole train or test split: uint8 ``(N, 3, H, W)``, int64 ``(N,)`` on the CPU."""
        train = split == "train"
        if self.dataset in cifar.CIFAR_NUM_CLASSES:
            return cifar.load_cifar(self.dataset, self.root, train)
        if self.dataset == "folder":
            return folder.load_folder_split(
                self.root, split, self._class_names, self.image_size, self.cache, self.cache_dir
            )
        # Different seeds for train and test so they are independent draws.
        n = self.train_size if train else self.test_size
        seed = self.seed * 2 + (0 if train else 1)
        return make_synthetic(n, seed, self.noise, self.image_size)

    def setup(self, stage: str | None = None) -> None:
        """Load all splits once (the test split too: train stats are needed for any stage)."""
        if not self._splits:
            images, labels = self._load_split("train")
            train_idx, val_idx = split_indices(labels.shape[0], self.val_size, self.seed)
            self._splits = {
                "train": (images[train_idx], labels[train_idx]),
                "val": (images[val_idx], labels[val_idx]),
                "test": self._load_split("test"),
            }
            self.mean, self.std = self._norm_stats(self._splits["train"][0])
        device = self._resident_device()
        if device is not None:
            # Moving once here means no host->device copy per batch during training.
            self._splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self._splits.items()}

    def _norm_stats(self, train_images: Tensor) -> tuple[Tensor, Tensor]:
        if self.normalize == "train":
            return channel_stats(train_images)
        if self.normalize == "cifar":
            mean, std = (
                (CIFAR100_MEAN, CIFAR100_STD)
                if self.dataset == "cifar100"
                else (CIFAR10_MEAN, CIFAR10_STD)
            )
            return torch.tensor(mean), torch.tensor(std)
        return torch.zeros(3), torch.ones(3)

    def _resident_device(self) -> torch.device | None:
        """Device to keep the uint8 tensors on, or None to leave them on the CPU."""
        if self.resident is False or self.trainer is None:
            return None
        device = self.trainer.strategy.root_device
        if device.type == "cpu":
            return None
        return device if (self.resident is True or device.type == "cuda") else None

    # ----------------------------------------------------------------- loaders
    def _loader(self, split: str, train: bool) -> DataLoader:
        if not self._splits:
            raise RuntimeError(f"call setup() before requesting the {split} dataloader")
        images, labels = self._splits[split]
        batch_size = self.batch_size if train else self.eval_batch_size
        return batch_loader(images, labels, batch_size, train, self.seed, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The test split; or, for the final evaluation, one loader per split in
        ``eval_splits`` (set by ``project.train``: ``("train", "val", "test")``)."""
        if self.eval_splits == ("test",):
            return self._loader("test", train=False)
        return [self._loader(split, train=False) for split in self.eval_splits]

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def train_eval_dataloader(self) -> DataLoader:
        """The train split in fixed order, for evaluating on train (augmentation only happens
        inside ``trainer.fit``'s training loop, so it is off here too)."""
        return self._loader("train", train=False)

    # ----------------------------------------------------------------- batch transform
    def transform_batch(self, images: Tensor, train: bool) -> Tensor:
        """uint8 ``(B, 3, H, W)`` -> normalized float32 ``(B, 3, H, W)``, augmented if ``train``.

        Public so that loops without Lightning apply exactly the same transform.
        """
        if train and self.augment:
            x = augment_batch(images, self._aug_generator(images.device), PADDING)
        else:
            x = to_float(images)
        if self.normalize == "none":
            return x
        mean, std = self._stats_on(x.device)
        return normalize_batch(x, mean, std)

    def _stats_on(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """(mean, std) ``(3,)`` on ``device``, cached: no tiny host->device copy per batch."""
        cached = self._device_stats.get(device)
        if cached is None or cached[0] is not self.mean:
            cached = (self.mean, self.mean.to(device), self.std.to(device))
            self._device_stats[device] = cached
        return cached[1], cached[2]

    def _aug_generator(self, device: torch.device) -> torch.Generator:
        """A generator per device, re-seeded from (seed, epoch) at each new epoch: the
        augmentation of epoch k is the same whether or not the run was resumed before it."""
        epoch = int(getattr(self.trainer, "current_epoch", 0) or 0)
        gen, gen_epoch = self._aug_generators.get(device, (None, None))
        if gen is None or gen_epoch != epoch:
            gen = gen or torch.Generator(device=device)
            gen.manual_seed((self.seed + 1_000_003) * 1_000_033 + epoch)
            self._aug_generators[device] = (gen, epoch)
        return gen

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        if images.dtype != torch.uint8:
            return batch  # already transformed (e.g. a user-supplied loader)
        training = self.trainer is not None and bool(self.trainer.training)
        return self.transform_batch(images, training), labels
