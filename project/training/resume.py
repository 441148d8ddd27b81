"""Continuing a run in its own directory: checkpoint, CSV history and W&B run id.

A run killed at any point resumes from `checkpoints/last.ckpt` (written at the end of every epoch,
and on SIGTERM). Lightning restores weights, optimiser, scheduler, callbacks (early stopping,
best checkpoint) and the epoch; the data order and augmentation are seeded by (seed, epoch), so a
resumed run replays exactly what the uninterrupted run would have done. What Lightning does not
keep is the history outside the checkpoint: its CSVLogger deletes an existing metrics.csv, and
W&B would start a new run. This module keeps both.
"""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

import torch
from lightning.pytorch.loggers import CSVLogger

from project.errors import UserError


def last_checkpoint(run_dir: Path) -> Path:
    """`resume=true`: the run dir's last checkpoint, which must exist."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise UserError(
            f"`resume=true` but there is nothing to resume in {run_dir}: no "
            f"checkpoints/last.ckpt. Resume continues a run in its own directory, so pass that "
            f"directory, e.g. `python -m project.train resume=true hydra.run.dir=outputs/<date>/"
            f"<time>` with the same overrides as the original run; or drop `resume=true` to "
            f"start a new run."
        )
    return last


def checkpoint_position(path: Path) -> tuple[int, int]:
    """(epoch, global_step) stored in a Lightning checkpoint."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        return int(ckpt["epoch"]), int(ckpt["global_step"])
    except Exception as err:
        raise UserError(
            f"{path} cannot be resumed from: it is not a readable Lightning checkpoint ({err}). "
            f"It may be truncated by a crash during saving; delete it and resume from an "
            f"earlier copy, or start a new run without `resume=true`."
        ) from err


def csv_history_until(csv_path: Path, epoch: int, step: int) -> list[dict]:
    """The rows of a CSVLogger metrics file up to the checkpoint (epoch, step), empty cells
    dropped; later rows belong to the interrupted epoch, which the resumed run logs again."""
    if not csv_path.is_file():
        return []
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = []
    for row in rows:
        row_epoch = int(row["epoch"]) if row.get("epoch") else -1
        row_step = int(row["step"]) if row.get("step") else -1
        if row_epoch < epoch or (row_epoch == epoch and row_step <= step):
            kept.append({k: v for k, v in row.items() if v not in ("", None)})
    return kept


def resumed_csv_logger(run_dir: Path, ckpt: Path | None) -> CSVLogger:
    """A CSVLogger on <run dir>/csv that, when resuming, starts from the kept history."""
    logger = CSVLogger(save_dir=str(run_dir), name="csv", version="")
    if ckpt is not None:
        epoch, step = checkpoint_position(ckpt)
        history = csv_history_until(run_dir / "csv" / "metrics.csv", epoch, step)
        writer = logger.experiment  # creating the writer removes the old file...
        writer.metrics.extend(history)  # ...so queue the kept rows to be written first
    return logger


def wandb_run_id(run_dir: Path) -> str:
    """A W&B run id stored in the run dir, so a resumed run continues the same W&B run."""
    path = run_dir / "wandb_run_id.txt"
    if path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id
