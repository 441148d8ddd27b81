"""Each study's validation-best weights per variant: `experiments/<study>/weights/<variant>.pt`.

A user who wants the trained net of a study evaluates it without training:

    python -m project.evaluate ckpt=experiments/norm_comparison/weights/bn.pt data=folder \
        data.root=../shared/data/cifar10-jpeg precision=bf16-mixed out=outputs/eval/bn

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
    # As typed from the repository root (`records` is its experiments/), wherever the queue ran.
    shown = pt.resolve().relative_to(Path(records).resolve().parent)
    export_weights(ckpt, pt)
    config = OmegaConf.load(Path(run_dir) / "config.yaml")
    precision = OmegaConf.select(config, "trainer.precision", default=None) or "32-true"
    group = (results.get("config") or {}).get("data") or "folder"
    root = config.data.get("root")
    data = f"data={group}" + (f" data.root={root}" if root else "")
    atomic_write_json(
        info,
        {
            "variant": variant,
            "run": run_name,
            "record": f"{study}/runs/{run_name}",
            "val_acc": val,
            "test_acc": results["metrics"].get("test/acc"),
            "precision": precision,
            "evaluate": (
                f"python -m project.evaluate ckpt={shown.as_posix()} {data} "
                f"precision={precision} out=outputs/eval/{study}/{variant}"
            ),
        },
    )
    return [pt, info]
