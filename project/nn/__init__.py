"""From-scratch layers: normalisation, convolution, activations, pooling.

Models take their norm as `norm_layer: Callable[[int], nn.Module]` (as torchvision's ResNet), e.g.
`functools.partial(GroupNorm2d, num_groups=8)`; the configs build that partial from
`conf/norm/*.yaml` (`_target_` + `_partial_: true`). `make_norm`/`norm_layer` are conveniences for
Python users who prefer the short names (bn, in, bin, ln, gn, none, torch_bn).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

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

#: Short name -> layer class; `none` is an identity, `torch_bn` torch's own BatchNorm2d (only for
#: the scratch-vs-torch sanity comparison).
NORM_LAYERS: dict[str, type[nn.Module]] = {
    "bn": BatchNorm2d,
    "in": InstanceNorm2d,
    "bin": BatchInstanceNorm2d,
    "ln": LayerNorm2d,
    "gn": GroupNorm2d,
    "none": nn.Identity,
    "torch_bn": nn.BatchNorm2d,
}
NORM_KINDS = tuple(NORM_LAYERS)


def make_norm(kind: str, num_channels: int, **options) -> nn.Module:
    """The norm layer `kind` for `num_channels` channels; `options` go to the layer's constructor
    (eps, momentum, sync, num_groups, rho_init). An option the layer does not take is an error."""
    if kind not in NORM_LAYERS:
        raise ValueError(f"unknown norm kind {kind!r}; valid kinds: {', '.join(NORM_KINDS)}")
    if kind == "none":
        return nn.Identity()
    if kind == "torch_bn":
        options.pop("sync", None)  # Lightning's sync_batchnorm converts torch's BN under DDP
    try:
        return NORM_LAYERS[kind](num_channels, **options)
    except TypeError as e:
        raise ValueError(f"norm {kind!r} does not take options {sorted(options)}: {e}") from e


def norm_layer(kind: str, **options) -> Callable[[int], nn.Module]:
    """`num_channels -> layer` for a model's `norm_layer` argument, e.g. `norm_layer("gn",
    num_groups=4)`."""
    return partial(make_norm, kind, **options)


def apply_constraints_(model: nn.Module) -> None:
    """Project constrained parameters back into their range (BIN's ρ into [0, 1]) in place."""
    for module in model.modules():  # includes `model` itself (a bare BIN layer)
        if hasattr(module, "apply_constraints_"):
            module.apply_constraints_()


__all__ = [
    "ACTIVATIONS",
    "NORM_KINDS",
    "NORM_LAYERS",
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
    "norm_layer",
]
