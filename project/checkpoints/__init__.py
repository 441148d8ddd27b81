"""Checkpoints: load/validate (`load`), weights-only export (`export`), run-dir paths (`paths`)."""

from project.checkpoints.export import export_weights
from project.checkpoints.load import (
    FORMAT,
    build_network,
    load_classifier,
    load_model,
    read_checkpoint,
)
from project.checkpoints.paths import HOW_TO_GET_ONE, default_run_dir

__all__ = [
    "FORMAT",
    "HOW_TO_GET_ONE",
    "build_network",
    "default_run_dir",
    "export_weights",
    "load_classifier",
    "load_model",
    "read_checkpoint",
]
