"""Per-epoch history from Lightning's CSVLogger `metrics.csv`.

CSVLogger writes sparse rows: a train-epoch row, a val row and step rows each fill only their own
cells, and the final test row comes last. We collapse them to one value per (epoch, column) using
the csv module only (no pandas dependency).
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Columns that are not per-epoch curves: bookkeeping, and the single row of final evaluation
# (best checkpoint on train/val/test) that training appends at the end, one epoch past the last.
_NON_CURVE = {"epoch", "step"}
_FINAL_PREFIXES = ("test/", "final/")


@dataclass
class History:
    """`columns[name]` holds one value per entry of `epochs` (NaN where nothing was logged)."""

    epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.columns and bool(np.isfinite(self.columns[name]).any())

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) restricted to epochs where `name` was logged and is finite."""
        if name not in self.columns:
            return np.zeros(0, dtype=int), np.zeros(0)
        values = self.columns[name]
        keep = np.isfinite(values)
        return self.epochs[keep], values[keep]

    def lr_columns(self) -> list[str]:
        # LearningRateMonitor names columns after the optimizer (`lr-SGD`, `lr-Adam/pg1`, ...).
        return sorted(c for c in self.columns if c.startswith("lr-"))

    def train_loss(self) -> tuple[np.ndarray, np.ndarray]:
        """Epoch-level train loss; falls back to the mean step loss when no epoch value exists."""
        if self.has("train/loss_epoch"):
            return self.series("train/loss_epoch")
        return self.series("train/loss_step_mean")


def _parse(cell: str | None) -> float | None:
    if cell is None or cell.strip() == "":
        return None
    try:
        return float(cell)  # "nan"/"inf" parse too: diverged runs log them
    except ValueError:
        return None


def find_metrics_csv(run_dir: Path) -> Path | None:
    """`csv/metrics.csv`, else the newest `csv/**/metrics.csv` (CSVLogger `version_N` dirs)."""
    direct = run_dir / "csv" / "metrics.csv"
    if direct.is_file():
        return direct
    nested = sorted((run_dir / "csv").glob("**/metrics.csv")) if (run_dir / "csv").is_dir() else []
    return nested[-1] if nested else None


def read_history(run_dir: Path) -> History:
    """Read a run's metrics CSV; a missing or unreadable file gives an empty history."""
    path = find_metrics_csv(run_dir)
    if path is None:
        return History()
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return History()
    return aggregate_rows(rows)


def aggregate_rows(rows: list[dict[str, str]]) -> History:
    """Collapse sparse CSVLogger rows to one value per epoch and column."""
    step_epoch = sorted(
        {
            (int(s), int(e))
            for r in rows
            if (s := _parse(r.get("step"))) is not None
            and (e := _parse(r.get("epoch"))) is not None
            and math.isfinite(s)
            and math.isfinite(e)
        }
    )
    steps = [s for s, _ in step_epoch]
    per_epoch: dict[str, dict[int, float]] = {}
    step_losses: dict[int, list[float]] = {}
    for row in rows:
        epoch = _row_epoch(row, steps, step_epoch)
        if epoch is None:
            continue
        for name, cell in row.items():
            if name is None or name in _NON_CURVE or name.startswith(_FINAL_PREFIXES):
                continue
            value = _parse(cell)
            if value is None:
                continue
            if name == "train/loss_step":
                step_losses.setdefault(epoch, []).append(value)
            column = per_epoch.setdefault(name, {})
            # lr: the first value is the rate the epoch trained with; otherwise the last value
            # is the epoch-end aggregate Lightning logged.
            if not (name.startswith("lr-") and epoch in column):
                column[epoch] = value
    if step_losses:
        per_epoch["train/loss_step_mean"] = {e: float(np.mean(v)) for e, v in step_losses.items()}
    epochs = sorted({e for col in per_epoch.values() for e in col})
    index = {e: i for i, e in enumerate(epochs)}
    columns = {}
    for name in sorted(per_epoch):
        values = np.full(len(epochs), np.nan)
        for e, v in per_epoch[name].items():
            values[index[e]] = v
        columns[name] = values
    return History(epochs=np.array(epochs, dtype=int), columns=columns)


def _row_epoch(
    row: dict[str, str], steps: list[int], step_epoch: list[tuple[int, int]]
) -> int | None:
    epoch = _parse(row.get("epoch"))
    if epoch is not None and math.isfinite(epoch):
        return int(epoch)
    # Rows without an epoch (e.g. LearningRateMonitor) are placed by their step. Each epoch ends
    # with rows at its last step, so the next known step at or after this one is in its epoch
    # (an lr row at an epoch's first step would otherwise land in the previous epoch).
    step = _parse(row.get("step"))
    if step is None or not math.isfinite(step) or not steps:
        return None
    i = bisect.bisect_left(steps, int(step))
    return step_epoch[min(i, len(steps) - 1)][1]
