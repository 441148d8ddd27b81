"""Statistics for the norms: moments of x (N, C, H, W) per group, pooled over cells, the batch
and (with `sync`) over processes. The math they serve is in `project.nn.functional`.

Precision and layout (autocast, channels_last). Whatever x's dtype, the statistics are float32
(float64 for float64 x): every full-size reduction accumulates in float32 and everything after
the per-(n, c) cell sums is (N, C)-sized float32 arithmetic. The full-size passes themselves
stay in x's dtype and memory format: a bfloat16 channels_last x is centred, scaled and
shifted in bfloat16 channels_last, never copied to float32 or to NCHW. Two torch CPU details
decide how:

- `t.sum(dim, dtype=torch.float32)` on a bfloat16 CPU tensor first copies all of t to float32
  (`aten::_to_copy`); CUDA reduces the low-precision input directly. torch's CPU bfloat16 sum
  kernel accumulates in float32 anyway and rounds once per result, so on the CPU the per-cell
  sums come from it (each (n, c) cell's sum rounded once to bfloat16: relative error 2^-9, the
  input's own precision) and are pooled in float32 (`cell_sums`).
- A binary op mixing dtypes (bfloat16 x times a float32 coefficient) copies x to float32 and the
  result back; so the (N, C) coefficients are cast to x's dtype first (`expand_like`). And
  with channels_last, a (N, C, 1, 1) operand makes the CPU kernel's inner loop only C elements
  long (16 at the first ResNet stage): shorter than two SIMD vectors, so it runs scalar, 5-12x
  slower. `expand_like` gives it a materialised (N, C, 1, W) operand instead: inner loop W·C.
  On CUDA that materialisation is a launch plus ~130 µs of host time per call in a step that is
  bound by kernel launches (experiments/benchmarks, "On a lent GPU"), so there it stays a view.

Under `torch.compile` inductor writes its own fused loops, so `expand_like` hands it the plain
(N, C, 1, 1) view, and per-group values reach (N, C) through a matmul (`_per_channel`): inlined,
a `repeat_interleave` becomes a per-element gather that inductor does not vectorise.

The centring origin o is the group mean rounded to x's dtype (exact for float32/64, where the
relative mean μ - o is 0 and dropped): x - o is then exact to x's precision, and μ - o is kept
as the tiny relative mean of `Standardization`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

# A standardisation mode: (number of channel groups, whether statistics also pool over the batch).
Mode = tuple[int, bool]

LOW_PRECISION = (torch.bfloat16, torch.float16)


def _sync_world() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _sum_over_processes(t: Tensor, sync: bool) -> Tensor:
    """t summed element-wise over all processes when `sync` and there are several; else t."""
    if sync and _sync_world():
        t = t.contiguous()
        dist.all_reduce(t)
    return t


def _cells_per_group(n: int, c: int, mode: Mode, device: torch.device, sync: bool) -> int:
    """How many (n, c) cells each group of `mode` holds: C/G, times the batch size summed over
    all processes (with `sync`) for an over-batch mode."""
    groups, over_batch = mode
    if not over_batch:
        return c // groups
    if sync and _sync_world():
        n = int(_sum_over_processes(torch.tensor([n], device=device), sync).item())
    return c // groups * n


def stat_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype statistics are kept in for activations of `dtype`: float32 for bf16/fp16."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def is_channels_last(x: Tensor) -> bool:
    """x (N, C, H, W) stored channels_last (C innermost) rather than NCHW."""
    return x.stride(1) == 1 and x.shape[1] > 1 and not x.is_contiguous()


def cell_sums(t: Tensor) -> Tensor:
    """Σ t over (H, W) per (n, c): (N, C), accumulated and returned in float32 (t's dtype for
    float32/64), without copying t (see the module docstring)."""
    if t.dtype == torch.bfloat16 and t.device.type == "cpu":
        return t.sum(dim=(2, 3)).float()  # float32 accumulation inside, one rounding per cell
    return t.sum(dim=(2, 3), dtype=stat_dtype(t.dtype))


def cell_sq_sums(t: Tensor) -> Tensor:
    """Σ t² over (H, W) per (n, c): (N, C) in float32 (float64 for float64 t), no copy of t."""
    if t.dtype == torch.bfloat16 and t.device.type == "cpu":
        if is_channels_last(t):  # vector_norm's CPU kernel is ~5x slower channels_last
            flat = t.flatten(2)  # a view: H, W are adjacent in either layout
            return torch.linalg.vecdot(flat, flat).float()
        return torch.linalg.vector_norm(t, dim=(2, 3)).float().square_()
    if t.dtype in LOW_PRECISION:  # fp16 squares overflow at 256: reduce in float32
        return torch.linalg.vector_norm(t, dim=(2, 3), dtype=torch.float32).square_()
    if is_channels_last(t):
        flat = t.flatten(2)
        return torch.linalg.vecdot(flat, flat)
    return torch.linalg.vector_norm(t, dim=(2, 3)).square_()


def expand_like(coef: Tensor, x: Tensor) -> Tensor:
    """(N, C) or (1, C) coefficients as an operand broadcastable against x, in x's dtype.

    NCHW, or any device but the CPU: the (N, C, 1, 1) view. channels_last on the CPU: a
    materialised (N, C, 1, W) tensor (W·C values per sample, C innermost like x), so that
    elementwise kernels see an inner loop of W·C contiguous elements instead of C (see the module
    docstring) — unless C alone fills two 512-bit vectors (64 bf16 or 32 float32 channels),
    where the view is as fast and costs no op.
    """
    coef = coef.to(x.dtype)
    n, c = coef.shape
    w = x.shape[3]
    cpu_short_rows = x.device.type == "cpu" and w > 1 and c * x.element_size() < 128
    if torch.compiler.is_compiling() or not (cpu_short_rows and is_channels_last(x)):
        # NCHW, not a CPU, C already spans two 512-bit vectors, or inductor, which writes its
        # own loops (the materialised operand would only add a pass there)
        return coef.view(n, c, 1, 1)
    return coef.repeat(1, w).as_strided((n, c, 1, w), (w * c, 1, w * c, c))


def group_sum(t: Tensor, mode: Mode, sync: bool = False) -> Tensor:
    """Sum (N, C) per-channel values over each group of `mode`, broadcast back to (N, C), or to
    (1, C) for an over-batch mode (it broadcasts against (N, C) alike).

    With `sync` and an over-batch mode, the sum also runs over all processes (all-reduce).
    """
    return _per_channel(_group_totals(t, mode, sync), t.shape[1])


def _group_totals(t: Tensor, mode: Mode, sync: bool) -> Tensor:
    """(N, C) per-cell values summed per group of `mode`: (N, G), or (1, G) over the batch
    (and over all processes with `sync`)."""
    groups, over_batch = mode
    n, c = t.shape
    s = t.reshape(n, groups, c // groups).sum(2) if groups != c else t
    return _sum_over_processes(s.sum(0, keepdim=True), sync) if over_batch else s


def _per_channel(t: Tensor, c: int) -> Tensor:
    """(N, G) per-group values -> (N, C), each group's value repeated over its channels.

    Under `torch.compile` a product with the (G, C) 0/1 group-membership matrix instead (exact:
    one nonzero term per sum). inductor inlines `repeat_interleave` into every full-size kernel
    that reads the result as a per-element gather of index c // (C/G), and on the CPU, where it
    lays convolution outputs out channels_last (also for NCHW models), that gather sits in the
    innermost loop over the channels and is not vectorised. A matmul is an external kernel, so
    the (N, C) values land in a buffer that the full-size loops read with contiguous vector
    loads (GN's compiled ResNet-14 step, bf16 NCHW: experiments/benchmarks, issue 11).
    """
    groups = t.shape[1]
    if groups == c:
        return t
    if not torch.compiler.is_compiling():
        return t.repeat_interleave(c // groups, dim=1)
    member = torch.eye(groups, dtype=t.dtype, device=t.device).repeat_interleave(c // groups, 1)
    return t @ member


def pool_moments(
    mean: Tensor, var: Tensor, mode: Mode, sync: bool = False
) -> tuple[Tensor, Tensor, int]:
    """Pool per-(n, c) moments (each over the same number of pixels) into group moments.

    Law of total variance: Var = E[Var_within] + Var[E_within], with the group mean taken first
    and the spread of the cell means around it (no E[x²] - E[x]² cancellation). Returns the
    group mean and variance broadcast back to (N, C), or (1, C) for an over-batch mode, and how
    many (n, c) cells each group holds (all processes counted when `sync`), so that the group
    size in pixels is that times H·W.
    """
    n, c = mean.shape
    cells = _cells_per_group(n, c, mode, mean.device, sync)
    gmean = group_sum(mean, mode, sync) / cells
    gvar = group_sum(var + (mean - gmean).square(), mode, sync) / cells
    return gmean, gvar, cells


def _rounded_origin(mean: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor | None]:
    """(o, μ - o): the centring origin, the mean rounded to the activations' dtype (as a
    statistics-dtype tensor), and the mean relative to it; None where it is exactly 0."""
    if dtype not in LOW_PRECISION:
        return mean, None
    origin = mean.to(dtype).to(mean.dtype)
    return origin, mean - origin


def centered_moments(
    x: Tensor, mode: Mode | None = None, sync: bool = False
) -> tuple[Tensor, Tensor, Tensor | None, Tensor, Tensor, int]:
    """x (N, C, H, W) centred by the mean of its group under `mode`, and that group's moments:
    (xs, origin, mu, mean, var, count). xs = x - origin keeps x's dtype and memory format;
    origin is per (n, c) (per (1, C) for an over-batch mode), the group mean rounded to x's
    dtype; mu = mean - origin per (n, c) or None where 0 (float32/64 x); mean and the biased
    variance are per group, (N, G) or (1, G), in float32 (float64 for float64 x); count is the
    elements per group (all processes counted when `sync`). `mode=None` centres each (n, c)
    cell over (H, W).

    Two-pass (the mean first, then Σ xs² per cell), so no large-sum cancellation; both are
    plain per-cell reductions over (H, W) (fast on CPU, unlike `torch.var_mean`'s Welford
    kernel), pooled into groups in (N, C)-sized arithmetic.
    """
    n, c, h, w = x.shape
    mode = (c, False) if mode is None else mode
    count = _cells_per_group(n, c, mode, x.device, sync) * h * w
    mean = _group_totals(cell_sums(x), mode, sync) / count
    origin_g, mu_g = _rounded_origin(mean, x.dtype)
    origin = _per_channel(origin_g, c)
    xs = x - expand_like(origin, x)
    var = _group_totals(cell_sq_sums(xs), mode, sync) / count
    mu = None
    if mu_g is not None:  # Σ (xs - mu)² = Σ xs² - count·mu²
        var = var.sub_(mu_g.square()).clamp_(min=0)
        mu = _per_channel(mu_g, c)
    return xs, origin, mu, mean, var, count


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
    """What `standardize` measured: xs = x - origin as a fresh tensor in x's dtype and memory
    format (None with fixed statistics only: BN's eval mode needs no moments), the origin ((N,
    C) or (1, C), float32 for low-precision x), one `Standardization` per mode, and mode 0's mean
    and biased variance (as (C,) tensors for an over-batch mode: the moving-average update;
    unused otherwise)."""

    xs: Tensor | None
    origin: Tensor
    stats: list[Standardization]
    mean_0: Tensor
    var_0: Tensor


def standardize(x: Tensor, modes: tuple[Mode, ...], eps: float, fixed, sync: bool) -> Moments:
    """The statistics of every mode of x (N, C, H, W), from one centred copy of x.

    A single mode (BN, IN, LN, GN) centres each of its groups by the group's own mean (μ = 0
    relative to that origin, up to rounding to x's dtype: the fewest small ops). Two modes (BIN)
    centre per (n, c) cell and pool the cells' moments into each mode's groups. Fixed statistics
    alone (BN eval) need no moments and no copy.
    """
    n, c, h, w = x.shape
    if fixed is not None and len(modes) == 1:
        mu, var = fixed[0][None], fixed[1][None]  # (1, C): broadcasts over the batch
        stats = [Standardization(None, torch.rsqrt(var + eps), None)]
        return Moments(None, mu, stats, mu[0], var[0])  # views: never the buffers themselves
    if len(modes) == 1:
        # One mode (BN, IN, LN, GN): centre each group by its own mean, so μ = 0 (or tiny).
        xs, origin, mu, mean, var, count = centered_moments(x, modes[0], sync)
        rstd = _per_channel(torch.rsqrt(var + eps), c)
        return Moments(xs, origin, [Standardization(mu, rstd, count)], mean[0], var[0])
    # Two modes (BIN): centre per (n, c) cell and pool the cells' moments into each mode.
    xs, origin, mu_nc, mean_nc, var_nc, _ = centered_moments(x)
    stats, first = [], None
    for k, mode in enumerate(modes):
        if k == 0 and fixed is not None:
            mu, var, size = fixed[0][None], fixed[1][None], None
        elif mode == (c, False):  # instance statistics: each cell's own mean
            mu, var, size = mean_nc, var_nc, h * w
        else:
            mu, var, cells = pool_moments(mean_nc, var_nc, mode, sync)
            size = cells * h * w
        if first is None:
            first = (mu[0], var[0])
        mu_rel = mu_nc if mu is mean_nc else mu - origin
        stats.append(Standardization(mu_rel, torch.rsqrt(var + eps), size))
    return Moments(xs, origin, stats, *first)
