"""OmegaConf resolvers used in the configs (registered when `project.train` is imported)."""

from __future__ import annotations

import os

from omegaconf import OmegaConf


def linear_lr(base_lr: float, batch_size: int, reference_batch: int = 128) -> float:
    """Linear scaling rule (Goyal et al. 2017): lr = base_lr · batch_size / reference_batch."""
    return float(base_lr) * int(batch_size) / int(reference_batch)


def run_group(experiment_name: str) -> str:
    """The W&B group of a run: its experiment's name; for a plain `--multirun` (no experiment
    named) the sweep dir's name, so that the jobs of one sweep are grouped together."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if experiment_name != "default" or not HydraConfig.initialized():
        return experiment_name
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return experiment_name
    return os.path.basename(os.path.normpath(hydra_cfg.sweep.dir))


def register() -> None:
    if not OmegaConf.has_resolver("linear_lr"):
        OmegaConf.register_new_resolver("linear_lr", linear_lr)
    if not OmegaConf.has_resolver("run_group"):
        OmegaConf.register_new_resolver("run_group", run_group)
    if not OmegaConf.has_resolver("pid"):
        # Cached: one value per process, however often the run dir is resolved.
        OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True)
