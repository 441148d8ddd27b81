"""``make_datamodule("cifar10" | "cifar100" | "folder" | "synthetic", **kwargs)``: a data source
by its short name, for Python users and tests (configs name the class in ``_target_``)."""

from __future__ import annotations

from typing import Any

from project.data.cifar import CIFARDataModule
from project.data.datamodule import ImageDataModule
from project.data.folder import FolderDataModule
from project.data.options import unknown_dataset, validate_data_config
from project.data.synthetic import SyntheticDataModule

# short name -> (class, the arguments the name implies)
SOURCES: dict[str, tuple[type[ImageDataModule], dict[str, Any]]] = {
    "cifar10": (CIFARDataModule, {"name": "cifar10"}),
    "cifar100": (CIFARDataModule, {"name": "cifar100"}),
    "folder": (FolderDataModule, {}),
    "synthetic": (SyntheticDataModule, {}),
}
DATASETS = tuple(SOURCES)


def make_datamodule(dataset: str, **kwargs: Any) -> ImageDataModule:
    """Build the ``dataset`` source with ``kwargs``, validated exactly as a ``data=`` config.

    Raises:
        UserError: unknown ``dataset`` or an invalid argument (see ``validate_data_config``).
    """
    if dataset not in SOURCES:
        raise unknown_dataset("dataset", dataset, DATASETS)
    cls, implied = SOURCES[dataset]
    kwargs = {**implied, **kwargs}
    validate_data_config({"_target_": f"{cls.__module__}.{cls.__qualname__}", **kwargs})
    return cls(**kwargs)
