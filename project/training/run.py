"""One training run: config -> data, model, trainer -> fit -> final evaluation -> results.json."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from project.io import atomic_write_text
from project.training.callbacks import CheckpointOnSigterm, StopOnDivergence
from project.training.module import ImageClassifier
from project.training.results import METRIC_KEYS, model_size_mb, run_name, write_results
from project.training.resume import last_checkpoint, resumed_csv_logger, wandb_run_id
from project.training.validation import validate_config


def make_loggers(cfg: DictConfig, run_dir: Path, ckpt: Path | None) -> list:
    """CSV always (reports read it); W&B (offline by default) unless `logger=csv|none`."""
    loggers = [resumed_csv_logger(run_dir, ckpt)]
    if cfg.logger.kind == "wandb":
        loggers.append(
            WandbLogger(
                name=run_name(cfg),
                save_dir=str(run_dir),
                id=wandb_run_id(run_dir),
                resume="allow",
                project=cfg.logger.project,
                entity=cfg.logger.get("entity"),
                group=cfg.experiment_name,
                tags=[cfg.norm.kind, f"batch{cfg.batch_size}", *cfg.logger.get("tags", [])],
                offline=bool(cfg.logger.offline),
                config=OmegaConf.to_container(cfg, resolve=True),
            )
        )
    return loggers


def build(cfg: DictConfig, run_dir: Path, ckpt: Path | None = None):
    """Instantiate data module, LightningModule, callbacks, loggers and trainer."""
    # test_dataloader serves the final evaluation of the best checkpoint: every split, in order.
    datamodule = instantiate(cfg.data, eval_splits=("train", "val", "test"))
    module = ImageClassifier(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        norm=OmegaConf.to_container(cfg.norm, resolve=True),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True),
        num_classes=datamodule.num_classes,
        l1=cfg.regularization.l1,
        label_smoothing=cfg.regularization.label_smoothing,
        feature_quantiles=list(cfg.feature_quantiles),
        compile=cfg.compile,
        channels_last=cfg.channels_last,
        class_names=datamodule.class_names,
    )
    callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
    callbacks.append(CheckpointOnSigterm(run_dir / "checkpoints" / "last.ckpt"))
    trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=make_loggers(cfg, run_dir, ckpt),
        default_root_dir=str(run_dir),
    )
    return datamodule, module, trainer


def _find(callbacks, kind):
    return next((c for c in callbacks if isinstance(c, kind)), None)


def train(cfg: DictConfig, run_dir: Path) -> dict:
    """Fit, restore the best checkpoint, evaluate it on train/val/test; write results.json."""
    start = time.perf_counter()
    validate_config(cfg)
    ckpt_path = last_checkpoint(run_dir) if cfg.resume else None
    L.seed_everything(cfg.seed, workers=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    datamodule, module, trainer = build(cfg, run_dir, ckpt_path)
    params = sum(p.numel() for p in module.model.parameters())
    common = {"params": params, "model_size_mb": round(model_size_mb(module.model), 4)}

    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:
        if trainer.is_global_zero:
            write_results(
                run_dir,
                cfg,
                "interrupted",
                epochs=trainer.current_epoch,
                error="stopped by SIGTERM; continue with resume=true in this run dir",
                **common,
            )
        raise
    if module.initial_loss is not None:
        print(
            f"[normres] initial training loss {module.initial_loss:.4f} (ln(num_classes) = "
            f"{torch.log(torch.tensor(float(datamodule.num_classes))):.4f})"
        )

    divergence = _find(trainer.callbacks, StopOnDivergence)
    checkpoint = _find(trainer.callbacks, ModelCheckpoint)
    best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    best_epoch = torch.load(best, map_location="cpu", weights_only=False)["epoch"] if best else None

    module.eval_splits = datamodule.eval_splits
    metrics = dict.fromkeys(METRIC_KEYS)
    confusion = None
    if best or divergence is None or divergence.diverged_epoch is None:
        trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)
        metrics.update({k: module.final_results.get(k) for k in METRIC_KEYS})
        confusion = module.confusion.compute().tolist()

    diverged = divergence is not None and divergence.diverged_epoch is not None
    status = "diverged" if diverged else "completed"
    extra = {"diverged_epoch": divergence.diverged_epoch} if diverged else {}
    results = dict(
        best_epoch=best_epoch,
        epochs=trainer.current_epoch,
        wall_time_s=round(time.perf_counter() - start, 2),
        metrics=metrics,
        class_names=datamodule.class_names,
        confusion_matrix={"test": confusion} if confusion else {},
        initial_loss=module.initial_loss,
        **common,
        **extra,
    )
    if trainer.is_global_zero:
        write_results(run_dir, cfg, status, **results)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.summary.update(
                    {k: v for k, v in metrics.items() if v is not None}
                )
                logger.experiment.summary["status"] = status
                logger.experiment.finish()
    return {"status": status, **results}
