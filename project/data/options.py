"""Validation of ``ImageDataModule`` options that needs no disk access.

It runs in the constructor, so a bad config fails before any data is read or training starts,
with a message naming the Hydra key (``data.<name>``) and a valid example.
"""

from __future__ import annotations

from project.errors import UserError

DATASETS = ("cifar10", "cifar100", "folder", "synthetic")
NORMALIZE = ("train", "cifar", "none")


def validate_options(
    dataset: str,
    batch_size: int,
    eval_batch_size: int | None,
    val_size: float | int,
    normalize: str,
    resident: bool | str,
    num_workers: int,
    image_size: int,
    train_size: int,
    test_size: int,
) -> None:
    """Checks that need no disk access, so bad configs fail before anything is loaded."""
    if dataset not in DATASETS:
        raise UserError(
            f"Unknown dataset data.dataset={dataset!r}. Valid datasets are {', '.join(DATASETS)}: "
            f"pick one (e.g. data=cifar10, or data=synthetic to work without any files)."
        )
    for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if value is None and name == "eval_batch_size":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(
                f"data.{name}={value!r} is invalid: it must be a positive integer (>= 1), the "
                f"number of images per batch; e.g. data.{name}=128."
            )
    is_int = isinstance(val_size, int) and not isinstance(val_size, bool)
    valid_val = (is_int and val_size >= 1) or (isinstance(val_size, float) and 0 < val_size < 1)
    if not valid_val:
        raise UserError(
            f"data.val_size={val_size!r} is invalid. It must satisfy 0 < val_size < train size: "
            f"either an int number of validation images (1 to train size - 1; the CIFAR train "
            f"split has 50000 images) or a float fraction of the train split in (0, 1), e.g. "
            f"data.val_size=5000 or data.val_size=0.1."
        )
    if normalize not in NORMALIZE:
        raise UserError(
            f"data.normalize={normalize!r} is invalid; use 'train' (per-channel stats of the "
            f"train split), 'cifar' (published CIFAR stats) or 'none'."
        )
    if not (isinstance(resident, bool) or resident == "auto"):
        raise UserError(
            f"data.resident={resident!r} is invalid; use true, false or 'auto' (keep the images "
            f"on the GPU when training on CUDA)."
        )
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise UserError(f"data.num_workers={num_workers!r} must be an integer >= 0, e.g. 0.")
    if dataset in ("cifar10", "cifar100") and image_size != 32:
        raise UserError(
            f"data.image_size={image_size} is not supported for {dataset}, whose images are "
            f"32x32; remove the override or set data.image_size=32."
        )
    if image_size < 8:
        raise UserError(f"data.image_size={image_size} is too small; use at least 8 (e.g. 32).")
    if dataset == "synthetic" and (train_size < 2 or test_size < 1):
        raise UserError(
            f"data.train_size={train_size} / data.test_size={test_size} are too small for "
            f"data=synthetic; use e.g. data.train_size=2000 data.test_size=500."
        )
