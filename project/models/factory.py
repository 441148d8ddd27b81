"""Build a model from its Hydra config plus the norm config (what checkpoints store)."""

from __future__ import annotations

from collections.abc import Mapping

from hydra.utils import instantiate
from torch import nn


def build_model(model_cfg: Mapping, norm_cfg: Mapping, num_classes: int) -> nn.Module:
    """`model_cfg` has `_target_` (ResNet/SimpleNN) and its kwargs; `norm_cfg` has `kind` plus the
    norm layer's options (conf/norm/*.yaml)."""
    norm_options = {k: v for k, v in dict(norm_cfg).items() if k != "kind"}
    if norm_cfg["kind"] == "torch_bn" or not norm_options.get("sync", True):
        norm_options.pop("sync", None)  # only the scratch BN/BIN take it, and only when on
    return instantiate(
        dict(model_cfg), num_classes=num_classes, norm=norm_cfg["kind"], norm_options=norm_options
    )
