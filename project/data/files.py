"""Unlabeled image files as a data source for ``trainer.predict``: ``ImageFilesDataModule``.

``find_images(path)`` lists the image files of a folder (searched recursively) or takes one image
file. Each image is decoded as the folder dataset decodes training images (``folder.read_image``:
any mode to RGB, resized bilinearly to the training size) and normalised with the checkpoint's
``data_stats`` on the device, as ``ImageDataModule`` normalises its batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from project.data.augment import normalize_batch, to_float
from project.data.folder import DECODE_ERRORS, read_image
from project.errors import UserError

#: The image files `find_images` takes (suffix, case-insensitive); every other file is skipped.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def find_images(path: Path) -> tuple[list[Path], int]:
    """``(image files in sorted path order, number of other files skipped)`` under the folder
    ``path`` (recursively), or of the single file ``path``."""
    if path.is_file():
        return ([path], 0) if is_image_file(path) else ([], 1)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    images = [p for p in files if is_image_file(p)]
    return images, len(files) - len(images)


class ImageFiles(Dataset):
    """Image files as uint8 tensors ``(3, size, size)``, decoded when an item is read (so the
    progress bar covers the decoding)."""

    def __init__(self, files: Sequence[Path], size: int) -> None:
        self.files = list(files)
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        path = self.files[index]
        try:
            pixels = read_image(path, self.size)  # (size, size, 3) uint8
        except DECODE_ERRORS as err:
            raise UserError(
                f"Cannot read the image file {path} ({type(err).__name__}: {err}). It may be "
                f"truncated or not an image despite its name; delete or replace it, or move it "
                f"out of the input folder, and run again."
            ) from None
        return torch.tensor(pixels).permute(2, 0, 1)


class ImageFilesDataModule(L.LightningDataModule):
    """Batches of unlabeled images for ``trainer.predict``: uint8 ``(B, 3, S, S)`` from the
    loader, normalised float32 ``(B, 3, S, S)`` after the transfer hook (no labels).

    Args:
        files: the image files, in output order.
        stats: the checkpoint's ``data_stats`` (``mean``, ``std``, ``normalize``, and
            ``image_size``, the side S every image is resized to; 32 when absent).
        batch_size: images per batch.
    """

    def __init__(self, files: Sequence[Path], stats: Mapping[str, Any], batch_size: int = 256):
        super().__init__()
        self.files = list(files)
        self.image_size = int(stats.get("image_size") or 32)
        self.normalize = stats.get("normalize", "train") != "none"
        self.mean = torch.tensor(stats["mean"], dtype=torch.float32)
        self.std = torch.tensor(stats["std"], dtype=torch.float32)
        self.batch_size = batch_size

    def predict_dataloader(self) -> DataLoader:
        # No worker processes: a UserError raised in a worker would come back as a traceback.
        return DataLoader(
            ImageFiles(self.files, self.image_size), batch_size=self.batch_size, shuffle=False
        )

    def on_after_batch_transfer(self, batch: Tensor, dataloader_idx: int) -> Tensor:
        x = to_float(batch)
        if not self.normalize:
            return x
        return normalize_batch(x, self.mean.to(x.device), self.std.to(x.device))
