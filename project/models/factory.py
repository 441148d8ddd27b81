"""Build a network from the two configs a checkpoint stores: the model's and the norm's.

    model_cfg: {"_target_": "project.models.ResNet", "n": 2, ...}          (conf/model/*.yaml)
    norm_cfg:  {"_target_": "project.nn.GroupNorm2d", "_partial_": True, ...}  (conf/norm/*.yaml)

The norm config instantiates to `num_channels -> layer`, passed to the model as `norm_layer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hydra.utils import instantiate
from torch import nn

# Checkpoints written before norms were `_target_` configs stored `{"kind": "bn", ...options}`.
_LEGACY_TARGETS = {
    "bn": "project.nn.BatchNorm2d",
    "in": "project.nn.InstanceNorm2d",
    "bin": "project.nn.BatchInstanceNorm2d",
    "ln": "project.nn.LayerNorm2d",
    "gn": "project.nn.GroupNorm2d",
    "none": "torch.nn.Identity",
    "torch_bn": "torch.nn.BatchNorm2d",
}


def norm_target_config(norm_cfg: Mapping) -> dict:
    """`norm_cfg` as a `_target_` + `_partial_` config (converting the legacy `kind` form)."""
    cfg = dict(norm_cfg)
    if "_target_" not in cfg and "kind" in cfg:
        kind = cfg.pop("kind")
        cfg["_target_"] = _LEGACY_TARGETS[kind]
        if kind in ("torch_bn", "none") or not cfg.get("sync", True):
            cfg.pop("sync", None)
    return {**cfg, "_partial_": True}


def build_norm_layer(norm_cfg: Mapping) -> Callable[[int], nn.Module]:
    """`num_channels -> norm layer` from a norm config."""
    return instantiate(norm_target_config(norm_cfg))


def build_model(model_cfg: Mapping, norm_cfg: Mapping, num_classes: int) -> nn.Module:
    """`model_cfg` has `_target_` (ResNet/SimpleNN) and its kwargs; the norm is injected."""
    return instantiate(
        dict(model_cfg), num_classes=num_classes, norm_layer=build_norm_layer(norm_cfg)
    )
