"""Normalisation layers for (N, C, H, W) feature maps, each a thin wrapper of `normalize_affine`.

All of them have a learnable per-channel affine γ (`weight`, init 1) and β (`bias`, init 0).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from project.nn.functional import normalize_affine
from project.nn.moments import Mode


class _AffineNorm(nn.Module):
    """Shared parameters: γ (`weight`) and β (`bias`), both (C,)."""

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__()
        if num_channels < 1:
            raise ValueError(f"num_channels must be >= 1, got {num_channels}")
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


class _PerSampleNorm(_AffineNorm):
    """Standardise each sample over groups of channels (IN, GN, LN): same in train and eval."""

    groups: int

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> (N, C, H, W)."""
        return normalize_affine(x, self.weight, self.bias, ((self.groups, False),), self.eps)[0]


class InstanceNorm2d(_PerSampleNorm):
    """Instance norm (Ulyanov et al. 2016): μ, σ² per sample and channel over (H, W).

    Equals `nn.InstanceNorm2d(C, affine=True)` (which keeps no running statistics either).
    """

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__(num_channels, eps)
        self.groups = num_channels


class LayerNorm2d(_PerSampleNorm):
    """Layer norm (Ba et al. 2016) for conv maps: μ, σ² per sample over (C, H, W).

    The affine stays per channel (as in `nn.GroupNorm(1, C)`, which it equals).
    """

    def __init__(self, num_channels: int, eps: float = 1e-5):
        super().__init__(num_channels, eps)
        self.groups = 1


def default_num_groups(num_channels: int) -> int:
    """Wu & He use G = 32 groups; CIFAR ResNets have only 16/32/64 channels, so cap G at C/2.

    That keeps the paper's G = 32 at 64 channels and at least two channels per group everywhere
    (G = C would be instance norm): 16 -> 8, 32 -> 16, 64 -> 32 groups.
    """
    return max(1, min(32, num_channels // 2))


class GroupNorm2d(_PerSampleNorm):
    """Group norm (Wu & He 2018, eq. 1-2): μ, σ² per sample over each group of C/G channels.

    `num_groups=None` picks `default_num_groups(C)`. Equals `nn.GroupNorm(G, C)`.
    """

    def __init__(self, num_channels: int, num_groups: int | None = None, eps: float = 1e-5):
        super().__init__(num_channels, eps)
        groups = default_num_groups(num_channels) if num_groups is None else int(num_groups)
        if groups < 1 or num_channels % groups:
            raise ValueError(
                f"GroupNorm: num_groups={groups} does not divide num_channels={num_channels}. "
                f"Choose a number of groups that divides every layer width (for widths "
                f"16/32/64: 1, 2, 4, 8 or 16), e.g. `norm.num_groups=8`, or leave it unset "
                f"(null) to use min(32, C/2) per layer."
            )
        self.groups = groups

    def extra_repr(self) -> str:
        return f"{self.groups} groups, {super().extra_repr()}"


class BatchNorm2d(_AffineNorm):
    """Batch norm (Ioffe & Szegedy 2015): μ, σ² per channel over (N, H, W).

    The semantics of the d2l-style `batch_norm(x, gamma, beta, moving_mean, moving_var, eps,
    momentum)`: in training, normalise with the mini-batch mean and biased variance and update
    the moving statistics; in evaluation, normalise with the moving statistics. One deliberate
    difference: the module's `training` flag (`model.train()` / `model.eval()`) picks the mode,
    not `torch.is_grad_enabled()`, so evaluating under `torch.no_grad()` in train mode (or
    computing gradients in eval mode) does what the flag says.

    Moving statistics follow torch's convention, `running = (1 - momentum)·running +
    momentum·batch` with momentum 0.1 (d2l's `momentum=0.9` weights the *old* value: the same
    update), and store the unbiased batch variance, so the layer equals `nn.BatchNorm2d`.

    Buffers: `running_mean`, `running_var` (C,) and `num_batches_tracked`.
    `sync=True` computes batch statistics over all processes of a `torch.distributed` group
    (like `nn.SyncBatchNorm`, with the matching gradient), for DDP training.
    """

    def __init__(
        self, num_channels: int, eps: float = 1e-5, momentum: float = 0.1, sync: bool = False
    ):
        super().__init__(num_channels, eps)
        self.momentum = momentum
        self.sync = sync
        self.register_buffer("running_mean", torch.zeros(num_channels))
        self.register_buffer("running_var", torch.ones(num_channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _normalize(self, x: Tensor, modes: tuple[Mode, ...], rho: Tensor | None) -> Tensor:
        fixed = None if self.training else (self.running_mean, self.running_var)
        y, batch_mean, batch_var = normalize_affine(
            x, self.weight, self.bias, modes, self.eps, rho=rho, fixed=fixed, sync=self.sync
        )
        if self.training:
            with torch.no_grad():
                self.running_mean.lerp_(batch_mean.to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_(batch_var.to(self.running_var.dtype), self.momentum)
                self.num_batches_tracked.add_(1)
        return y

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> (N, C, H, W)."""
        return self._normalize(x, ((self.num_channels, True),), None)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, momentum={self.momentum}, sync={self.sync}"


class BatchInstanceNorm2d(BatchNorm2d):
    """Batch-Instance norm (Nam & Kim 2018, eq. 4): y = γ·(ρ·x̂_BN + (1 - ρ)·x̂_IN) + β.

    ρ (`rho`, (C,), init 1 as in the authors' code) is learnable and must stay in [0, 1]: call
    `apply_constraints_()` after every optimiser step (the paper clips it there; the
    LightningModule does this for every module that has the method). The BN part keeps moving
    statistics exactly like `BatchNorm2d`; the IN part always uses the sample's own statistics.
    """

    def __init__(
        self,
        num_channels: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        sync: bool = False,
        rho_init: float = 1.0,
    ):
        super().__init__(num_channels, eps, momentum, sync)
        self.rho = nn.Parameter(torch.full((num_channels,), float(rho_init)))

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C, H, W) -> (N, C, H, W)."""
        c = self.num_channels
        return self._normalize(x, ((c, True), (c, False)), self.rho)

    @torch.no_grad()
    def apply_constraints_(self) -> None:
        """Clip ρ into [0, 1] in place (Nam & Kim 2018, Sec. 3)."""
        self.rho.clamp_(0.0, 1.0)
