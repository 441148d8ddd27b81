"""Part 2: one full SGD training step of the scratch ResNet against the torch-layer reference.

A step is what training repeats: forward, cross-entropy, backward, optimizer.step, zero_grad
(plus BIN's ρ clipping for the scratch model, which the training loop does after every step).
Both models start from the same weights and see the same batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from project.bench.layers import NORMS
from project.bench.reference import reference_like
from project.bench.timing import (
    interleaved_medians,
    print_row,
    sides_to_time,
    timings_and_ratios,
)
from project.models import ResNet
from project.nn import apply_constraints_, norm_layer


def _sgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    # The optimiser settings of the CIFAR ResNet recipe (He et al. 2016, Sec. 4.2).
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    constrain = any(hasattr(m, "apply_constraints_") for m in model.modules())

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if constrain:
            apply_constraints_(model)

    return step


def bench_model_step(
    n: int,
    batch_size: int,
    repeats: int,
    device: torch.device,
    norms=NORMS,
    channels_last: bool = False,
    compile_model: bool = False,
    image_size: int = 32,
    warmup: int = 2,
) -> list[dict]:
    """One row per norm kind: median seconds per training step, scratch vs torch layers."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, image_size, image_size, generator=gen)
    x = x.to(device, memory_format=fmt)
    y = torch.randint(0, 10, (batch_size,), generator=gen).to(device)
    rows = []
    for kind in norms:
        torch.manual_seed(0)
        scratch = ResNet(n, norm_layer=norm_layer(kind)).to(device, memory_format=fmt).train()
        ref = reference_like(scratch, kind).to(device, memory_format=fmt).train()
        # With --compile, torch's layers uncompiled too (built before scratch is compiled).
        eager = None
        if compile_model:
            eager = reference_like(scratch, kind).to(device, memory_format=fmt).train()
        sides, label = sides_to_time(scratch, ref, lambda m: _sgd_step(m, x, y)(), eager)
        fns = {name: _sgd_step(model, x, y) for name, model in sides.items()}
        t = interleaved_medians(fns, repeats, warmup=warmup, device=device)
        rows.append(
            {
                "part": "model",
                "norm": kind,
                "shape": f"ResNet-{6 * n + 2} B={batch_size}",
                "mode": "train step",
                "timed": "fwd+loss+bwd+SGD" + (" channels_last" if channels_last else "") + label,
                **timings_and_ratios(t),
            }
        )
        print_row(rows[-1])
    return rows
