"""Validation of a data config (``cfg.data``) that needs no disk access and builds nothing.

``validate_data_config`` runs before anything is built, so a bad config fails before any data is
read or training starts, with a message naming the Hydra key (``data.<name>``) and a valid example.
The data modules themselves keep only cheap invariants (plain ``ValueError``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from hydra.utils import get_class

from project.data.batches import validation_count
from project.data.cifar import CIFAR_NUM_CLASSES, CIFAR_TRAIN_SIZE
from project.data.datamodule import NORMALIZE, ImageDataModule
from project.errors import UserError


def unknown_dataset(key: str, value: Any, valid: tuple[str, ...]) -> UserError:
    return UserError(
        f"Unknown dataset {key}={value!r}. Valid datasets are {', '.join(valid)}: "
        f"pick one (e.g. data=cifar10, or data=synthetic to work without any files)."
    )


def data_arguments(data_cfg: Mapping) -> tuple[type, dict[str, Any]]:
    """The class ``data_cfg["_target_"]`` names and the arguments it would get: the config's keys
    over the constructor defaults of the class and of its ``ImageDataModule`` bases (a source
    passes the shared arguments on as ``**common``, so its own signature does not list them)."""
    cls = get_class(str(data_cfg["_target_"]))
    args: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if issubclass(klass, ImageDataModule) and "__init__" in vars(klass):
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.default is not p.empty:
                    args[p.name] = p.default
    args.update((k, v) for k, v in data_cfg.items() if not str(k).startswith("_"))
    return cls, args


def dataset_name(data_cfg: Mapping) -> str | None:
    """The source a data config builds (``cifar10``, ``cifar100``, ``folder``, ``synthetic``):
    the ``name`` argument where the class takes one (CIFAR), else the class's ``name``.

    Never raises (summaries of failed runs read it): None when ``_target_`` names no class.
    """
    try:
        return _source_name(*data_arguments(data_cfg))
    except Exception:  # missing/unimportable _target_: the validator reports that, not a summary
        return None


def _source_name(cls: type, args: dict[str, Any]) -> str:
    return str(args.get("name") or getattr(cls, "name", cls.__name__))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def validate_data_config(data_cfg: Mapping) -> None:
    """Raise UserError for the first invalid data setting; checks that need no disk access.

    ``data_cfg`` is ``cfg.data`` (``_target_`` plus constructor arguments), before instantiation.
    """
    cls, args = data_arguments(data_cfg)
    name = args.get("name")
    if "name" in args and name not in CIFAR_NUM_CLASSES:
        raise unknown_dataset("data.name", name, tuple(CIFAR_NUM_CLASSES))
    dataset = _source_name(cls, args)
    for key in ("batch_size", "eval_batch_size"):
        value = args.get(key)
        if not (_positive_int(value) or (value is None and key == "eval_batch_size")):
            raise UserError(
                f"data.{key}={value!r} is invalid: it must be a positive integer (>= 1), the "
                f"number of images per batch; e.g. data.{key}=128."
            )
    val_size = args.get("val_size")
    is_fraction = isinstance(val_size, float) and 0 < val_size < 1
    if not (_positive_int(val_size) or is_fraction):
        raise UserError(
            f"data.val_size={val_size!r} is invalid. It must satisfy 0 < val_size < train size: "
            f"either an int number of validation images (1 to train size - 1; the CIFAR train "
            f"split has 50000 images) or a float fraction of the train split in (0, 1), e.g. "
            f"data.val_size=5000 or data.val_size=0.1."
        )
    clean = args.get("clean_train_size")
    if not (
        clean in (None, "val")
        or (isinstance(clean, int) and not isinstance(clean, bool) and clean >= 0)
    ):
        raise UserError(
            f"data.clean_train_size={clean!r} is invalid: the number of train images evaluated "
            f"like val after each epoch (`train_clean/*`), `val` for as many as the val split, "
            f"or 0 to switch it off."
        )
    normalize = args.get("normalize")
    if normalize not in NORMALIZE:
        raise UserError(
            f"data.normalize={normalize!r} is invalid; use 'train' (per-channel stats of the "
            f"train split), 'cifar' (published CIFAR stats) or 'none'."
        )
    resident = args.get("resident")
    if not (isinstance(resident, bool) or resident == "auto"):
        raise UserError(
            f"data.resident={resident!r} is invalid; use true, false or 'auto' (keep the images "
            f"on the GPU when training on CUDA)."
        )
    workers = args.get("num_workers")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise UserError(f"data.num_workers={workers!r} must be an integer >= 0, e.g. 0.")
    _validate_source(dataset, args)


def _validate_source(dataset: str, args: dict[str, Any]) -> None:
    """The rules of one source's own arguments, and ``val_size`` against a train size known
    without reading files."""
    image_size = args.get("image_size", 32)
    if dataset in CIFAR_NUM_CLASSES and "image_size" in args:
        raise UserError(
            f"data.image_size={image_size} is not supported for {dataset}, whose images are "
            f"32x32; remove the override."
        )
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise UserError(f"data.image_size={image_size} is too small; use at least 8 (e.g. 32).")
    if dataset == "folder" and not args.get("root"):
        raise UserError(
            f"Invalid config: `data.root={args.get('root')}`. `data=folder` reads an ImageFolder "
            f"tree with train/ and test/ subfolders. Fix: e.g. "
            f"`data.root=../shared/data/cifar10-mini` (offline copy of CIFAR-10 images)."
        )
    train_size = CIFAR_TRAIN_SIZE if dataset in CIFAR_NUM_CLASSES else None
    if dataset == "synthetic":
        train_size, test_size = args.get("train_size"), args.get("test_size")
        if not (_positive_int(train_size) and train_size >= 2 and _positive_int(test_size)):
            raise UserError(
                f"data.train_size={train_size} / data.test_size={test_size} are too small for "
                f"data=synthetic; use e.g. data.train_size=2000 data.test_size=500."
            )
    if train_size is not None:
        validation_count(train_size, args["val_size"])  # raises the UserError
