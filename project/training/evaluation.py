"""The final evaluation of a run: the restored best checkpoint on every split, as a function.

`evaluate_splits(trainer, module, datamodule, splits, ckpt_path)` runs `trainer.test` over one
loader per split (the datamodule serves them in `splits` order, no augmentation) and returns the
metrics and the test confusion matrix. The numbers are accumulated by a `SplitMetrics` callback
that exists only for that call: the module's `test_step` returns logits and targets and keeps no
evaluation state of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from project.results import METRIC_KEYS
from project.training.metrics import classification_metrics


@dataclass
class Evaluation:
    metrics: dict[str, float | None]  # METRIC_KEYS (and any other split's `<split>/<metric>`)
    confusion: list[list[int]] | None  # test split: rows true class, columns predicted
    #: test split, in its fixed order: predicted class (N,) and true class (N,), int64 — what a
    #: paired bootstrap over test images compares between two runs
    test_predictions: tuple[np.ndarray, np.ndarray] | None = None


class SplitMetrics(L.Callback):
    """Accuracy/F1 per split and the test confusion matrix, from `test_step`'s outputs
    `{"logits": (B, K) float, "target": (B,) int64}`; synced across processes by torchmetrics.

    Logged as `final/<split>/<metric>` (and `test/<metric>` for the test split).
    """

    def __init__(self, splits: Sequence[str], num_classes: int):
        self.splits = tuple(splits)
        self.num_classes = num_classes
        self.metrics: dict[str, float] = {}
        self.confusion: list[list[int]] | None = None
        self.test_predictions: tuple[np.ndarray, np.ndarray] | None = None

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        device = pl_module.device
        self._per_split = {
            s: classification_metrics(self.num_classes, f"{s}/").to(device) for s in self.splits
        }
        self._confusion = MulticlassConfusionMatrix(self.num_classes).to(device)
        self._test_pred: list[torch.Tensor] = []
        self._test_target: list[torch.Tensor] = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        split = self.splits[dataloader_idx]
        self._per_split[split].update(outputs["logits"], outputs["target"])
        if split == "test":
            self._confusion.update(outputs["logits"], outputs["target"])
            self._test_pred.append(outputs["logits"].argmax(1))
            self._test_target.append(outputs["target"])

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        for split, collection in self._per_split.items():
            prefix = "" if split == "test" else "final/"
            for key, value in collection.compute().items():
                self.metrics[key] = float(value)
                pl_module.log(prefix + key, value, add_dataloader_idx=False, sync_dist=False)
        if "test" in self.splits:
            self.confusion = self._confusion.compute().cpu().tolist()
            # Under DDP each process saw a strided share; all_gather keeps a fixed order for a
            # fixed number of processes, which is all a pairing across runs needs.
            pred, target = (
                pl_module.all_gather(torch.cat(t)).reshape(-1).cpu().numpy().astype(np.int64)
                for t in (self._test_pred, self._test_target)
            )
            self.test_predictions = (pred, target)


def evaluate_splits(
    trainer: L.Trainer,
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    splits: Sequence[str],
    ckpt_path: str | None = None,
) -> Evaluation:
    """Metrics of `ckpt_path`'s weights (the module's current ones if None) on every split."""
    collector = SplitMetrics(splits, module.hparams.num_classes)
    trainer.callbacks.append(collector)  # for this call only
    try:
        trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    finally:
        trainer.callbacks.remove(collector)
    metrics = dict.fromkeys(METRIC_KEYS)
    metrics.update(collector.metrics)
    return Evaluation(metrics, collector.confusion, collector.test_predictions)
