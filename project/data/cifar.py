"""CIFAR-10/100 as a data source: ``CIFARDataModule`` and loading through torchvision.

torchvision's dataset classes do the downloading, checksumming and unpickling; we only take their
``.data`` (N, 32, 32, 3) uint8 arrays and ``.targets`` and turn them into CHW tensors, with clear
errors when the files are missing.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import Tensor

from project.data.augment import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD
from project.data.datamodule import ImageDataModule
from project.errors import UserError

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR_NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
CIFAR_TRAIN_SIZE = 50_000  # both CIFAR-10 and CIFAR-100

_DATASET_CLASS = {
    "cifar10": torchvision.datasets.CIFAR10,
    "cifar100": torchvision.datasets.CIFAR100,
}
_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_ARCHIVE = {"cifar10": "cifar-10-python.tar.gz", "cifar100": "cifar-100-python.tar.gz"}
_PRETTY = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
_PUBLISHED = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "cifar100": (CIFAR100_MEAN, CIFAR100_STD)}


def cifar_class_names(name: str, root: str | Path) -> list[str]:
    """Class names without loading the images.

    CIFAR-10 names are fixed; CIFAR-100 names are read from ``<root>/cifar-100-python/meta`` when
    it exists, otherwise placeholders ``class_0`` .. ``class_99`` (only used for display).
    """
    if name == "cifar10":
        return list(CIFAR10_CLASSES)
    meta = Path(root) / _FOLDER[name] / "meta"
    if meta.is_file():
        try:
            with open(meta, "rb") as f:
                names = pickle.load(f, encoding="latin1")["fine_label_names"]
            if len(names) == CIFAR_NUM_CLASSES[name]:
                return list(names)
        except (OSError, KeyError, pickle.UnpicklingError, EOFError):
            pass  # a broken meta file is reported properly when the data is loaded
    return [f"class_{i}" for i in range(CIFAR_NUM_CLASSES[name])]


def _missing_message(name: str, root: Path, reason: str) -> str:
    pretty = _PRETTY[name]
    return (
        f"{pretty} is not available under data.root={str(root)!r} ({reason}). "
        f"Put the extracted folder at {str(root / _FOLDER[name])!r} or the archive "
        f"{_ARCHIVE[name]!r} in {str(root)!r} (it is extracted on the next run with "
        f"data.download=true), or point data.root at the directory that holds them. Without "
        f"network access you can also use the offline options data=synthetic (generated images, "
        f"no files) or data=folder data.root=../shared/data/cifar10-mini (real CIFAR-10 "
        f"images as PNGs)."
    )


def download_cifar(name: str, root: str | Path) -> None:
    """Make sure the CIFAR files are in ``root``, downloading them if needed.

    Raises:
        UserError: the files are missing and the download failed (e.g. no network).
    """
    root = Path(root).resolve()
    cls = _DATASET_CLASS[name]
    try:
        # Constructing with download=True is torchvision's own "download if absent" path; it also
        # extracts an archive that was put into root by hand.
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except UserError:
        raise
    except Exception as err:  # URLError, OSError, RuntimeError, tarfile errors, ...
        raise UserError(
            _missing_message(name, root, f"download failed: {type(err).__name__}: {err}")
        ) from err


def load_cifar(name: str, root: str | Path, train: bool) -> tuple[Tensor, Tensor]:
    """Load one CIFAR split from files already on disk.

    Returns:
        images: uint8 ``(N, 3, 32, 32)`` (N = 50,000 train / 10,000 test for the real data).
        labels: int64 ``(N,)``.

    Raises:
        UserError: the files are missing or corrupted.
    """
    root = Path(root).resolve()
    try:
        ds = _DATASET_CLASS[name](str(root), train=train, download=False)
    except RuntimeError as err:
        raise UserError(_missing_message(name, root, str(err).rstrip("."))) from err
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    return images, labels


class CIFARDataModule(ImageDataModule):
    """CIFAR-10 or CIFAR-100 (50,000 train / 10,000 test images, uint8 ``(N, 3, 32, 32)``).

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        root: directory holding (or receiving) torchvision's CIFAR folder or archive.
        download: fetch the files in ``prepare_data`` when they are missing.
        **common: the shared arguments of ``ImageDataModule`` (batch size, split, ...).
    """

    def __init__(
        self, name: str = "cifar10", root: str = "data", download: bool = True, **common: Any
    ) -> None:
        super().__init__(**common)
        if name not in CIFAR_NUM_CLASSES:
            raise ValueError(f"name must be one of {tuple(CIFAR_NUM_CLASSES)}, not {name!r}")
        self.name = name
        self.root = Path(root).expanduser().resolve()
        self.download = download

    def _class_names(self) -> list[str]:
        return cifar_class_names(self.name, self.root)

    def published_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return _PUBLISHED[self.name]

    def prepare_data(self) -> None:
        """Download the files once (Lightning calls this on rank 0 only)."""
        if self.download:
            download_cifar(self.name, self.root)

    def _load_split(self, split: str) -> tuple[Tensor, Tensor]:
        return load_cifar(self.name, self.root, train=split == "train")
