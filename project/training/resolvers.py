"""OmegaConf resolvers used in the configs (registered when `project.train` is imported)."""

from __future__ import annotations

import os

from omegaconf import OmegaConf


def linear_lr(base_lr: float, batch_size: int, reference_batch: int = 128) -> float:
    """Linear scaling rule (Goyal et al. 2017): lr = base_lr · batch_size / reference_batch."""
    return float(base_lr) * int(batch_size) / int(reference_batch)


def register() -> None:
    if not OmegaConf.has_resolver("linear_lr"):
        OmegaConf.register_new_resolver("linear_lr", linear_lr)
    if not OmegaConf.has_resolver("pid"):
        # Cached: one value per process, however often the run dir is resolved.
        OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True)
