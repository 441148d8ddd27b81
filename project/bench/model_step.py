"""Part 2: one full SGD training step of the scratch ResNet against the torch-layer reference.

A step is what training repeats: forward, cross-entropy, backward, optimizer.step, zero_grad
(plus BIN's ρ clipping for the scratch model, which the training loop does after every step).
Both models start from the same weights and see the same batch. With `precision` bf16 (fp16)
the forward pass runs under autocast and the loss in float32, as `trainer.precision=bf16-mixed`
does; with `channels_last` the models and the batch are channels_last. For every norm but BN,
torch's BatchNorm net (same conv weights) is timed in the same rounds too: `ratio_vs_torch_bn`
asks whether per-sample statistics cost more than batch statistics.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from project.bench.layers import NORMS, layout_name
from project.bench.reference import reference_like
from project.bench.timing import (
    autocast,
    compile_all,
    interleaved_medians,
    print_row,
    sides_to_time,
    timings_and_ratios,
)
from project.models import ResNet
from project.nn import apply_constraints_, norm_layer
from project.training.compiling import compile_mode


def _sgd_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32"
) -> Callable[[], None]:
    # The optimiser settings of the CIFAR ResNet recipe (He et al. 2016, Sec. 4.2).
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    constrain = any(hasattr(m, "apply_constraints_") for m in model.modules())

    def step() -> None:
        with autocast(x.device, precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
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
    compile_model: bool | str = False,
    image_size: int = 32,
    warmup: int = 2,
    precision: str = "fp32",
) -> list[dict]:
    """One row per norm kind: median seconds per training step, scratch vs torch layers, and vs
    torch's BatchNorm net (compiled too with `compile_model`), all timed in the same rounds."""
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
        others = {}  # torch's BN net, compiled with the pair when they are
        if kind != "bn":
            torch.manual_seed(0)  # the same conv weights as `scratch`
            bn_net = reference_like(ResNet(n, norm_layer=norm_layer("bn")), "bn")
            others["torch_bn"] = bn_net.to(device, memory_format=fmt).train()
        warm = lambda m: _sgd_step(m, x, y, precision)()  # noqa: E731
        mode = compile_mode(compile_model)
        sides, label = sides_to_time(scratch, ref, warm, eager, mode, others)
        fns = {name: _sgd_step(model, x, y, precision) for name, model in sides.items()}
        t = interleaved_medians(fns, repeats, warmup=warmup, device=device)
        if kind == "bn":
            t["torch_bn"] = t["torch"]
        rows.append(
            {
                "part": "model",
                "norm": kind,
                "shape": f"ResNet-{6 * n + 2} B={batch_size}",
                "precision": precision,
                "layout": layout_name(channels_last),
                "mode": "train step",
                "timed": "fwd+loss+bwd+SGD" + label,
                **timings_and_ratios(t),
            }
        )
        print_row(rows[-1])
    return rows


def bench_layout(
    n: int,
    batch_size: int,
    repeats: int,
    device: torch.device,
    norms=NORMS,
    image_size: int = 32,
    warmup: int = 2,
    precision: str = "fp32",
    compile_model: bool | str = False,
) -> list[dict]:
    """One row per norm kind: the scratch ResNet's training step channels_last vs NCHW.

    Both are the same model (same weights, same batch), timed interleaved; ratio =
    channels_last time / NCHW time, so > 1 means `channels_last=true` makes training slower.
    With `compile_model` both are `torch.compile`d, as `compile=true channels_last=...` runs them.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, image_size, image_size, generator=gen).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=gen).to(device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    rows = []
    for kind in norms:
        torch.manual_seed(0)
        nchw = ResNet(n, norm_layer=norm_layer(kind)).to(device).train()
        cl = (
            ResNet(n, norm_layer=norm_layer(kind))
            .to(device, memory_format=torch.channels_last)
            .train()
        )
        cl.load_state_dict(nchw.state_dict())
        batch_of = {id(nchw): x, id(cl): x_cl}
        label = ""
        if compile_model:
            # compile_all warms each compiled wrapper; `_orig_mod` finds the batch of its layout.
            def warm(m, batch_of=batch_of):
                _sgd_step(m, batch_of[id(m._orig_mod)], y, precision)()

            models = {"nchw": nchw, "channels_last": cl}
            models, note = compile_all(models, warm, compile_mode(compile_model))
            nchw, cl = models["nchw"], models["channels_last"]
            label = f" ({note})" if note else " compiled"
        fns = {
            "nchw": _sgd_step(nchw, x, y, precision),
            "channels_last": _sgd_step(cl, x_cl, y, precision),
        }
        t = interleaved_medians(fns, repeats, warmup=warmup, device=device)
        rows.append(
            {
                "part": "layout",
                "norm": kind,
                "shape": f"ResNet-{6 * n + 2} B={batch_size}",
                "precision": precision,
                "mode": "train step",
                "timed": "fwd+loss+bwd+SGD, scratch norms" + label,
                "channels_last_ms": 1e3 * t["channels_last"],
                "nchw_ms": 1e3 * t["nchw"],
                "ratio": t["channels_last"] / t["nchw"],
            }
        )
        print_row(rows[-1])
    return rows
