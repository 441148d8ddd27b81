"""Each study's validation-best weights per variant: `experiments/<study>/weights/<variant>.pt`.

A user who wants the trained net of a study evaluates it without training:

    python -m project.evaluate ckpt=experiments/norm_comparison/weights/bn.pt data=folder \
        data.root=../shared/data/cifar10-jpeg precision=bf16-mixed out=outputs/eval/bn
    # a compile=true run's weights: add compile=true (and its channels_last=true)

After every finished run the queue calls `keep_if_best`: the run's best checkpoint is exported
(`project.export`'s weights-only `.pt`, about 1 MB for ResNet-14) when its validation accuracy
beats the variant's current file, and `<variant>.json` beside it names the run and its recorded
accuracies and the command that reproduces them. The choice uses validation accuracy only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from project.checkpoints import export_weights
from project.io import atomic_write_json
from project.results import read_results


def variant_of(run_name: str) -> str:
    """`bn_b8_s2` -> `bn_b8`: the queue names runs `<variant>_s<seed>`."""
    return re.sub(r"_s\d+$", "", run_name)


def weights_dir(records: Path, study: str) -> Path:
    return Path(records) / study / "weights"


def current_best(records: Path, study: str, variant: str) -> dict[str, Any] | None:
    info = weights_dir(records, study) / f"{variant}.json"
    return json.loads(info.read_text()) if info.is_file() else None


def keep_if_best(run_dir: Path, records: Path, study: str, run_name: str) -> list[Path]:
    """Export `run_dir`'s best checkpoint as its variant's weights if its val accuracy is the
    variant's best so far; returns the written paths (none when it is not better)."""
    results = read_results(run_dir) or {}
    val = (results.get("metrics") or {}).get("val/acc")
    ckpt = Path(run_dir) / "checkpoints" / "best.ckpt"
    variant = variant_of(run_name)
    best = current_best(records, study, variant)
    if val is None or not ckpt.is_file() or (best is not None and best["val_acc"] >= val):
        return []
    out = weights_dir(records, study)
    pt, info = out / f"{variant}.pt", out / f"{variant}.json"
    out.mkdir(parents=True, exist_ok=True)
    export_weights(ckpt, pt)
    atomic_write_json(info, weights_info(run_dir, records, study, run_name))
    return [pt, info]


def weights_info(run_dir: Path, records: Path, study: str, run_name: str) -> dict[str, Any]:
    """`<variant>.json` for the weights of `run_name`, from its run dir or committed record:
    the recorded accuracies and the `project.evaluate` command that reproduces them, with the
    run's precision, compile and channels_last (a compiled run's predictions are reproduced
    image for image only by a compiled evaluation on the same kind of device)."""
    results = read_results(run_dir) or {}
    variant = variant_of(run_name)
    # As typed from the repository root (`records` is its experiments/), wherever the queue ran.
    pt = weights_dir(records, study) / f"{variant}.pt"
    shown = pt.resolve().relative_to(Path(records).resolve().parent)
    config = OmegaConf.load(Path(run_dir) / "config.yaml")
    precision = OmegaConf.select(config, "trainer.precision", default=None) or "32-true"
    compiled = config.get("compile", False)
    channels_last = bool(config.get("channels_last", False))
    accelerator = OmegaConf.select(config, "trainer.accelerator", default=None) or "cpu"
    group = (results.get("config") or {}).get("data") or "folder"
    root = config.data.get("root")
    data = f"data={group}" + (f" data.root={root}" if root else "")
    execution = f"precision={precision}"
    if compiled:
        execution += f" compile={str(compiled).lower()}"
    if channels_last:
        execution += " channels_last=true"
    return {
        "variant": variant,
        "run": run_name,
        "record": f"{study}/runs/{run_name}",
        "val_acc": results["metrics"]["val/acc"],
        "test_acc": results["metrics"].get("test/acc"),
        "precision": precision,
        "compile": compiled,
        "channels_last": channels_last,
        # The command evaluates on the CPU: a GPU run's kernels round differently, so there it
        # reproduces the accuracy (within 10 of 10,000 images) but not every prediction.
        "trained_on": accelerator,
        "evaluate": (
            f"python -m project.evaluate ckpt={shown.as_posix()} {data} {execution} "
            f"out=outputs/eval/{study}/{variant}"
        ),
    }
