"""The results schema: what a run records in `results.json`, shared by training, report and
evaluate.

    {"status": "completed" | "diverged" | "failed" | "interrupted",
     "metrics": {"train/acc": ..., ..., "test/f1_macro": ...},   # METRIC_KEYS, best checkpoint
     "best_epoch", "epochs", "params", "model_size_mb", "wall_time_s", "run_name", "variant",
     "experiment", "overrides", "config": {flat settings}, "class_names", "confusion_matrix",
     "debug": true | false (a `debug=...` preset: reports leave the run out), ...}

Sizes are in MB of 10^6 bytes everywhere (`MB`). A run's final evaluation covers `SPLITS`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from project.io import atomic_write_json

RESULTS_FILE = "results.json"
#: Per-image test predictions of the evaluated checkpoint (npz: int64 `pred`, `target`).
TEST_PREDICTIONS = "test_predictions.npz"
#: The splits of a run's final evaluation, in table order (train: a clean pass, no augmentation).
SPLITS = ("train", "val", "test")
#: Per split: accuracy, micro and macro F1.
METRIC_NAMES = ("acc", "f1_micro", "f1_macro")
#: The nine final numbers of a run, `<split>/<metric>`.
METRIC_KEYS = tuple(f"{s}/{m}" for s in SPLITS for m in METRIC_NAMES)
STATUSES = ("completed", "diverged", "failed", "interrupted")
#: Statuses a sweep counts as failures.
FAILED_STATUSES = ("failed",)
MB = 10**6
#: Overrides that change how a run is reached or shown, never what it trains: resuming, where
#: outputs go, the logging cadence and the progress bar. The report leaves them out of a
#: variant's settings, the study queue out of a run's recipe (batch_size_study logs every 1,280
#: images: every 160 steps at batch 8, every 10 at batch 128).
NON_RESULT_KEYS = ("resume", "trainer.log_every_n_steps", "trainer.enable_progress_bar")
NON_RESULT_PREFIXES = ("hydra.",)


def override_key(override: str) -> str:
    """The key an override addresses: `+key=v`, `++key=v` and `~key` all address `key`."""
    return override.split("=", 1)[0].lstrip("+~")


def affects_result(key: str) -> bool:
    """Whether the override key `key` (as `override_key` gives it) can change what a run trains."""
    return key not in NON_RESULT_KEYS and not key.startswith(NON_RESULT_PREFIXES)


def tensor_megabytes(state_dict: Mapping[str, Any]) -> float:
    """Size in MB (10^6 bytes) of the tensors of a state_dict (what a weights file holds)."""
    return sum(t.numel() * t.element_size() for t in state_dict.values()) / MB


def file_megabytes(path: str | Path) -> float:
    return Path(path).stat().st_size / MB


def _get(cfg: Mapping, dotted: str) -> Any:
    """`cfg["a"]["b"]` for "a.b", or None if any level is missing or unresolvable."""
    node: Any = cfg
    for part in dotted.split("."):
        try:
            node = node.get(part) if hasattr(node, "get") else None
        except Exception:  # an interpolation that cannot resolve (e.g. outside a Hydra job)
            return None
        if node is None:
            return None
    return node


def _short_target(target: Any) -> str | None:
    return str(target).rsplit(".", 1)[-1] if target else None


def _dataset_name(cfg: Mapping) -> str | None:
    from project.data.options import dataset_name

    data = _get(cfg, "data")
    return dataset_name(data) if data is not None else None


def config_summary(cfg: Mapping) -> dict[str, Any]:
    """The settings a comparison table shows, flat. Never raises: a failed run's config may hold
    any value a user typed."""
    model = (_short_target(_get(cfg, "model._target_")) or "").lower()
    return {
        "model": "resnet_fcn" if _get(cfg, "model.head") == "conv" else model,
        "n": _get(cfg, "model.n"),
        "head": _get(cfg, "model.head"),
        "shortcut": _get(cfg, "model.shortcut"),
        "activation": _get(cfg, "model.activation"),
        "norm": _get(cfg, "norm_name"),
        "batch_size": _get(cfg, "batch_size"),
        "optimizer": (_short_target(_get(cfg, "optimizer._target_")) or "").lower(),
        "lr": _get(cfg, "optimizer.lr"),
        "weight_decay": _get(cfg, "optimizer.weight_decay") or 0.0,
        "l1": _get(cfg, "regularization.l1"),
        "scheduler": _short_target(_get(cfg, "scheduler._target_")),
        "data": _dataset_name(cfg),
        "augment": _get(cfg, "data.augment"),
        "max_epochs": _get(cfg, "trainer.max_epochs"),
        "seed": _get(cfg, "seed"),
    }


def write_results(run_dir: Path, cfg: Mapping, status: str, **fields) -> Path:
    """Write <run_dir>/results.json atomically. `fields` fill or override the defaults."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; valid: {', '.join(STATUSES)}")
    record = {
        "status": status,
        "best_epoch": None,
        "epochs": 0,
        "params": None,
        "model_size_mb": None,
        "wall_time_s": None,
        "metrics": dict.fromkeys(METRIC_KEYS),
        "run_name": _get(cfg, "run_name"),
        "variant": _get(cfg, "norm_name"),
        "experiment": _get(cfg, "experiment_name"),
        "config": config_summary(cfg),
        "debug": bool(_get(cfg, "debug_run")),
    }
    record.update(fields)
    return atomic_write_json(Path(run_dir) / RESULTS_FILE, record)


def read_results(run_dir: Path) -> dict[str, Any] | None:
    """The run's results.json, or None if it is missing or unreadable."""
    try:
        record = json.loads((Path(run_dir) / RESULTS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def as_float(value: Any) -> float | None:
    """A metric value as a float (NaN kept: a diverged run's), or None if missing/not a number."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
