"""Fuzz: random combinations of valid overrides each train (one step) through the real run code.

The configs are composed by Hydra exactly as `python -m project.train` does
(`project.training.compose`), then handed to
`project.training.run.train` in this process (a subprocess per combination would spend its time
importing Lightning). The combinations are drawn with a fixed seed, so a failure reproduces.
"""

from __future__ import annotations

import random

import pytest

from project.training.compose import compose_job_config
from project.training.run import start_attempt, train
from tests.helpers import TINY, read_results

SPACE = {
    "norm": ["bn", "in", "bin", "ln", "gn", "none", "torch_bn"],
    "model.head": ["linear", "conv"],
    "model.shortcut": ["A", "B"],
    "model.activation": ["relu", "swish"],
    "batch_size": [2, 8, 32],
    "scheduler": ["multistep", "step", "cosine", "onecycle", "none"],
    "optimizer": ["sgd", "adamw"],
}
N_COMBINATIONS = 8
_rng = random.Random(0)
COMBINATIONS = [
    [f"{key}={_rng.choice(values)}" for key, values in SPACE.items()] for _ in range(N_COMBINATIONS)
]
ONE_STEP = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=1",
    "+trainer.limit_val_batches=1",
]


@pytest.mark.parametrize(
    "overrides", COMBINATIONS, ids=lambda o: ",".join(v.split("=")[1] for v in o)
)
def test_random_valid_overrides_train(tmp_path, overrides):
    cfg = compose_job_config([*TINY, *ONE_STEP, *overrides], tmp_path)
    train(cfg, tmp_path, *start_attempt(cfg, tmp_path))
    results = read_results(tmp_path)
    assert results["status"] == "completed", results
    assert all(0.0 <= v <= 1.0 for v in results["metrics"].values())
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
