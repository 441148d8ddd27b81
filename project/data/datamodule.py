"""``ImageDataModule``: the base every data source shares (splits, loaders, batch transform).

Pipeline: a source (``CIFARDataModule``, ``FolderDataModule``, ``SyntheticDataModule``) decodes
each image once into a uint8 tensor ``(N, 3, H, W)``; loaders gather whole batches by index (see
``batches.py``); on the training device ``on_after_batch_transfer`` converts to float, augments
(train only) and normalizes with batched tensor ops (see ``augment.py``).

Splits: the source's train split is divided into train/val by a permutation seeded with ``seed``;
the test split is only served by ``test_dataloader``/``predict_dataloader``/``eval_dataloaders``
(the first two serve ``eval_splits``, the test split by default).

A source implements ``name``, ``_class_names()`` and ``_load_split(split)`` and, when it has files
to fetch or decode ahead of time, ``prepare_data()``. Everything else is decided by constructor
arguments: nothing is written into the module from outside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from project.data.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    augment_batch,
    channel_stats,
    normalize_batch,
    to_float,
)
from project.data.batches import batch_loader, split_indices

PADDING = 4  # CIFAR convention: random 32x32 crop of the 40x40 zero-padded image
EVAL_SPLITS = ("train", "val", "test")  # what eval_splits/eval_dataloaders may name
NORMALIZE = ("train", "cifar", "none")


class ImageDataModule(L.LightningDataModule):
    """Image classification data as device-friendly uint8 tensors (base of every source).

    Batches from every loader are ``(uint8 (B, 3, H, W), int64 (B,))``; after the transfer hook
    they are ``(float32 (B, 3, H, W) normalized, int64 (B,))``. ``num_classes`` and
    ``class_names`` are available right after construction; ``split_sizes`` and ``data_stats``
    after ``setup``.

    Args:
        batch_size: training batch size; ``eval_batch_size`` (default ``max(batch_size, 256)``)
            for every other loader.
        val_size: validation images taken from the train split: an int count or a fraction.
        augment: random crop + flip on training batches.
        normalize: ``train`` (per-channel stats of the train split), ``cifar`` (published
            statistics, see ``published_stats``) or ``none``.
        seed: seeds the train/val split, the shuffling and the augmentation.
        num_workers: DataLoader workers (only used while the images stay on the CPU).
        resident: keep the images on the GPU (``auto``: when training on CUDA).
        eval_splits: the splits ``test_dataloader`` serves, in this order (one loader each when
            more than one; the final evaluation of a training run uses ``train, val, test``).
        stats: ``{"mean": [3 floats], "std": [3 floats], "normalize": ...}``, e.g. a checkpoint's
            ``data_stats``: normalise with these instead of statistics of this data's train split
            (a network must see inputs scaled as in its training). Overrides ``normalize``.
    """

    name: str  # the source's short name ("cifar10", "folder", ...): set by each subclass
    image_size: int = 32  # side of the square images; sources with other sizes set their own

    def __init__(
        self,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: float | int = 0.2,
        augment: bool = True,
        normalize: str = "train",
        seed: int = 0,
        num_workers: int = 0,
        resident: bool | str = "auto",
        eval_splits: Sequence[str] = ("test",),
        stats: Mapping[str, Any] | None = None,
        clean_train_size: int | str | None = None,
    ) -> None:
        super().__init__()
        if stats is not None:
            normalize = stats.get("normalize", "train")
        # Cheap invariants only: user-facing checks with hints are in options.validate_data_config.
        if normalize not in NORMALIZE:
            raise ValueError(f"normalize must be one of {NORMALIZE}, not {normalize!r}")
        if not eval_splits or any(s not in EVAL_SPLITS for s in eval_splits):
            raise ValueError(f"eval_splits must name splits of {EVAL_SPLITS}, not {eval_splits}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 256)
        self.val_size = val_size
        self.augment = augment
        self.normalize = normalize
        self.seed = seed
        self.num_workers = num_workers
        self.resident = resident
        self._eval_splits = tuple(eval_splits)
        self.clean_train_size = clean_train_size
        self._fixed_stats = stats is not None and normalize != "none"
        self._mean, self._std = torch.zeros(3), torch.ones(3)  # identity until setup / stats
        if self._fixed_stats:
            self._mean = torch.tensor(stats["mean"], dtype=torch.float32)
            self._std = torch.tensor(stats["std"], dtype=torch.float32)
        self._names: list[str] | None = None
        self._splits: dict[str, tuple[Tensor, Tensor]] = {}
        self._aug_generators: dict[torch.device, tuple[torch.Generator, int]] = {}
        self._device_stats: dict[torch.device, tuple[Tensor, Tensor]] = {}

    # ----------------------------------------------------------------- what a source provides
    def _class_names(self) -> list[str]:
        """Class names in label order, without decoding any image."""
        raise NotImplementedError

    def _load_split(self, split: str) -> tuple[Tensor, Tensor]:
        """Whole ``"train"`` or ``"test"`` split: uint8 ``(N, 3, H, W)``, int64 ``(N,)``, CPU."""
        raise NotImplementedError

    def published_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) per channel for ``normalize="cifar"``: CIFAR-10's unless a source knows
        better (CIFAR-100 has its own)."""
        return CIFAR10_MEAN, CIFAR10_STD

    # ----------------------------------------------------------------- metadata
    @property
    def dataset(self) -> str:
        """Alias of ``name`` (the key results and evaluation outputs are labelled with)."""
        return self.name

    @property
    def class_names(self) -> list[str]:
        if self._names is None:
            self._names = list(self._class_names())
        return list(self._names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return self._eval_splits

    @property
    def mean(self) -> Tensor:
        """Per-channel normalisation mean ``(3,)`` (zeros for ``normalize="none"``)."""
        return self._mean

    @property
    def std(self) -> Tensor:
        """Per-channel normalisation std ``(3,)`` (ones for ``normalize="none"``)."""
        return self._std

    @property
    def data_stats(self) -> dict[str, Any]:
        """What a checkpoint stores to prepare inputs as in training: ``{"mean": [3], "std": [3],
        "normalize": str, "dataset": name, "image_size": int}``; requires ``setup`` unless
        ``stats`` was given."""
        if not self._splits and not self._fixed_stats:
            raise RuntimeError("data_stats is available after setup()")
        return {
            "mean": [float(v) for v in self._mean],
            "std": [float(v) for v in self._std],
            "normalize": self.normalize,
            "dataset": self.name,
            "image_size": int(self.image_size),  # what project.predict resizes new images to
        }

    @property
    def split_sizes(self) -> dict[str, int]:
        """``{"train": n, "val": n, "test": n}``; requires ``setup``."""
        if not self._splits:
            raise RuntimeError("split_sizes is available after setup()")
        return {name: labels.shape[0] for name, (_, labels) in self._splits.items()}

    # ----------------------------------------------------------------- loading
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
            if not self._fixed_stats:
                self._mean, self._std = self._norm_stats(self._splits["train"][0])
        device = self._resident_device()
        if device is not None:
            # Moving once here means no host->device copy per batch during training.
            self._splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self._splits.items()}

    def _norm_stats(self, train_images: Tensor) -> tuple[Tensor, Tensor]:
        if self.normalize == "train":
            return channel_stats(train_images)
        if self.normalize == "cifar":
            mean, std = self.published_stats()
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

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The val split; and, with ``clean_train_size`` set (a number of images, or ``"val"``:
        as many as the val split — the training config's default), a second loader over a fixed
        random subset of the train split, evaluated like val — eval mode, no augmentation — so
        that train and val accuracy per epoch are measured the same way (the running train
        accuracy is not: it averages over an epoch of changing weights, augmented, in train
        mode)."""
        val = self._loader("val", train=False)
        subset = self._clean_train_subset()
        if subset is None:
            return val
        images, labels = self._splits["train"]
        clean = batch_loader(
            images[subset], labels[subset], self.eval_batch_size, False, self.seed, 0
        )
        return [val, clean]

    def _clean_train_subset(self) -> Tensor | None:
        n_train, n_val = self._splits["train"][1].shape[0], self._splits["val"][1].shape[0]
        if not self.clean_train_size:
            return None
        size = n_val if self.clean_train_size == "val" else int(self.clean_train_size)
        perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(self.seed + 1))
        return perm[: min(size, n_train)].sort().values.to(self._splits["train"][1].device)

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        """The ``eval_splits`` loaders: one loader when a single split (``test`` by default)."""
        loaders = self.eval_dataloaders(self._eval_splits)
        return loaders[0] if len(loaders) == 1 else loaders

    def predict_dataloader(self) -> DataLoader | list[DataLoader]:
        """The same loaders as ``test_dataloader``: labeled batches, for per-image outputs."""
        return self.test_dataloader()

    def eval_dataloaders(self, splits: Sequence[str]) -> list[DataLoader]:
        """One loader per split of ``splits``, each in fixed order and at ``eval_batch_size``
        (augmentation only happens inside ``trainer.fit``'s training loop, so none here)."""
        return [self._loader(split, train=False) for split in splits]

    def train_eval_dataloader(self) -> DataLoader:
        """The train split in fixed order, without augmentation (evaluation on train)."""
        return self.eval_dataloaders(["train"])[0]

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
        """(mean, std) ``(3,)`` on ``device``, cached: no tiny host->device copy per batch.
        The statistics are final once ``setup`` ran (or ``stats`` was given)."""
        cached = self._device_stats.get(device)
        if cached is None:
            cached = (self._mean.to(device), self._std.to(device))
            if self._splits or self._fixed_stats:
                self._device_stats[device] = cached
        return cached

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
