"""Run directories written by hand, as `python -m project.train` leaves them (results.json,
csv/metrics.csv, test_predictions.npz), for the report tests: no training needed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from project.results import METRIC_KEYS

EPOCHS = 3
CLASSES = ["c0", "c1", "c2"]


def write_run(
    path: Path,
    norm: str,
    seed: int,
    test_acc: float,
    val_acc: float = 0.5,
    batch_size: int = 128,
    status: str = "completed",
    columns: dict[str, list[float]] | None = None,
    pred: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> Path:
    """A run dir as training leaves it: results.json, csv/metrics.csv, maybe predictions."""
    path.mkdir(parents=True)
    metrics = {k: 0.5 for k in METRIC_KEYS}
    metrics.update({"test/acc": test_acc, "test/f1_micro": test_acc, "val/acc": val_acc})
    metrics["test/f1_macro"] = test_acc - 0.01
    overrides = [f"norm={norm}", f"batch_size={batch_size}", f"seed={seed}"]
    results = {
        "status": status,
        "metrics": metrics if status == "completed" else dict.fromkeys(METRIC_KEYS),
        "best_epoch": EPOCHS - 1,
        "epochs": EPOCHS,
        "wall_time_s": 10.0 + seed,
        "variant": norm,
        "overrides": overrides,
        "config": {"model": "resnet", "n": 2, "norm": norm, "batch_size": batch_size,
                   "lr": 0.1, "seed": seed},
        "class_names": CLASSES,
        "confusion_matrix": {"test": [[5, 1, 0], [1, 4, 1], [0, 2, 6]]},
    }  # fmt: skip
    (path / "results.json").write_text(json.dumps(results))
    rows = []
    for e in range(EPOCHS):
        row = {"epoch": e, "step": 10 * e + 9, "lr-SGD": 0.1 / (e + 1)}
        row.update({"train/acc": 0.3 + 0.1 * e + 0.01 * seed, "val/acc": 0.3 + 0.1 * e})
        row.update({"train/loss_epoch": 2.0 - 0.5 * e, "val/loss": 2.1 - 0.5 * e})
        row.update({name: values[e] for name, values in (columns or {}).items()})
        rows.append(row)
    (path / "csv").mkdir()
    with (path / "csv" / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if pred is not None:
        np.savez(path / "test_predictions.npz", pred=pred.astype(np.int64),
                 target=target.astype(np.int64))  # fmt: skip
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
