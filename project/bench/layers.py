"""Part 1: each scratch norm layer against torch's own, on the ResNet's feature-map shapes.

Train mode times forward + backward (sum of y·g with a fixed random g, so the backward sees a
realistic dense gradient). Eval mode times the forward pass alone under `torch.no_grad()` —
what validation and inference run. With `precision` bf16 (fp16) the layers run under autocast
and x, g are bf16 (fp16): what a norm gets from the convolution before it in a mixed-precision
net; with `channels_last` x and g are channels_last.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from project.bench.timing import (
    PRECISIONS,
    autocast,
    interleaved_medians,
    print_row,
    sides_to_time,
    timings_and_ratios,
)
from project.nn import default_num_groups, make_norm
from project.training.compiling import compile_mode

NORMS = ("bn", "in", "bin", "ln", "gn")

# The three stages of a CIFAR ResNet: (channels, spatial size).
STAGE_SHAPES = ((16, 32), (32, 16), (64, 8))
QUICK_SHAPES = ((16, 8), (32, 4))


def torch_norm(kind: str, channels: int) -> nn.Module:
    """torch's counterpart of the scratch norm `kind` (BIN has none: compared with BN)."""
    if kind in ("bn", "bin"):
        return nn.BatchNorm2d(channels)
    if kind == "in":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "ln":
        return nn.GroupNorm(1, channels)
    if kind == "gn":
        return nn.GroupNorm(default_num_groups(channels), channels)
    raise ValueError(f"no torch counterpart for norm {kind!r}")


def _train_step(
    layer: nn.Module, x: torch.Tensor, g: torch.Tensor, precision: str = "fp32"
) -> Callable[[], None]:
    def step() -> None:
        x.grad = None
        for p in layer.parameters():
            p.grad = None
        with autocast(x.device, precision):
            y = layer(x)
        y.backward(g)

    return step


def _eval_step(layer: nn.Module, x: torch.Tensor, precision: str = "fp32") -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad(), autocast(x.device, precision):
            layer(x)

    return step


def _warm_both_modes(
    x: torch.Tensor, g: torch.Tensor, precision: str
) -> Callable[[nn.Module], None]:
    def warm(layer: nn.Module) -> None:
        layer.train()
        _train_step(layer, x, g, precision)()
        layer.eval()
        _eval_step(layer, x, precision)()

    return warm


def layout_name(channels_last: bool) -> str:
    return "channels_last" if channels_last else "nchw"


def bench_layers(
    batch_size: int,
    repeats: int,
    device: torch.device,
    shapes=STAGE_SHAPES,
    norms=NORMS,
    channels_last: bool = False,
    compile_layers: bool | str = False,
    warmup: int = 3,
    inner: int = 5,
    precision: str = "fp32",
) -> list[dict]:
    """One row per (norm, shape, mode): median seconds of scratch and torch, and their ratio.

    `compile_layers` times both sides `torch.compile`d (as `compile=true` would run them).
    `precision` "bf16"/"fp16": autocast, with x and g in that dtype.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    dtype = PRECISIONS[precision] or torch.float32
    rows = []
    gen = torch.Generator().manual_seed(0)
    for kind in norms:
        for c, hw in shapes:
            shape = (batch_size, c, hw, hw)
            x = torch.randn(shape, generator=gen).to(device, dtype, memory_format=fmt)
            g = torch.randn(shape, generator=gen).to(device, dtype, memory_format=fmt)
            x.requires_grad_(True)
            sides, label = sides_to_time(
                make_norm(kind, c).to(device),
                torch_norm(kind, c).to(device),
                warm=_warm_both_modes(x, g, precision),
                eager_ref=torch_norm(kind, c).to(device) if compile_layers else None,
                mode=compile_mode(compile_layers),
            )
            for mode in ("train", "eval"):
                for layer in sides.values():
                    layer.train(mode == "train")
                step = _train_step if mode == "train" else _eval_step
                args = (x, g) if mode == "train" else (x,)
                fns = {name: step(layer, *args, precision) for name, layer in sides.items()}
                t = interleaved_medians(fns, repeats, warmup=warmup, inner=inner, device=device)
                rows.append(
                    {
                        "part": "layer",
                        "norm": kind,
                        "shape": "x".join(map(str, shape)),
                        "precision": precision,
                        "layout": layout_name(channels_last),
                        "mode": mode,
                        "timed": ("fwd+bwd" if mode == "train" else "fwd (no_grad)") + label,
                        **timings_and_ratios(t),
                    }
                )
                print_row(rows[-1])
    return rows
