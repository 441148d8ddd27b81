"""torchmetrics collections and feature quantiles."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def classification_metrics(num_classes: int, prefix: str):
    """Accuracy, micro F1 and macro F1 (multiclass) as a torchmetrics `MetricCollection` with keys
    `<prefix><name>` for each of `project.results.METRIC_NAMES`."""
    # Imported here: torchmetrics loads torchvision's model zoo (seconds), which the config-error
    # and results-writing paths that share this module's constants do not need.
    from torchmetrics import MetricCollection
    from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "f1_micro": MulticlassF1Score(num_classes, average="micro"),
            "f1_macro": MulticlassF1Score(num_classes, average="macro"),
        },
        prefix=prefix,
    )


def quantile_key(q: float) -> str:
    """0.01 -> 'feat_q01', 0.2 -> 'feat_q20', 0.99 -> 'feat_q99'."""
    return f"feat_q{round(q * 100):02d}"


def feature_quantiles(features: Tensor, qs: Sequence[float]) -> dict[str, float]:
    """Quantiles of all entries of a (N, D) feature matrix.

    `torch.quantile` refuses more than 2^24 elements, so very large sets are subsampled with a
    fixed stride (deterministic).
    """
    flat = features.detach().flatten().float()
    limit = 1 << 24
    if flat.numel() > limit:
        flat = flat[:: -(-flat.numel() // limit)]
    values = torch.quantile(flat, torch.tensor(list(qs), device=flat.device, dtype=flat.dtype))
    return {quantile_key(q): float(v) for q, v in zip(qs, values)}
