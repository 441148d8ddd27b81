"""The training config the framework and data parts run with: `conf/` composed as
`python -m project.train` composes it, plus which data to use.

Composing the real config (rather than building model and data by hand) keeps the benchmark on
the code path users run: same data module options, model, norm options and optimiser.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, open_dict

from project.data.folder import folder_class_names
from project.errors import UserError
from project.training.compose import compose_job_config
from project.training.validation import validate_config

REPO = Path(__file__).resolve().parents[2]
DEFAULT_FOLDER = REPO.parent / "shared" / "data" / "cifar10-mini"
# A 256-image validation split: validation is not timed, so it is kept small (and stays 1 batch).
FOLDER = ["data=folder", "data.val_size=256"]
# Synthetic images have augmentation off by default; on here, so the pipeline does CIFAR's work.
SYNTHETIC = ["data=synthetic", "data.train_size=4096", "data.val_size=256", "data.augment=true"]
QUICK = ["data=synthetic", "data.train_size=128", "data.val_size=32", "data.image_size=16",
         "data.augment=true"]  # fmt: skip


def data_choice(root: str | None, quick: bool) -> tuple[list[str], str | None]:
    """Hydra data overrides and the ImageFolder root (None: synthetic images).

    `--data ROOT` when given (checked here, so a wrong path fails before any part runs); else
    the offline CIFAR-10 copy when present, else synthetic images; `--quick`: tiny synthetic
    16x16 images unless a folder is named.
    """
    if root is not None:
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise UserError(
                f"--data {root}: no such folder. Pass an ImageFolder root with train/ and test/ "
                f"subfolders (e.g. --data ../shared/data/cifar10-mini), or leave --data out to "
                f"use that copy when it exists, else synthetic images."
            )
        folder_class_names(path)  # raises UserError for a wrong layout
        return FOLDER, str(path)
    if quick:
        return QUICK, None
    if DEFAULT_FOLDER.is_dir():
        return FOLDER, str(DEFAULT_FOLDER)
    return SYNTHETIC, None


def compose_run_config(
    overrides: list[str], root: str | None, run_dir: Path | None = None
) -> DictConfig:
    """The validated config `python -m project.train <overrides>` would run in `run_dir`, with
    `data.root` set to `root` (see `compose_job_config`)."""
    cfg = compose_job_config(overrides, run_dir)
    if root is not None:
        with open_dict(cfg):
            cfg.data.root = root  # set here, not as an override: a path needs no Hydra quoting
    validate_config(cfg)
    return cfg
