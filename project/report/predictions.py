"""Reading a run's saved test predictions, `test_predictions.npz`, for the paired bootstrap.

Training writes it beside results.json with two int64 arrays in the test split's fixed order:
`pred` (the predicted class of each test image) and `target` (its true class). Two runs can only
be compared image by image when their targets agree, i.e. they were scored on the same test set
in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PREDICTIONS_FILE = "test_predictions.npz"


@dataclass(frozen=True)
class Predictions:
    pred: np.ndarray
    target: np.ndarray


def read_predictions(run_dir: Path) -> Predictions | None:
    """The run's test predictions, or None when the file is missing, unreadable or malformed."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    try:
        # allow_pickle=False: a report must never execute code from a file it reads.
        with np.load(path, allow_pickle=False) as data:
            pred, target = np.asarray(data["pred"]), np.asarray(data["target"])
    except (OSError, KeyError, ValueError):
        return None
    if pred.ndim != 1 or pred.shape != target.shape:
        return None
    return Predictions(pred.astype(np.int64), target.astype(np.int64))
