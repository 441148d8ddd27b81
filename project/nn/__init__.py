"""From-scratch layers: normalisation (`make_norm`), convolution, activations, pooling."""

from __future__ import annotations

from torch import nn

from project.nn.layers import (
    ACTIVATIONS,
    AvgPool2d,
    Conv2d,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    ReLU,
    Swish,
    make_activation,
)
from project.nn.norms import (
    BatchInstanceNorm2d,
    BatchNorm2d,
    GroupNorm2d,
    InstanceNorm2d,
    LayerNorm2d,
    default_num_groups,
)

NORM_KINDS = ("bn", "in", "bin", "ln", "gn", "none", "torch_bn")


def make_norm(kind: str, num_channels: int, **options) -> nn.Module:
    """Build the normalisation layer `kind` for `num_channels` channels.

    kind: bn | in | bin | ln | gn | none | torch_bn (torch's own nn.BatchNorm2d, only for the
    scratch-vs-torch sanity comparison). `options` go to the layer (eps, momentum, sync,
    num_groups, rho_init); options a layer does not take are an error.
    """
    if kind == "none":
        return nn.Identity()
    if kind == "torch_bn":
        options.pop("sync", None)
        return nn.BatchNorm2d(num_channels, **options)
    builders = {
        "bn": BatchNorm2d,
        "in": InstanceNorm2d,
        "bin": BatchInstanceNorm2d,
        "ln": LayerNorm2d,
        "gn": GroupNorm2d,
    }
    if kind not in builders:
        raise ValueError(f"unknown norm kind {kind!r}; valid kinds: {', '.join(NORM_KINDS)}")
    try:
        return builders[kind](num_channels, **options)
    except TypeError as e:
        raise ValueError(f"norm {kind!r} does not take options {sorted(options)}: {e}") from e


def apply_constraints_(model: nn.Module) -> None:
    """Project constrained parameters back into their range (BIN's ρ into [0, 1]) in place."""
    for module in model.modules():  # includes `model` itself (a bare BIN layer)
        if hasattr(module, "apply_constraints_"):
            module.apply_constraints_()


__all__ = [
    "ACTIVATIONS",
    "NORM_KINDS",
    "AvgPool2d",
    "BatchInstanceNorm2d",
    "BatchNorm2d",
    "Conv2d",
    "GlobalAvgPool2d",
    "GroupNorm2d",
    "InstanceNorm2d",
    "LayerNorm2d",
    "Linear",
    "MaxPool2d",
    "ReLU",
    "Swish",
    "apply_constraints_",
    "default_num_groups",
    "make_activation",
    "make_norm",
]
