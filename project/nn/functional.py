"""The one piece of normalisation math every norm layer shares.

Every norm here (Batch, Instance, Batch-Instance, Layer, Group) is "standardise x over some set of
elements, then a per-channel affine":

    x̂ = (x - μ) / sqrt(σ² + ε),        y = γ · x̂ + β        (Ioffe & Szegedy 2015, eq. 1)

and they differ only in the set μ, σ² are taken over, for x of shape (N, C, H, W):

    BN  (N, H, W) per channel       -> groups = C, over_batch = True
    IN  (H, W) per sample, channel  -> groups = C, over_batch = False
    GN  (C/G, H, W) per sample       -> groups = G, over_batch = False    (Wu & He 2018, eq. 1-2)
    LN  (C, H, W) per sample         -> groups = 1, over_batch = False    (Ba et al. 2016)

A single mode (BN, IN, LN, GN) centres x by its group mean, xs = x - μ, with two plain
reductions: the mean, then Σ xs² as a squared vector norm (two-pass, so no large-sum
cancellation; `torch.var_mean`'s Welford kernel is ~50x slower on CPU). Batch-Instance norm
(Nam & Kim 2018) mixes two standardisations, y = γ·(ρ·x̂_BN + (1-ρ)·x̂_IN) + β: it centres x
per (n, c) cell and pools the cells' moments into both modes with the law of total variance
(exact, and stable because it never subtracts two large sums).

Speed: autograd through the readable formula materialises x - μ, x̂ and γ·x̂ and walks them all
backward (about 1.5x slower than torch's fused kernel in a ResNet step). `NormalizeAffine` instead
folds everything into y = a·xs + b with per-(n, c) coefficients a, b, written in place into the
centred copy xs, and uses the closed-form backward

    dx = r · (g' - mean(g') - x̂ · mean(g' · x̂)),   g' = γ·g,  r = 1/sqrt(σ² + ε),

whose full-size work is two reductions (Σ g, Σ g·xs over H, W) and three in-place passes, all
in one buffer. Only x (the input) and (N, C)-sized statistics are kept for backward. Every extra
full-size tensor matters on CPU: a fresh large allocation costs page faults comparable to the
arithmetic. With fixed statistics only (BatchNorm's eval mode) no moments are needed at all:
y = a·x + b'. Without autograd (validation, inference) the forward skips the autograd.Function.

Mixed precision: for a bfloat16/float16 x (autocast) the statistics, coefficients and parameter
gradients are float32, the full-size passes run in x's dtype and memory format, and y and dx
come back in both; `project.nn.moments` says how (and which torch CPU paths that avoids).
"""

from __future__ import annotations

import torch
from torch import Tensor

from project.nn.moments import (
    Mode,
    cell_sums,
    expand_like,
    group_sum,
    is_channels_last,
    standardize,
)


def _scale_shift(t: Tensor, a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """t·a + b with (N, C) or (1, C) coefficients a, b, into `out` (may be t itself).

    In t's dtype and memory format (`expand_like`). NCHW: a multiply and an in-place add, because
    torch's `addcmul(b, t, a)` with two broadcast operands takes a ~3-5x slower CPU path;
    channels_last: one `addcmul`, whose operands `expand_like` makes contiguous along W·C.

    Under `torch.compile` the result is a fresh tensor: inductor plans its own buffers, and
    dynamo before torch 2.14 breaks the graph at an `out=` into a channels_last tensor
    (measured on torch 2.11: the compiled ResNet-14 step ran slower than eager on an H100).
    """
    out = _into(out)
    if is_channels_last(t):
        return torch.addcmul(expand_like(b, t), t, expand_like(a, t), out=out)
    return torch.mul(t, expand_like(a, t), out=out).add_(expand_like(b, t))


def _into(buf: Tensor | None) -> Tensor | None:
    """`buf` as an `out=` target in eager mode; None (a fresh tensor) under `torch.compile`."""
    return None if torch.compiler.is_compiling() else buf


def _weighted(m: Tensor | None, t: Tensor) -> Tensor:
    """w_k·t; a single mode has w = 1 (m None) and costs no op."""
    return t if m is None else m * t


def _total(terms: list[Tensor]) -> Tensor:
    """Σ terms without the extra `0 + t` op of Python's sum()."""
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]


def _forward(x, weight, bias, rho, modes, eps, fixed, sync):
    """y = a·(x - o) + b = γ·Σ_k w_k·(x - o - μ_k)·r_k + β with per-(n, c) or per-channel a, b.

    Returns y, the mixing weights, a and the `Moments`. y is computed in place in the centred
    copy xs: every extra full-size tensor is a fresh allocation, and on CPU its page faults
    cost as much as the arithmetic. a and b are float32 (N, C) coefficients, cast to x's dtype
    only for the full-size pass (`_scale_shift`), so y has x's dtype and memory format.
    """
    m = standardize(x, modes, eps, fixed, sync)
    mix = [None] if rho is None else [rho, 1.0 - rho]
    a = weight * _total([_weighted(w, s.rstd) for w, s in zip(mix, m.stats)])
    shifts = [_weighted(w, s.rstd * s.mu) for w, s in zip(mix, m.stats) if s.mu is not None]
    b = bias - weight * _total(shifts) if shifts else bias[None]
    if m.xs is None:  # y = a·x + (b - a·o): no centred copy needed
        y = _scale_shift(x, a, b - a * m.origin)
    else:
        y = _scale_shift(m.xs, a, b, out=m.xs)
    return y, mix, a, m


def _unbiased(var: Tensor, modes: tuple[Mode, ...], size: int | None) -> Tensor:
    """Mode 0's unbiased batch variance, as the moving average stores it (like
    nn.BatchNorm2d); unchanged for fixed statistics or a per-sample mode (not used there)."""
    return var if size is None or not modes[0][1] else var * (size / max(size - 1, 1))


class NormalizeAffine(torch.autograd.Function):
    """y = γ · Σ_k w_k · x̂_k + β for up to two standardisation modes with mixing weights w_k.

    Inputs: x (N, C, H, W); weight γ, bias β (C,); rho (C,) or None — with two modes, w_0 = ρ and
    w_1 = 1 - ρ (Batch-Instance norm); with one mode, w_0 = 1. `modes` is a tuple of `Mode`.
    `fixed` is None or (mean, var) of shape (C,) that replace the batch statistics of mode 0
    (BatchNorm's eval mode: the moving statistics, treated as constants). `sync` all-reduces
    over-batch statistics and their gradient terms across processes (SyncBatchNorm).

    Returns (y, mean_0, var_0): the output (same shape and memory format as x) and mode 0's
    batch mean and *unbiased* batch variance as (C,) tensors, for the moving-average update (not
    differentiable; meaningful only for the over-batch mode).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, rho, modes, eps, fixed, sync):  # noqa: D102
        y, mix, a, m = _forward(x, weight, bias, rho, modes, eps, fixed, sync)
        # Only x and small (N, C) statistics are kept; y is not needed for backward.
        ctx.save_for_backward(x, weight, a)
        ctx.set_materialize_grads(False)  # no zero tensors for the statistics' gradients
        ctx.mix, ctx.origin, ctx.stats, ctx.modes, ctx.sync = mix, m.origin, m.stats, modes, sync
        batch_mean, batch_var = m.mean_0, _unbiased(m.var_0, modes, m.stats[0].size)
        ctx.mark_non_differentiable(batch_mean, batch_var)
        return y, batch_mean, batch_var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g, _gmean, _gvar):  # noqa: D102
        if g is None:  # only the (non-differentiable) statistics were used
            return (None,) * 8
        x, weight, a = ctx.saved_tensors
        mix, stats, origin = ctx.mix, ctx.stats, ctx.origin
        # The two full-size reductions: Σ g and Σ g·xs over (H, W) (float32 (N, C) sums), with
        # xs = x - o recomputed into the one full-size buffer, which then receives dx.
        sum_g = cell_sums(g)
        buf = torch.sub(x, expand_like(origin, x))
        sum_gx = cell_sums(buf.mul_(g))
        # Σ_hw g·x̂_k per (n, c), for the parameter gradients.
        gxhat = [s.rstd * (sum_gx if s.mu is None else sum_gx - s.mu * sum_g) for s in stats]
        grad_bias = sum_g.sum(0)
        grad_weight = _total([_weighted(w, t) for w, t in zip(mix, gxhat)]).sum(0)
        grad_rho = (weight * (gxhat[0] - gxhat[1])).sum(0) if mix[0] is not None else None
        grads = (grad_weight, grad_bias, grad_rho, None, None, None, None)
        if not ctx.needs_input_grad[0]:
            return None, *grads
        if all(s.size is None for s in stats):  # fixed statistics only: dx = a·g
            return torch.mul(g, expand_like(a, g), out=_into(buf)), *grads
        # dx = a·g for fixed statistics; each batch-statistics mode k adds
        # r·(g' - mean(g') - x̂·mean(g'·x̂)) with g' = w_k·γ·g, x̂ = (xs - μ)·r, which expands
        # into coef_x·xs + coef_1 per (n, c). Means run over the group; μ (relative to each
        # cell's origin) differs between a group's cells, so Σ g'·x̂ is pooled per cell first.
        coef_x, coef_1 = 0, 0
        for mode, w, s, gxh in zip(ctx.modes, mix, stats, gxhat):
            if s.size is None:
                continue
            mean_g = group_sum(_weighted(w, weight * sum_g), mode, ctx.sync) / s.size
            mean_gxhat = group_sum(_weighted(w, weight * gxh), mode, ctx.sync) / s.size
            r2_mean_gxhat = s.rstd * s.rstd * mean_gxhat
            coef_x = coef_x - r2_mean_gxhat
            coef_1 = coef_1 - s.rstd * mean_g
            if s.mu is not None:
                coef_1 = coef_1 + r2_mean_gxhat * s.mu
        # coef_x·(x - o) + coef_1 + a·g, from x: no second full-size buffer.
        grad_x = _scale_shift(x, coef_x, coef_1 - coef_x * origin, out=buf)
        return grad_x.addcmul_(g, expand_like(a, g)), *grads


def normalize_affine(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    modes: tuple[Mode, ...],
    eps: float,
    rho: Tensor | None = None,
    fixed: tuple[Tensor, Tensor] | None = None,
    sync: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Functional entry point of `NormalizeAffine` (see there for shapes).

    Without autograd (no_grad, or no input requiring grad: validation, inference) the same
    forward runs outside the autograd.Function, which saves its bookkeeping.
    """
    if x.dim() != 4:
        raise ValueError(
            f"normalisation expects an (N, C, H, W) tensor, got shape {tuple(x.shape)}"
        )
    if torch.is_autocast_enabled(x.device.type):
        # Every dtype here is chosen explicitly (statistics float32, full-size passes in x's
        # dtype); autocast would move some reductions (e.g. norms, on CUDA) to float32 copies.
        with torch.autocast(x.device.type, enabled=False):
            return normalize_affine(x, weight, bias, modes, eps, rho, fixed, sync)
    tracked = (x, weight, bias) if rho is None else (x, weight, bias, rho)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tracked):
        return NormalizeAffine.apply(x, weight, bias, rho, modes, eps, fixed, sync)
    y, _, _, m = _forward(x, weight, bias, rho, modes, eps, fixed, sync)
    return y, m.mean_0, _unbiased(m.var_0, modes, m.stats[0].size)
