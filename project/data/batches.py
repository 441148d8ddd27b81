"""Whole-batch loading from in-memory tensors: datasets indexed by index batches, seeded samplers.

A standard DataLoader calls ``__getitem__`` once per image and collates B samples in Python, which
on 2 CPU cores caps throughput at a few thousand images/s. Here the sampler yields a tensor of B
indices and the dataset answers with one advanced-indexing gather, so a batch costs one tensor op
whatever its size, and works the same when the tensors live on the GPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from project.errors import UserError


class TensorBatchDataset(Dataset):
    """Images ``(N, C, H, W)`` uint8 + labels ``(N,)`` int64, indexed by whole index batches."""

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        assert images.shape[0] == labels.shape[0], "images and labels must have the same length"
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: Tensor | list[int]) -> tuple[Tensor, Tensor]:
        """``index`` (B,) -> (uint8 images ``(B, C, H, W)``, int64 labels ``(B,)``)."""
        index = torch.as_tensor(index, dtype=torch.int64, device=self.images.device)
        # index_select copies whole rows; plain tensor[index] is ~10x slower on CPU for uint8.
        return self.images.index_select(0, index), self.labels.index_select(0, index)


class EpochBatchSampler(Sampler[Tensor]):
    """Yields int64 index tensors of ``batch_size`` (the last batch may be smaller).

    With ``shuffle``, epoch ``e`` uses the permutation from ``Generator().manual_seed(seed + e)``,
    so runs are reproducible and resuming at epoch ``e`` sees the same order. Lightning calls
    ``set_epoch`` before every epoch; without it the epoch counter advances on each full pass.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        self.n = n
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[Tensor]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        self.epoch += 1
        yield from order.split(self.batch_size)


def batch_loader(
    images: Tensor,
    labels: Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
) -> DataLoader:
    """DataLoader yielding ``(uint8 (B, C, H, W), int64 (B,))`` batches without per-sample work.

    ``batch_size=None`` turns off the DataLoader's own batching: each sampler item is already an
    index batch. Workers only help when the tensors are on the CPU (CUDA tensors cannot be shared
    with worker processes), so they are disabled for device-resident tensors.
    """
    on_cpu = images.device.type == "cpu"
    workers = num_workers if on_cpu else 0
    return DataLoader(
        TensorBatchDataset(images, labels),
        sampler=EpochBatchSampler(images.shape[0], batch_size, shuffle, seed),
        batch_size=None,
        num_workers=workers,
        pin_memory=False,
        persistent_workers=workers > 0,
    )


def validation_count(n: int, val_size: float | int) -> int:
    """Number of validation images ``val_size`` takes from a training split of ``n`` images.

    Raises:
        UserError: the split would leave the train or validation part empty.
    """
    n_val = round(val_size * n) if isinstance(val_size, float) else int(val_size)
    if not 0 < n_val < n:
        raise UserError(
            f"data.val_size={val_size!r} gives {n_val} validation images out of a training split "
            f"of {n}. It must satisfy 0 < val_size < {n} as an int (number of images) or be a "
            f"fraction in (0, 1) that leaves both parts non-empty; e.g. data.val_size=0.1."
        )
    return n_val


def split_indices(n: int, val_size: float | int, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded train/validation split of ``range(n)``.

    Args:
        val_size: number of validation images (int) or a fraction of ``n`` (float in (0, 1)).

    Returns:
        ``(train_idx, val_idx)``: sorted int64 tensors partitioning ``range(n)``.

    Raises:
        UserError: the split would leave the train or validation part empty.
    """
    n_val = validation_count(n, val_size)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values
