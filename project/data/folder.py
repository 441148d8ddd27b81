"""ImageFolder-layout datasets as a data source: ``FolderDataModule``, decoding once into uint8
tensors with an on-disk cache.

Layout: ``<root>/train/<class>/*.png|jpg|...`` and ``<root>/test/<class>/...``, scanned with
torchvision's ``ImageFolder`` helpers so class order and accepted extensions are identical.

Decoding tens of thousands of small files is slow (seconds to a minute), so the decoded tensors are
saved to a ``.pt`` cache whose name hashes the absolute path, image size, and every file's
relative path, size and mtime: any added, removed or modified image gives a new cache file.

Cache location: ``cache_dir`` when given; else ``<root>/.cache`` when ``root`` is writable (its
permission bits allow writing: a read-only shared copy is never written into, even by root); else
``~/.cache/normres/folders``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from project.data.datamodule import ImageDataModule
from project.errors import UserError

SPLITS = ("train", "test")
_CACHE_VERSION = 1


def check_folder_root(root: Path) -> None:
    """Raise UserError unless ``root`` is a directory holding ``train/`` and ``test/``."""
    if not root.is_dir():
        raise UserError(
            f"data.root={str(root)!r} does not exist or is not a directory. For data=folder it "
            f"must be an ImageFolder root holding train/<class>/<images> and "
            f"test/<class>/<images>; set data.root to such a directory "
            f"(e.g. data.root=../shared/data/cifar10-mini)."
        )
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        present = sorted(p.name for p in root.iterdir())[:10]
        raise UserError(
            f"data.root={str(root)!r} has no {' and no '.join(m + '/' for m in missing)} "
            f"subdirectory (it contains: {present or 'nothing'}). data=folder needs "
            f"<root>/train/<class>/<images> and <root>/test/<class>/<images>, one subfolder per "
            f"class; point data.root at the directory that contains train/ and test/."
        )


def folder_class_names(root: Path) -> list[str]:
    """Sorted class subfolder names of ``<root>/train`` (ImageFolder's order and label indices)."""
    check_folder_root(root)
    try:
        classes, _ = find_classes(str(root / "train"))
    except FileNotFoundError as err:
        raise UserError(
            f"{str(root / 'train')!r} has no class subfolders ({err}). data=folder needs one "
            f"subfolder per class, e.g. train/cat/0001.png, train/dog/0002.png; create them or "
            f"point data.root at a directory laid out that way."
        ) from err
    if len(classes) < 2:
        raise UserError(
            f"{str(root / 'train')!r} has {len(classes)} class subfolder(s) ({classes}); a "
            f"classifier needs at least two. data=folder expects one subfolder per class, e.g. "
            f"train/cat/0001.png and train/dog/0002.png (and the same classes under test/)."
        )
    return classes


def _scan(split_dir: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """(path, label) of every image file in ``split_dir`` (ImageFolder order)."""
    try:
        return make_dataset(str(split_dir), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as err:
        raise UserError(
            f"{str(split_dir)!r} contains no images for some classes ({err}). Every class "
            f"subfolder of train/ must also exist in test/ and hold at least one image file with "
            f"one of the extensions {', '.join(IMG_EXTENSIONS)}; add the images or remove the "
            f"empty class folders."
        ) from err


#: What PIL raises for a file it cannot decode (truncated, not an image, bad header).
DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError)


def read_image(path: str | Path, size: int) -> np.ndarray:
    """One image file as RGB uint8 ``(size, size, 3)``: any mode (grayscale, RGBA, palette, ...)
    converted to RGB, other sizes resized (bilinear). Raises one of ``DECODE_ERRORS``.

    The one decoding of training images, shared by ``project.predict`` so new images are
    prepared exactly as the training ones were.
    """
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _decode(path: str, size: int) -> np.ndarray:
    """``read_image``, a failure turned into a UserError naming the file."""
    try:
        return read_image(path, size)
    except DECODE_ERRORS as err:
        raise UserError(
            f"Could not decode image file {path!r} ({type(err).__name__}: {err}). data=folder "
            f"reads every file with an image extension under train/ and test/; delete or replace "
            f"this file (it may be truncated or not an image at all)."
        ) from err


def decode_files(paths: list[str], size: int, threads: int | None = None) -> Tensor:
    """Decode image files in parallel -> uint8 ``(N, 3, size, size)``.

    Threads help because PIL releases the GIL while reading and decoding.
    """
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    threads = threads or min(8, 2 * (os.cpu_count() or 1))

    def work(i: int) -> None:
        out[i] = _decode(paths[i], size)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        # list() re-raises the first worker exception (a UserError naming the bad file).
        list(pool.map(work, range(len(paths)), chunksize=256))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def default_cache_dir(root: Path) -> Path:
    """``<root>/.cache`` if ``root`` is writable by its permission bits, else a per-user dir."""
    try:
        writable = bool(root.stat().st_mode & stat.S_IWUSR) and os.access(root, os.W_OK)
    except OSError:
        writable = False
    if writable:
        return root / ".cache"
    return Path(os.path.expanduser("~")) / ".cache" / "normres" / "folders"


def _cache_key(root: Path, split: str, samples: list[tuple[str, int]], size: int) -> str:
    h = hashlib.sha1(f"v{_CACHE_VERSION}|{root}|{split}|{size}|{len(samples)}".encode())
    for path, label in samples:
        st = os.stat(path)
        h.update(f"{os.path.relpath(path, root)}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_folder_split(
    root: Path,
    split: str,
    classes: list[str],
    image_size: int = 32,
    cache: bool = True,
    cache_dir: Path | None = None,
) -> tuple[Tensor, Tensor]:
    """Load ``<root>/<split>`` as tensors, decoding only when no valid cache file exists.

    Args:
        root: ImageFolder root (holds ``train/`` and ``test/``), absolute.
        split: ``"train"`` or ``"test"``.
        classes: class names from ``folder_class_names(root)``; labels index into it.
        cache_dir: where cache files go (default: ``default_cache_dir(root)``).

    Returns:
        images: uint8 ``(N, 3, image_size, image_size)``; labels: int64 ``(N,)``.
    """
    split_dir = root / split
    test_classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if split != "train" and test_classes != classes:
        raise UserError(
            f"The class subfolders of {str(split_dir)!r} ({test_classes[:10]}...) differ from "
            f"those of {str(root / 'train')!r} ({classes[:10]}...). Labels are assigned by "
            f"sorted folder name, so both splits need exactly the same class folders; add or "
            f"rename folders."
        )
    samples = _scan(split_dir, {c: i for i, c in enumerate(classes)})
    if not samples:
        raise UserError(f"{str(split_dir)!r} contains no images; add images to its class folders.")

    cache_file = None
    if cache:
        cache_dir = cache_dir or default_cache_dir(root)
        key = _cache_key(root, split, samples, image_size)
        cache_file = cache_dir / f"{split}-{image_size}px-{key}.pt"
        if cache_file.is_file():
            try:
                blob = torch.load(cache_file, weights_only=True)
                return blob["images"], blob["labels"]
            except Exception:  # a corrupt/partial cache is just rebuilt
                pass

    images = decode_files([p for p, _ in samples], image_size)
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    if cache_file is not None:
        _save_atomic(cache_file, {"images": images, "labels": labels})
    return images, labels


def _save_atomic(path: Path, blob: dict) -> None:
    """Write via a temp file + rename so concurrent runs never read a half-written cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(blob, tmp)
        os.replace(tmp, path)
    except OSError:
        # Caching is an optimisation only: an unwritable cache dir must not stop training.
        pass


class FolderDataModule(ImageDataModule):
    """Any ImageFolder tree ``<root>/train/<class>/*`` + ``<root>/test/<class>/*``.

    Images are resized to uint8 ``(N, 3, image_size, image_size)``; labels index the sorted class
    folder names. The root layout is checked on construction (it reads only directory names).

    Args:
        root: the directory holding ``train/`` and ``test/``.
        image_size: side length every image is resized to (bilinear when it differs).
        cache: keep the decoded tensors in a ``.pt`` file (see the module doc for its location).
        cache_dir: where cache files go instead of the default.
        **common: the shared arguments of ``ImageDataModule`` (batch size, split, ...).
    """

    name = "folder"

    def __init__(
        self,
        root: str,
        image_size: int = 32,
        cache: bool = True,
        cache_dir: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if root is None:
            raise ValueError("FolderDataModule needs a root directory")
        self.root = Path(root).expanduser().resolve()
        self.image_size = image_size
        self.cache = cache
        self.cache_dir = Path(cache_dir).expanduser().resolve() if cache_dir else None
        # A wrong root should fail now, with the data config, rather than after the model is built.
        self._names = self._class_names()

    def _class_names(self) -> list[str]:
        return folder_class_names(self.root)

    def prepare_data(self) -> None:
        """Decode and cache both splits once (on rank 0), so other ranks only read the cache."""
        if self.cache:
            for split in SPLITS:
                self._load_split(split)

    def _load_split(self, split: str) -> tuple[Tensor, Tensor]:
        return load_folder_split(
            self.root, split, self.class_names, self.image_size, self.cache, self.cache_dir
        )
