"""Statistics for the norms: moments of x (N, C, H, W) per group, pooled over cells, the batch
and (with `sync`) over processes. The math they serve is in `project.nn.functional`."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

# A standardisation mode: (number of channel groups, whether statistics also pool over the batch).
Mode = tuple[int, bool]


def _sync_world() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _sum_over_processes(t: Tensor, sync: bool) -> Tensor:
    """t summed element-wise over all processes when `sync` and there are several; else t."""
    if sync and _sync_world():
        t = t.contiguous()
        dist.all_reduce(t)
    return t


def _global_batch(n: int, device: torch.device, sync: bool) -> int:
    """The batch size n summed over all processes (with `sync`): the over-batch group size."""
    if not (sync and _sync_world()):
        return n
    return int(_sum_over_processes(torch.tensor([n], device=device), sync).item())


def group_sum(t: Tensor, mode: Mode, sync: bool = False) -> Tensor:
    """Sum (N, C) per-channel values over each group of `mode`, broadcast back to (N, C).

    With `sync` and an over-batch mode, the sum also runs over all processes (all-reduce).
    """
    groups, over_batch = mode
    n, c = t.shape
    tg = t.reshape(n, groups, c // groups)
    s = tg.sum(dim=(0, 2) if over_batch else 2, keepdim=True)
    if over_batch:
        s = _sum_over_processes(s, sync)
    return s.expand_as(tg).reshape(n, c)


def pool_moments(
    mean: Tensor, var: Tensor, mode: Mode, sync: bool = False
) -> tuple[Tensor, Tensor, int]:
    """Pool per-(n, c) moments (each over the same number of pixels) into group moments.

    Law of total variance: Var = E[Var_within] + Var[E_within]. Returns the group mean and
    variance broadcast back to (N, C), and how many (n, c) cells each group holds (all processes
    counted when `sync`), so that the group size in pixels is that times H·W.
    """
    groups, over_batch = mode
    n, c = mean.shape
    cells = c // groups * (n if over_batch else 1)
    if sync and over_batch and _sync_world():
        # Global mean first, then the spread of the cell means around it: no E[x²] - E[x]² form.
        cells = _global_batch(n, mean.device, sync) * (c // groups)
        gmean = group_sum(mean, mode, sync=True) / cells
        gvar = group_sum(var + (mean - gmean).square(), mode, sync=True) / cells
        return gmean, gvar, cells
    mg = mean.reshape(n, groups, c // groups)
    vg = var.reshape(n, groups, c // groups)
    dims = (0, 2) if over_batch else (2,)
    gmean = mg.mean(dims, keepdim=True)
    gvar = vg.mean(dims, keepdim=True) + (mg - gmean).square().mean(dims, keepdim=True)
    return gmean.expand_as(mg).reshape(n, c), gvar.expand_as(vg).reshape(n, c), cells


def centered_moments(
    x: Tensor, mode: Mode | None = None, sync: bool = False
) -> tuple[Tensor, Tensor, Tensor, int]:
    """x (N, C, H, W) centred by the mean of its group under `mode`, and that mean and biased
    variance: (xc, mean, var, count) with mean, var of shape (N, G) — (1, G) for an over-batch
    mode — and count the elements per group (all processes counted when `sync`).
    `mode=None` centres each (n, c) cell over (H, W).

    Two-pass (the mean first, then Σ xc² as a squared vector norm), so no large-sum
    cancellation; both are plain per-cell reductions over (H, W) (fast on CPU, unlike
    `torch.var_mean`'s Welford kernel), pooled over the batch when needed. xc keeps x's shape
    and memory format.
    """
    n, c, h, w = x.shape
    groups, over_batch = (c, False) if mode is None else mode
    xg = x.unflatten(1, (groups, c // groups))  # a view, for any memory format
    dims = (2, 3, 4)
    count = c // groups * h * w

    def pooled(t: Tensor) -> Tensor:  # per-cell sums -> per-group sums
        return _sum_over_processes(t.sum(0, keepdim=True), sync) if over_batch else t

    if over_batch:
        count *= _global_batch(n, x.device, sync)
    mean = pooled(xg.sum(dim=dims)) / count
    xc = xg - mean[:, :, None, None, None]
    var = pooled(torch.linalg.vector_norm(xc, dim=dims).square_()) / count
    return xc.flatten(1, 2), mean, var, count


class Standardization(NamedTuple):
    """One mode's statistics, relative to the centring origin o (see `standardize`):
    x̂ = (x - o - mu)·rstd.

    mu: the mode's μ minus o, (N, C) or (1, C), or None where that is 0; rstd: 1/sqrt(σ² + ε),
    same shape; size: pixels pooled per group, or None for fixed statistics — constants, no
    gradient flows through them.
    """

    mu: Tensor | None
    rstd: Tensor
    size: int | None


class Moments(NamedTuple):
    """What `standardize` measured: xs = x - origin as a fresh tensor (None with fixed
    statistics only: BN's eval mode needs no moments), the origin ((N, C) or (1, C)), one
    `Standardization` per mode, and mode 0's mean and biased variance (as (C,) tensors for an
    over-batch mode: the moving-average update; unused otherwise)."""

    xs: Tensor | None
    origin: Tensor
    stats: list[Standardization]
    mean_0: Tensor
    var_0: Tensor


def standardize(x: Tensor, modes: tuple[Mode, ...], eps: float, fixed, sync: bool) -> Moments:
    """The statistics of every mode of x (N, C, H, W), from one centred copy of x.

    A single mode (BN, IN, LN, GN) centres each of its groups by the group's own mean (μ = 0
    relative to that origin: the fewest small ops). Two modes (BIN) centre per (n, c) cell and
    pool the cells' moments into each mode's groups. Fixed statistics alone (BN eval) need no
    moments and no copy.
    """
    n, c, h, w = x.shape
    if fixed is not None and len(modes) == 1:
        mu, var = fixed[0][None], fixed[1][None]  # (1, C): broadcasts over the batch
        stats = [Standardization(None, torch.rsqrt(var + eps), None)]
        return Moments(None, mu, stats, mu[0], var[0])  # views: never the buffers themselves
    if len(modes) == 1:
        # One mode (BN, IN, LN, GN): centre each group by its own mean, so μ = 0.
        xs, mean, var, count = centered_moments(x, modes[0], sync)
        mean_0, var_0 = mean[0], var[0]
        rstd = torch.rsqrt(var + eps)
        if mean.shape[1] != c:  # (N, G) -> (N, C)
            mean, rstd = (t.repeat_interleave(c // mean.shape[1], dim=1) for t in (mean, rstd))
        return Moments(xs, mean, [Standardization(None, rstd, count)], mean_0, var_0)
    # Two modes (BIN): centre per (n, c) cell and pool the cells' moments into each mode.
    xs, mean_nc, var_nc, _ = centered_moments(x)
    stats, first = [], None
    for k, mode in enumerate(modes):
        if k == 0 and fixed is not None:
            mu, var, size = fixed[0][None], fixed[1][None], None
        elif mode == (c, False):  # instance statistics: each cell's own mean is the origin
            mu, var, size = None, var_nc, h * w
        else:
            mu, var, cells = pool_moments(mean_nc, var_nc, mode, sync)
            size = cells * h * w
        if first is None:
            first = (mean_nc[0] if mu is None else mu[0], var[0])
        mu_rel = None if mu is None else mu - mean_nc
        stats.append(Standardization(mu_rel, torch.rsqrt(var + eps), size))
    return Moments(xs, mean_nc, stats, *first)
