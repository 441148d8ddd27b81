"""End-to-end training through the real Hydra CLI on tiny synthetic data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from project.results import METRIC_KEYS
from project.training.metrics import classification_metrics
from tests.helpers import TINY, cli, read_results, train

ALL_NORMS = ["bn", "in", "bin", "ln", "gn", "none", "torch_bn"]


def read_metrics_csv(run_dir: Path) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def epoch_rows(rows: list[dict], key: str) -> dict[int, float]:
    return {int(r["epoch"]): float(r[key]) for r in rows if r.get(key) not in (None, "")}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """One multirun over every norm, with the W&B logger (offline)."""
    sweep_dir = tmp_path_factory.mktemp("sweep")
    proc = cli(
        "project.train",
        "--multirun",
        *[a for a in TINY if a != "logger=csv"],
        "logger=wandb",
        f"norm={','.join(ALL_NORMS)}",
        f"hydra.sweep.dir={sweep_dir}",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return sweep_dir


def test_multirun_writes_one_result_per_norm(sweep):
    results = sorted(sweep.glob("*/results.json"))
    assert len(results) == len(ALL_NORMS)
    variants = {json.loads(p.read_text())["variant"] for p in results}
    assert variants == set(ALL_NORMS)


@pytest.mark.parametrize("job", range(len(ALL_NORMS)))
def test_every_norm_trains_end_to_end(sweep, job):
    run_dir = sweep / str(job)
    res = read_results(run_dir)
    assert res["status"] == "completed"
    assert set(res["metrics"]) == set(METRIC_KEYS)
    for key, value in res["metrics"].items():
        assert 0.0 <= value <= 1.0, key
    assert res["epochs"] == 2 and res["best_epoch"] in (0, 1)
    assert res["params"] > 0 and res["model_size_mb"] > 0 and res["wall_time_s"] > 0
    assert len(res["confusion_matrix"]["test"]) == 10
    assert sum(map(sum, res["confusion_matrix"]["test"])) == 64  # every test image, once
    rows = read_metrics_csv(run_dir)
    for key in ("train/acc", "train/f1_macro", "train/loss_epoch", "val/acc", "val/f1_micro"):
        assert set(epoch_rows(rows, key)) == {0, 1}, key
    quantiles = [epoch_rows(rows, f"val/feat_q{q}") for q in ("01", "20", "80", "99")]
    for epoch in (0, 1):
        values = [q[epoch] for q in quantiles]
        assert values == sorted(values)  # q01 <= q20 <= q80 <= q99
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    offline_runs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert offline_runs, "no W&B offline run file"


def test_training_learns_synthetic_data(tmp_path):
    """The synthetic set is learnable: a short run is well above chance (10%)."""
    proc = train(tmp_path, "trainer.max_epochs=4", "data.train_size=600", "optimizer.lr=0.05")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_results(tmp_path)["metrics"]["test/acc"] > 0.3


def test_null_patience_turns_early_stopping_off(tmp_path):
    """`early_stopping.patience=null` trains every epoch, even when val accuracy never improves
    (a vanishing lr keeps it flat), instead of crashing at the first flat epoch."""
    proc = train(
        tmp_path, "early_stopping.patience=null", "optimizer.lr=1e-12", "trainer.max_epochs=3"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = read_results(tmp_path)
    assert results["status"] == "completed" and results["epochs"] == 3


@pytest.mark.parametrize(
    ("override", "key", "needle"),
    [
        ("batch_size=0", "batch_size", ">= 1"),
        ("model.n=0", "model.n", "n >= 1"),
        ("optimizer.lr=0", "optimizer.lr", "> 0"),
        ("optimizer.lr=-0.1", "optimizer.lr", "> 0"),
        ("data.val_size=500", "data.val_size", "0 < val_size"),
    ],
)
def test_bad_config_is_one_clear_paragraph(tmp_path, override, key, needle):
    proc = train(tmp_path, override)
    assert proc.returncode == 2
    assert key in proc.stderr and needle in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert read_results(tmp_path)["status"] == "failed"


def test_gn_groups_must_divide_every_width(tmp_path):
    proc = train(tmp_path, "norm=gn", "norm.num_groups=3")
    assert proc.returncode == 2
    assert "norm.num_groups" in proc.stderr and "Valid values: 1, 2, 4, 8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_group_option_lists_choices(tmp_path):
    proc = train(tmp_path, "norm=foo")
    assert proc.returncode != 0
    for choice in ("bn", "bin", "gn", "ln", "none", "torch_bn"):
        assert f"\t{choice}\n" in proc.stderr


def test_help_and_cfg_job():
    proc = cli("project.train", "--help")
    assert proc.returncode == 0 and "norm: bin, bn, gn, in, ln, none, torch_bn" in proc.stdout
    proc = cli("project.train", "norm=gn", "batch_size=8", "--cfg", "job")
    assert proc.returncode == 0
    assert "batch_size: 8" in proc.stdout and "_target_: project.nn.GroupNorm2d" in proc.stdout


def test_f1_agrees_with_confusion_matrix():
    torch.manual_seed(0)
    preds = torch.randn(500, 7).softmax(-1)
    target = torch.randint(0, 7, (500,))
    metrics = classification_metrics(7, "x/")(preds, target)
    cm = torch.zeros(7, 7)
    for t, p in zip(target, preds.argmax(-1)):
        cm[t, p] += 1
    tp = cm.diag()
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    per_class_f1 = torch.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum())
    assert float(metrics["x/f1_macro"]) == pytest.approx(float(per_class_f1.mean()), abs=1e-6)
    assert float(metrics["x/f1_micro"]) == pytest.approx(float(micro), abs=1e-6)
    assert float(metrics["x/acc"]) == pytest.approx(float(tp.sum() / cm.sum()), abs=1e-6)


@pytest.mark.slow
def test_compile_true_trains_like_eager(tmp_path):
    """`compile=true` (inductor, ~1-2 min of compilation on 2 cores: run with `-m slow`): same
    seed, same data -> the same training curve within float tolerance, and a checkpoint whose
    keys do not mention the compile wrapper (it loads into an uncompiled model)."""
    losses = {}
    for flag in ("false", "true"):
        run_dir = tmp_path / f"compile-{flag}"
        proc = train(run_dir, f"compile={flag}", "trainer.max_epochs=1", timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = read_metrics_csv(run_dir)
        losses[flag] = [float(r[k]) for r in rows for k in ("train/loss_step", "val/loss") if r[k]]
        state = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=False)
        assert not any("_orig_mod" in k or "_net" in k for k in state["state_dict"]), flag
    assert len(losses["false"]) >= 4  # every training step of the epoch, and validation
    assert losses["true"] == pytest.approx(losses["false"], rel=1e-3, abs=1e-4)
