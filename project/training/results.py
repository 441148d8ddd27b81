"""results.json: the one file per run that reports, sweeps and users read."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from project.data import dataset_name
from project.io import atomic_write_json
from project.training.metrics import METRIC_NAMES, SPLITS

METRIC_KEYS = tuple(f"{s}/{m}" for s in SPLITS for m in METRIC_NAMES)


def model_size_mb(model: nn.Module) -> float:
    """Size in MB (10^6 bytes) of the model's state_dict as `torch.save` writes it."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


def config_summary(cfg: DictConfig) -> dict:
    """The settings a comparison table shows, flat."""
    model = str(cfg.model.get("_target_", "")).rsplit(".", 1)[-1].lower()
    return {
        "model": "resnet_fcn" if cfg.model.get("head") == "conv" else model,
        "n": cfg.model.get("n"),
        "head": cfg.model.get("head"),
        "shortcut": cfg.model.get("shortcut"),
        "activation": cfg.model.get("activation"),
        "norm": cfg.norm.kind,
        "batch_size": cfg.batch_size,
        "optimizer": str(cfg.optimizer._target_).rsplit(".", 1)[-1].lower(),
        "lr": cfg.optimizer.lr,
        "weight_decay": cfg.optimizer.get("weight_decay", 0.0),
        "l1": cfg.regularization.l1,
        "scheduler": str(cfg.scheduler._target_).rsplit(".", 1)[-1],
        "data": dataset_name(cfg.data),
        "augment": cfg.data.get("augment"),
        "max_epochs": cfg.trainer.max_epochs,
        "seed": cfg.seed,
    }


def run_name(cfg: DictConfig) -> str:
    """e.g. `gn_b8_lr0.1` — norm, batch size, learning rate."""
    return f"{cfg.norm.kind}_b{cfg.batch_size}_lr{cfg.optimizer.lr:g}"


def write_results(run_dir: Path, cfg: DictConfig, status: str, **fields) -> Path:
    """Write <run_dir>/results.json atomically. `fields` fill or override the defaults."""
    record = {
        "status": status,
        "best_epoch": None,
        "epochs": 0,
        "params": None,
        "model_size_mb": None,
        "wall_time_s": None,
        "metrics": dict.fromkeys(METRIC_KEYS),
        "run_name": run_name(cfg),
        "variant": cfg.norm.kind,
        "experiment": cfg.get("experiment_name"),
        "config": config_summary(cfg),
    }
    record.update(fields)
    return atomic_write_json(Path(run_dir) / "results.json", record)
