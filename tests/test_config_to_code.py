"""Config to code in one hop: a norm or a logger is plugged in by config alone (issue 12)."""

from __future__ import annotations

import csv

import torch
from torch import Tensor, nn

from tests.helpers import read_results, train

ONE_STEP = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=1",
    "+trainer.limit_val_batches=1",
]


class ToyNorm(nn.Module):
    """A norm defined here and nowhere in the project: RMS over (C, H, W) per sample, with a
    per-channel gain. (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        rms = x.pow(2).mean(dim=(1, 2, 3), keepdim=True).add(self.eps).sqrt()
        return x / rms * self.gain[:, None, None]


def test_a_new_norm_plugs_in_by_override_alone(tmp_path):
    proc = train(
        tmp_path,
        *ONE_STEP,
        "norm._target_=tests.test_config_to_code.ToyNorm",
        "~norm.momentum",
        "~norm.sync",
        "norm_name=toy",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = read_results(tmp_path)
    assert results["status"] == "completed" and results["variant"] == "toy"
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["norm"]["_target_"] == "tests.test_config_to_code.ToyNorm"
    gains = [k for k in ckpt["state_dict"] if k.endswith(".gain")]
    assert len(gains) == 7  # stem + 2 per block × 3 blocks of a ResNet-8 (model.n=1)


def test_a_lightning_logger_plugs_in_by_config_alone(tmp_path):
    proc = train(
        tmp_path,
        *ONE_STEP,
        "+logger.extra._target_=lightning.pytorch.loggers.CSVLogger",
        f"+logger.extra.save_dir={tmp_path / 'extra'}",
        "+logger.extra.name=another",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = list((tmp_path / "extra" / "another").glob("version_*/metrics.csv"))
    assert len(files) == 1
    with open(files[0], newline="") as f:
        keys = set(csv.DictReader(f).fieldnames or [])
    assert {"train/loss_step", "val/acc", "test/acc"} <= keys
    assert (tmp_path / "csv" / "metrics.csv").is_file()  # the report's CSV is still written


def test_wandb_group_is_the_experiment_or_the_sweep(tmp_path):
    """A named experiment groups its runs by name; a plain --multirun by its sweep dir."""
    from omegaconf import OmegaConf

    from project.training.compose import compose_job_config

    named = compose_job_config(["experiment=lab_bn"], tmp_path / "a")
    assert OmegaConf.select(named, "logger.wandb.group") == "lab_bn"
    plain = compose_job_config([], tmp_path / "b")
    assert OmegaConf.select(plain, "logger.wandb.group") == "default"  # a single run

    sweep = tmp_path / "multirun" / "12-00-00_7"
    job = compose_job_config(["hydra.mode=MULTIRUN", f"hydra.sweep.dir={sweep}"], sweep / "0")
    assert OmegaConf.select(job, "logger.wandb.group") == "12-00-00_7"
    named = compose_job_config(["hydra.mode=MULTIRUN", "experiment=lab_bn"], sweep / "1")
    assert OmegaConf.select(named, "logger.wandb.group") == "lab_bn"
