"""One training run, for a config that `validation.validate_config` has accepted:

    data (instantiate cfg.data) -> check the run dir (resume.prepare_attempt) -> config.yaml ->
    module + loggers + callbacks + trainer -> fit -> evaluate the best checkpoint on every split
    (evaluation.evaluate_splits) -> results.json (project.results)

Every way it can end is recorded in results.json: completed, diverged, failed (by the caller,
`project.train`) or interrupted.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from project.io import atomic_write, atomic_write_text
from project.results import SPLITS, TEST_PREDICTIONS, tensor_megabytes, write_results
from project.training.callbacks import StopOnDivergence
from project.training.checkpoint_io import AtomicCheckpointIO
from project.training.compose import task_overrides
from project.training.evaluation import evaluate_splits
from project.training.loggers import ResumableCSVLogger, build_loggers, finish_loggers
from project.training.module import ImageClassifier
from project.training.resume import LAST, checkpoint_position, prepare_attempt


class Interrupted(BaseException):
    """SIGINT/SIGTERM: raised by the signal handler of `project.train` wherever the run is."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


def build_module(cfg: DictConfig, datamodule) -> ImageClassifier:
    """The LightningModule, with the data's normalisation statistics passed in explicitly."""
    container = OmegaConf.to_container(cfg, resolve=True)
    return ImageClassifier(
        model=container["model"],
        norm=container["norm"],
        optimizer=container["optimizer"],
        scheduler=container["scheduler"],
        num_classes=datamodule.num_classes,
        l1=cfg.regularization.l1,
        label_smoothing=cfg.regularization.label_smoothing,
        feature_quantiles=list(cfg.feature_quantiles),
        compile=cfg.compile,
        channels_last=cfg.channels_last,
        class_names=datamodule.class_names,
        data_stats=datamodule.data_stats,
        norm_name=cfg.norm_name,
        gate_group=container.get("gate_group"),
    )


def build_trainer(cfg: DictConfig, run_dir: Path, loggers: list) -> L.Trainer:
    # `early_stopping.patience=null` means "never stop early" (Lightning's EarlyStopping has no
    # such value: it would compare its wait count with None at the first flat epoch and crash).
    no_early_stop = cfg.early_stopping.patience is None
    callbacks = [
        instantiate(c)
        for name, c in cfg.callbacks.items()
        if c is not None and not (no_early_stop and name == "early_stopping")
    ]
    if not cfg.trainer.get("enable_progress_bar", True):
        # Lightning refuses a progress-bar callback with the bar switched off: the switch wins.
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers,
        default_root_dir=str(run_dir),
        plugins=[AtomicCheckpointIO()],
    )


def build(cfg: DictConfig, run_dir: Path, datamodule=None):
    """`(datamodule, module, trainer)` of a run: the data set up first, because the train split's
    statistics are part of the model's input (`data_stats`)."""
    if datamodule is None:
        datamodule = instantiate(cfg.data, eval_splits=SPLITS)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, run_dir, build_loggers(cfg.logger, run_dir))
    return datamodule, module, trainer


def _find(callbacks, kind, **attrs):
    matches = (c for c in callbacks if isinstance(c, kind))
    return next((c for c in matches if all(getattr(c, k) == v for k, v in attrs.items())), None)


def _completed_epochs(run_dir: Path) -> int:
    last = run_dir / LAST
    return checkpoint_position(last)[0] + 1 if last.is_file() else 0


def start_attempt(cfg: DictConfig, run_dir: Path):
    """`(datamodule, checkpoint to resume or None)` once the run dir is this attempt's: checked
    (resume.prepare_attempt: nothing is written if it is refused), earlier records archived,
    config.yaml written."""
    run_cfg = OmegaConf.to_container(cfg, resolve=True)
    datamodule = instantiate(cfg.data, eval_splits=SPLITS)
    if rank_zero_only.rank != 0:  # DDP: ranks > 0 never touch the run dir's records
        return datamodule, run_dir / LAST if cfg.resume and (run_dir / LAST).is_file() else None
    ckpt_path = prepare_attempt(run_dir, cfg.resume, run_cfg, datamodule.class_names)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(run_cfg))
    return datamodule, ckpt_path


def train(cfg: DictConfig, run_dir: Path, datamodule, ckpt_path: Path | None) -> dict:
    """Fit, restore the best checkpoint, evaluate it on train/val/test; write results.json."""
    start = time.perf_counter()
    rank_zero = rank_zero_only.rank == 0
    run_cfg = OmegaConf.to_container(cfg, resolve=True)
    overrides = task_overrides()
    record = {"overrides": overrides} if overrides is not None else {}

    L.seed_everything(cfg.seed, workers=True)
    datamodule, module, trainer = build(cfg, run_dir, datamodule)
    record["params"] = sum(p.numel() for p in module.model.parameters())
    record["model_size_mb"] = round(tensor_megabytes(module.model.state_dict()), 4)
    for logger in trainer.loggers:
        if ckpt_path is not None and isinstance(logger, ResumableCSVLogger):
            logger.keep_history_until(*checkpoint_position(ckpt_path))
        logger.log_hyperparams(run_cfg)

    status = "failed"
    try:
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        except Interrupted as interrupt:
            status = "interrupted"
            if rank_zero:
                epochs = _completed_epochs(run_dir)
                write_results(
                    run_dir,
                    cfg,
                    status,
                    epochs=epochs,
                    wall_time_s=round(time.perf_counter() - start, 2),
                    error=f"stopped by {interrupt.signal_name} during epoch {epochs}; resume=true "
                    f"continues from the end of epoch {epochs - 1} (the interrupted epoch is "
                    f"redone from its start)"
                    if epochs
                    else f"stopped by {interrupt.signal_name} before the first epoch ended",
                    **record,
                )
            raise
        results = _final_results(cfg, trainer, module, datamodule, start, record)
        status = results["status"]
        if rank_zero:
            write_results(
                run_dir, cfg, status, **{k: v for k, v in results.items() if k != "status"}
            )
        return results
    finally:
        finish_loggers(trainer.loggers, status)


def _final_results(cfg, trainer, module, datamodule, start: float, record: dict) -> dict:
    if module.initial_loss is not None:
        print(
            f"[normres] initial training loss {module.initial_loss:.4f} (ln(num_classes) = "
            f"{torch.log(torch.tensor(float(datamodule.num_classes))):.4f})"
        )
    divergence = _find(trainer.callbacks, StopOnDivergence)
    best_ckpt = _find(trainer.callbacks, ModelCheckpoint, monitor="val/acc")
    best = best_ckpt.best_model_path if best_ckpt and best_ckpt.best_model_path else None
    best_epoch = torch.load(best, map_location="cpu", weights_only=False)["epoch"] if best else None
    diverged = divergence is not None and divergence.diverged_epoch is not None

    evaluation = None
    if best or not diverged:  # a run that diverged before any checkpoint has nothing to test
        evaluation = evaluate_splits(trainer, module, datamodule, SPLITS, ckpt_path=best)
    results = dict(
        status="diverged" if diverged else "completed",
        best_epoch=best_epoch,
        epochs=trainer.current_epoch,
        wall_time_s=round(time.perf_counter() - start, 2),
        metrics=evaluation.metrics if evaluation else None,
        class_names=datamodule.class_names,
        confusion_matrix={"test": evaluation.confusion}
        if evaluation and evaluation.confusion
        else {},
        initial_loss=module.initial_loss,
        **record,
    )
    if diverged:
        results["diverged_epoch"] = divergence.diverged_epoch
    if evaluation is not None and evaluation.test_predictions is not None:
        pred, target = evaluation.test_predictions
        results["test_predictions"] = save_test_predictions(trainer.default_root_dir, pred, target)
    if results["metrics"] is None:
        del results["metrics"]  # keep write_results' all-None default
    return results


def save_test_predictions(run_dir: str | Path, pred, target) -> str:
    """`<run dir>/test_predictions.npz` (int64 `pred`, `target`, test order); returns its name."""
    import io

    import numpy as np

    path = Path(run_dir) / TEST_PREDICTIONS
    if rank_zero_only.rank == 0:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, pred=pred, target=target)
        atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path.name
