"""Tests for `project.report` on a small fake multirun written in the train contract's format."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from project.errors import UserError
from project.report import make_report
from project.report.history import aggregate_rows
from project.report.runs import load_runs
from project.report.sanity import bn_sanity

ROOT = Path(__file__).resolve().parents[1]
PNGS = [
    "error_curves.png",
    "loss_curves.png",
    "feature_quantiles.png",
    "weight_histograms.png",
    "confusion_matrix.png",
    "lr_curves.png",
]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
STEPS_PER_EPOCH = 4
COLUMNS = [
    "epoch", "step", "lr-SGD", "train/loss_step", "train/loss_epoch", "train/acc",
    "train/f1_micro", "train/f1_macro", "val/loss", "val/acc", "val/f1_micro", "val/f1_macro",
    "val/feat_q01", "val/feat_q20", "val/feat_q80", "val/feat_q99", "test/acc", "test/loss",
]  # fmt: skip


def _curves(seed: int, epochs: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    e = np.arange(epochs)
    return {
        "train/loss": 2.3 * np.exp(-0.3 * e) + 0.01 * rng.random(epochs),
        "train/acc": 1 - 0.9 * np.exp(-0.3 * e),
        "val/loss": 2.3 * np.exp(-0.25 * e) + 0.01 * rng.random(epochs),
        "val/acc": 1 - 0.9 * np.exp(-0.25 * e) - 0.01 * rng.random(epochs),
    }


def _write_csv(path: Path, curves: dict[str, np.ndarray], test: bool = True) -> None:
    """Rows as Lightning's CSVLogger writes them: sparse, one kind of row at a time."""
    rows = []
    epochs = len(curves["train/acc"])
    for e in range(epochs):
        first = e * STEPS_PER_EPOCH
        # LearningRateMonitor rows carry no epoch, only the step.
        rows.append({"step": first, "lr-SGD": 0.1 * 0.5**e})
        for s in range(first, first + STEPS_PER_EPOCH, 2):
            rows.append({"epoch": e, "step": s, "train/loss_step": curves["train/loss"][e]})
        last = first + STEPS_PER_EPOCH - 1
        val = {k: curves["val/acc"][e] for k in ("val/acc", "val/f1_micro", "val/f1_macro")}
        q = curves["val/loss"][e]
        rows.append(
            {"epoch": e, "step": last, "val/loss": curves["val/loss"][e], **val,
             "val/feat_q01": -q, "val/feat_q20": -q / 4, "val/feat_q80": q / 4, "val/feat_q99": q}
        )  # fmt: skip
        acc = curves["train/acc"][e]
        rows.append(
            {"epoch": e, "step": last, "train/loss_epoch": curves["train/loss"][e],
             "train/acc": acc, "train/f1_micro": acc, "train/f1_macro": acc}
        )  # fmt: skip
    if test:
        rows.append({"epoch": epochs - 1, "step": epochs * STEPS_PER_EPOCH, "test/acc": 0.8})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _write_run(
    job: Path,
    overrides: list[str],
    variant: str,
    status: str = "completed",
    seed: int = 0,
    epochs: int = 5,
    l1: float = 0.0,
) -> dict[str, np.ndarray]:
    import torch

    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    curves = _curves(seed, epochs)
    if status == "diverged":
        curves = {k: v.copy() for k, v in curves.items()}
        curves["train/loss"][-1] = math.nan
        curves["val/loss"][-1] = math.nan
    final = {
        f"{s}/{m}": 0.8 for s in ("train", "val", "test") for m in ("acc", "f1_micro", "f1_macro")
    }  # noqa: E501
    results = {
        "status": status,
        "best_epoch": epochs - 1 if status == "completed" else None,
        "epochs": epochs,
        "params": 172506,
        "model_size_mb": 0.69,
        "wall_time_s": 12.5,
        "metrics": final if status == "completed" else {k: None for k in final},
        "run_name": f"{variant}_b128_lr0.1",
        "variant": variant,
        "experiment": "norm_comparison",
        "config": {"model": "resnet", "n": 2, "head": "linear", "norm": variant, "batch_size": 128,
                   "optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4, "l1": l1,
                   "max_epochs": 5, "seed": 0},
        "class_names": CLASSES,
        "initial_loss": 2.31,
    }  # fmt: skip
    if status == "completed":
        rng = np.random.default_rng(seed)
        results["confusion_matrix"] = {"test": rng.integers(0, 50, (10, 10)).tolist()}
        g = torch.Generator().manual_seed(seed)
        state = {
            "model.conv1.weight": torch.randn(16, 3, 3, 3, generator=g),
            "model.bn1.weight": torch.ones(16),
            "model.layer1.0.conv1.weight": torch.randn(16, 16, 3, 3, generator=g),
            "model.layer2.0.conv1.weight": torch.randn(32, 16, 3, 3, generator=g),
            "model.layer3.0.conv1.weight": torch.randn(64, 32, 3, 3, generator=g),
            "model.fc.weight": torch.randn(10, 64, generator=g),
            "model.fc.bias": torch.zeros(10),
        }
        (job / "checkpoints").mkdir()
        torch.save({"state_dict": state, "epoch": epochs}, job / "checkpoints" / "best.ckpt")
    if status == "failed":
        results["error"] = "CUDA out of memory | tried to allocate 2 GiB"
    else:
        _write_csv(job / "csv" / "metrics.csv", curves, test=status == "completed")
    if status == "diverged":
        results["diverged_epoch"] = epochs - 1
    (job / "results.json").write_text(json.dumps(results))
    return curves


def md_row(md: str, *cells: str) -> bool:
    """Whether a Markdown table row starts with `cells` (tabulate pads cells to column width)."""
    pattern = r"^\|\s*" + r"\s*\|\s*".join(re.escape(c) for c in cells) + r"\s*\|"
    return re.search(pattern, md, re.MULTILINE) is not None


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """multirun/<date>/<time>/<job>/ with completed, diverged, failed, incomplete and bn pairs."""
    root = tmp_path_factory.mktemp("multirun") / "2024-01-01" / "12-00-00"
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    curves = {
        "norm=bn": _write_run(root / "0", ["norm=bn", "batch_size=128"], "bn", seed=1),
        "norm=torch_bn": _write_run(root / "1", ["norm=torch_bn", "batch_size=128"], "torch_bn",
                                    seed=2),
        "norm=gn": _write_run(root / "2", ["norm=gn", "batch_size=128"], "gn", seed=3, l1=1e-4),
        "norm=none": _write_run(root / "3", ["norm=none", "batch_size=128"], "none", "diverged"),
        "norm=ln": _write_run(root / "4", ["norm=ln", "batch_size=128"], "ln", "failed"),
    }  # fmt: skip
    (root / "5" / ".hydra").mkdir(parents=True)  # interrupted: no results.json
    (root / "5" / ".hydra" / "overrides.yaml").write_text("- norm=in\n- batch_size=128\n")
    return root, curves


@pytest.fixture(scope="module")
def report(sweep) -> Path:
    root, _ = sweep
    make_report([root], root / "report", title="Norm comparison")
    return root / "report"


def test_every_run_in_tables(report):
    md = (report / "summary.md").read_text()
    with (report / "runs.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    expected = {
        "norm=bn": "completed",
        "norm=torch_bn": "completed",
        "norm=gn": "completed",
        "norm=none": "diverged",
        "norm=ln": "failed",
        "norm=in": "incomplete",
    }
    assert {r["label"]: r["status"] for r in rows} == expected
    for label, status in expected.items():
        assert md_row(md, label, status)
    assert "CUDA out of memory \\| tried" in md  # the error is shown, with `|` escaped
    assert "diverged at epoch 4" in md
    assert re.search(r"\|\s*80\.00\s*\|", md)  # percentages with two decimals
    assert next(r for r in rows if r["label"] == "norm=gn")["test/acc"] == "0.8"
    assert "ln(10) = 2.303" in md


def test_pngs_valid_and_small(report):
    import matplotlib.image

    for name in PNGS:
        data = (report / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert 0 < len(data) <= 200 * 1024, name
        assert matplotlib.image.imread(report / name).ndim == 3


def test_html_references_every_png(report):
    page = (report / "report.html").read_text()
    for name in PNGS:
        assert f'<img src="{name}"' in page
    assert "BN sanity check" in page
    assert "Skipped" not in page


def test_bn_sanity_matches_direct_computation(sweep, report):
    root, curves = sweep
    bn, tbn = curves["norm=bn"], curves["norm=torch_bn"]
    expected = {
        "val/acc": np.max(np.abs(bn["val/acc"] - tbn["val/acc"])),
        "val/loss": np.max(np.abs(bn["val/loss"] - tbn["val/loss"])),
        "train/loss": np.max(np.abs(bn["train/loss"] - tbn["train/loss"])),
    }
    (pair,) = bn_sanity(load_runs([root]))
    assert (pair.bn.label, pair.torch_bn.label) == ("norm=bn", "norm=torch_bn")
    assert pair.common_epochs == 5
    for name, value in expected.items():
        # The CSV round-trip of floats is exact (repr), so only float rounding remains.
        assert pair.max_abs_diff[name] == pytest.approx(value, rel=1e-12)
    sanity_md = (report / "bn_sanity.md").read_text()
    for value in expected.values():
        assert f"{value:.3e}" in sanity_md
    assert "BN sanity check" in (report / "summary.md").read_text()


def test_report_is_deterministic(sweep, report):
    root, _ = sweep
    before = {p.name: p.read_bytes() for p in sorted(report.iterdir())}
    make_report([root], root / "report", title="Norm comparison")
    after = {p.name: p.read_bytes() for p in sorted(report.iterdir())}
    assert before == after  # also shows the existing report/ dir is not mistaken for a run


def test_skipped_plots_are_explained(tmp_path):
    job = tmp_path / "run"
    _write_run(job, [], "ln", "failed")
    make_report([job])
    page = (job / "report" / "report.html").read_text()
    assert "Skipped: no run logged train/acc or val/acc." in page
    assert not (job / "report" / "error_curves.png").exists()
    assert not (job / "report" / "bn_sanity.md").exists()
    assert md_row((job / "report" / "summary.md").read_text(), "ln", "failed")  # label = variant


def test_history_aggregates_sparse_rows():
    rows = [
        {"epoch": "", "step": "0", "lr-SGD": "0.1", "val/acc": ""},
        {"epoch": "0", "step": "1", "lr-SGD": "", "val/acc": ""},
        {"epoch": "0", "step": "3", "lr-SGD": "", "val/acc": "0.5"},
        {"epoch": "", "step": "4", "lr-SGD": "0.05", "val/acc": ""},
        {"epoch": "1", "step": "7", "lr-SGD": "", "val/acc": "nan"},
        # The final evaluation row comes one epoch past the last and is not part of the curves.
        {"epoch": "2", "step": "8", "final/val/acc": "0.4", "test/acc": "0.3"},
    ]
    history = aggregate_rows(rows)
    assert history.epochs.tolist() == [0, 1]
    assert history.series("lr-SGD")[1].tolist() == [0.1, 0.05]
    epochs, acc = history.series("val/acc")  # the logged NaN is dropped from the series
    assert epochs.tolist() == [0] and acc.tolist() == [0.5]


def test_missing_path_and_empty_dir_raise_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        make_report([tmp_path / "nope"])
    with pytest.raises(UserError, match="python -m project.train"):
        make_report([tmp_path])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "project.report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli(sweep, report, tmp_path):
    root, _ = sweep
    ok = _cli(str(root), "--out", str(tmp_path / "out"), "--title", "Norm comparison")
    assert ok.returncode == 0, ok.stderr
    # Another process and another out dir still give byte-identical files.
    expected = {p.name: p.read_bytes() for p in sorted(report.iterdir())}
    assert {p.name: p.read_bytes() for p in sorted((tmp_path / "out").iterdir())} == expected
    bad = _cli(str(tmp_path / "does-not-exist"))
    assert bad.returncode != 0
    assert "does not exist" in " ".join(bad.stderr.split())  # one paragraph, wrapped
    assert "Traceback" not in bad.stderr + bad.stdout
