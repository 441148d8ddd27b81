"""The run's loggers: `conf/logger/*.yaml` is a dict of Lightning logger `_target_` configs.

Any Lightning logger plugs in by config (`+logger.tb._target_=lightning.pytorch.loggers.
TensorBoardLogger`). Two thin subclasses add what a run needs and Lightning does not do:

- `ResumableCSVLogger`: the CSV file the report reads. Lightning's CSVLogger deletes an existing
  metrics.csv when it starts writing; on resume this one keeps the rows up to the checkpoint.
- `RunWandbLogger`: one W&B run per run dir (its id is stored there, so a resumed run continues
  it and a new job never reuses another job's run), finished on every path: success, failure,
  interrupt. (Lightning's WandbLogger never calls `wandb.finish()`, so after a failed job the next
  job of a sweep logged into the failed job's run.)
- `RunMLFlowLogger`: MLflow to a local `file:` store (in the run dir by default), which MLflow 3
  refuses unless asked: a store without a server or database is what an offline run wants.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, WandbLogger

from project.training.resume import csv_history_until

CSV_DIR = "csv"


class ResumableCSVLogger(CSVLogger):
    """CSVLogger on `<save_dir>/csv/metrics.csv` that can keep the history of an earlier attempt."""

    def __init__(self, save_dir: str, name: str = CSV_DIR, version: str = "", **kwargs):
        super().__init__(save_dir=save_dir, name=name, version=version, **kwargs)

    def keep_history_until(self, epoch: int, step: int) -> None:
        """Start from the existing file's rows up to the checkpoint (epoch, step)."""
        history = csv_history_until(Path(self.log_dir) / "metrics.csv", epoch, step)
        writer = self.experiment  # creating the writer removes the old file...
        writer.metrics.extend(history)  # ...so queue the kept rows to be written first


def wandb_run_id(run_dir: Path) -> str:
    """The W&B run id stored in the run dir (created on first use)."""
    path = Path(run_dir) / "wandb_run_id.txt"
    if path.is_file():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")
    return run_id


class RunWandbLogger(WandbLogger):
    """WandbLogger whose run id belongs to its run dir (`save_dir`), resumed with `resume=allow`."""

    def __init__(self, save_dir: str, **kwargs):
        kwargs.setdefault("id", wandb_run_id(Path(save_dir)))
        kwargs.setdefault("resume", "allow")
        super().__init__(save_dir=save_dir, **kwargs)

    def finish(self, status: str) -> None:
        """Record the status in the run summary and close the run (W&B's exit code 0 only for
        completed and diverged runs)."""
        if self._experiment is None:
            return
        self._experiment.summary["status"] = status
        self._experiment.finish(exit_code=0 if status in ("completed", "diverged") else 1)
        self._experiment = None


class RunMLFlowLogger(MLFlowLogger):
    """MLFlowLogger that may use a `file:` tracking store (MLflow >= 3 wants MLFLOW_ALLOW_FILE_STORE
    for it; a database or server URI is passed through unchanged)."""

    def __init__(self, tracking_uri: str | None = None, **kwargs):
        if tracking_uri and tracking_uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        super().__init__(tracking_uri=tracking_uri, **kwargs)


def build_loggers(logger_cfg: Mapping | None, run_dir: Path) -> list[Logger]:
    """Instantiate every logger of the config; a CSV logger is always among them (reports read
    `<run dir>/csv/metrics.csv`), added if the config has none."""
    loggers = [instantiate(c) for c in (logger_cfg or {}).values() if c is not None]
    if not any(isinstance(lg, ResumableCSVLogger) for lg in loggers):
        loggers.insert(0, ResumableCSVLogger(save_dir=str(run_dir)))
    return loggers


def finish_loggers(loggers: list[Logger], status: str) -> None:
    """Flush every logger and close those with a session (W&B), whatever the outcome."""
    for logger in loggers:
        try:
            logger.finalize("success" if status in ("completed", "diverged") else "failed")
        finally:
            if isinstance(logger, RunWandbLogger):
                logger.finish(status)
