"""The residual building block of CIFAR ResNets (He et al. 2016, Sec. 4.2 and Fig. 2 left)."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from project.nn import Conv2d

NormFactory = Callable[[int], nn.Module]
# A: zero-padding identity | B: 1x1 projection (He et al. 2016, Sec. 3.3) | B3: a 3x3 projection,
# as in the COL775 reference code (CosmoLuminous/deep-learning-col775, a1/resnet/src/resnet.py).
PROJECTION_KERNELS = {"B": 1, "B3": 3}  # projection shortcut -> its convolution's kernel size
SHORTCUTS = ("A", *PROJECTION_KERNELS)
ActivationFactory = Callable[[], nn.Module]


class PadShortcut(nn.Module):
    """Option A: identity shortcut that subsamples by `stride` and zero-pads the new channels.

    (N, C_in, H, W) -> (N, C_out, H/s, W/s); parameter-free, as the paper's CIFAR networks.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = out_channels - in_channels
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))  # pad channels only


class ProjectionShortcut(nn.Sequential):
    """Option B: k×k convolution with stride (k = 1 in the paper, 3 for "B3"), then norm.

    (N, C_in, H, W) -> (N, C_out, H/s, W/s).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, norm: NormFactory, kernel: int = 1
    ):
        conv = Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2)
        super().__init__(conv, norm(out_channels))


class BasicBlock(nn.Module):
    """out = act(norm(conv(act(norm(conv(x))))) + shortcut(x)), two 3×3 convolutions.

    (N, C_in, H, W) -> (N, C_out, H/stride, W/stride). The norm comes right after each conv; the
    shortcut is the identity when shapes match, else option A (zero-pad) or B (projection).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        norm: NormFactory,
        activation: ActivationFactory,
        shortcut: str = "A",
    ):
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.norm1 = norm(out_channels)
        self.act1 = activation()
        self.conv2 = Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        self.norm2 = norm(out_channels)
        self.act2 = activation()
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(in_channels, out_channels, stride)
        elif shortcut in PROJECTION_KERNELS:
            kernel = PROJECTION_KERNELS[shortcut]
            self.shortcut = ProjectionShortcut(in_channels, out_channels, stride, norm, kernel)
        else:
            raise ValueError(
                f"unknown shortcut {shortcut!r}; valid: 'A' (zero-pad), 'B' (1x1 conv), "
                "'B3' (3x3 conv)"
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act2(out + self.shortcut(x))
