"""What `project.evaluate` and `project.predict` share: the device, a Lightning `Trainer` for
inference, per-image probabilities from `trainer.predict`, and the CSV they are written to.

    trainer = inference_trainer(resolve_device("cpu"))
    probs, targets = predict_probabilities(trainer, module, datamodule)  # (N, K), (N,) or None
    write_probability_csv(path, ["file", ...], rows, probs, class_names)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch import Tensor

from project.errors import UserError
from project.io import atomic_write_text

#: Significant digits of a probability in the CSV: enough to give back the float32 exactly.
PROBABILITY_DIGITS = 9


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"device={name} was asked for but CUDA is not available on this machine. Use "
            f"device=cpu (the default)."
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name} is not a device; use device=cpu or device=cuda.") from None


def inference_trainer(
    device: torch.device, callbacks: Sequence[L.Callback] = (), precision: str = "32-true"
) -> L.Trainer:
    """A single-device Trainer for `test`/`predict`: no logger, no checkpoints, a progress bar.
    `precision` as Lightning's (`bf16-mixed` reproduces a bf16 training run's own numbers)."""
    return L.Trainer(
        accelerator=device.type,
        precision=precision,
        devices=[device.index] if device.type == "cuda" and device.index is not None else 1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )


def predict_probabilities(
    trainer: L.Trainer, module: L.LightningModule, datamodule: L.LightningDataModule
) -> tuple[Tensor, Tensor | None]:
    """`(probabilities (N, K) float32, targets (N,) int64 or None for unlabeled data)` on the
    CPU, in the order of the datamodule's (single) predict loader, from the module's
    `predict_step`."""
    batches = trainer.predict(module, datamodule=datamodule)
    probs = torch.cat([b["probs"].cpu() for b in batches])
    labeled = bool(batches) and "target" in batches[0]
    return probs, torch.cat([b["target"].cpu() for b in batches]) if labeled else None


def write_probability_csv(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    probs: Tensor,
    class_names: Sequence[str],
) -> Path:
    """A CSV of `header` + one `p_<class name>` column per class; row i is `rows[i]` followed by
    `probs[i]` (probs: (N, K)). Quoted as needed (file and class names may hold commas)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*header, *(f"p_{name}" for name in class_names)])
    for row, p in zip(rows, probs.tolist()):
        writer.writerow([*row, *(format(v, f".{PROBABILITY_DIGITS}g") for v in p)])
    try:
        return atomic_write_text(path, text.getvalue())
    except OSError as err:
        raise UserError(
            f"Cannot write {path} ({err.strerror or err}). Choose a writable place with out=PATH."
        ) from None
