"""Compose `conf/` exactly as `python -m project.train` does, for code that runs a job in-process
(the benchmark, the fuzz test) instead of through Hydra's command line."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from project.training.resolvers import register as register_resolvers

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_job_config(overrides: list[str], run_dir: Path | None = None) -> DictConfig:
    """The job config of `python -m project.train OVERRIDES` (not validated).

    With a `run_dir`, as Hydra's own job runner does: the `hydra` node goes into `HydraConfig`
    (callbacks refer to `${hydra:runtime.output_dir}`) and is removed from the job config.
    """
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=run_dir is not None)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
            HydraConfig.instance().set_config(cfg)
            del cfg["hydra"]
    return cfg


def task_overrides() -> list[str] | None:
    """The command-line overrides of the running Hydra job (`overrides.task`), None outside one."""
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not inside a Hydra job (e.g. composed in-process)
        return None
