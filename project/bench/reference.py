"""The benchmark's yardstick: `project.models.ResNet`'s architecture built from torch's own layers.

nn.Conv2d, nn.BatchNorm2d / nn.InstanceNorm2d / nn.GroupNorm, nn.ReLU, nn.AdaptiveAvgPool2d and
nn.Linear — what a plain-PyTorch user would write. It lives only here: the framework's models
use the from-scratch layers, and this one exists to measure what they cost. The option-A
shortcut is parameter-free tensor slicing and padding, so it is shared with the real model.
Only the linear head, shortcut A and ReLU are supported (the benchmarked configuration).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from project.bench.layers import torch_norm
from project.models import PadShortcut, ResNet


class RefBlock(nn.Module):
    """BasicBlock with torch layers: relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = torch_norm(norm, c_out)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.norm2 = torch_norm(norm, c_out)
        self.act2 = nn.ReLU()
        if stride == 1 and c_in == c_out:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = PadShortcut(c_in, c_out, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class RefResNet(nn.Module):
    """CIFAR ResNet 6n+2 (same layout and parameter order as `project.models.ResNet`)."""

    def __init__(
        self,
        n: int,
        num_classes: int = 10,
        norm: str = "bn",
        widths: tuple[int, ...] = (16, 32, 64),
        in_channels: int = 3,
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            torch_norm(norm, widths[0]),
            nn.ReLU(),
        )
        stages, c_in = [], widths[0]
        for i, width in enumerate(widths):
            blocks = []
            for j in range(n):
                blocks.append(RefBlock(c_in, width, 2 if (i > 0 and j == 0) else 1, norm))
                c_in = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> logits (B, num_classes)."""
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))


def reference_like(model: ResNet, norm: str) -> RefResNet:
    """A `RefResNet` with the same architecture and the same weights as `model`.

    Equal weights make both sides do the same arithmetic (same ReLU sparsity, same losses), so
    the timing compares implementations, not random initialisations. Parameters and buffers
    correspond one to one, in registration order (BIN's extra ρ has no torch counterpart).
    """
    widths = tuple(stage[-1].conv2.weight.shape[0] for stage in model.stages)
    num_classes, in_channels = model.fc.weight.shape[0], model.stem[0].weight.shape[1]
    ref = RefResNet(model.n, num_classes, norm, widths, in_channels)
    ours = [t for name, t in model.state_dict().items() if not name.endswith("rho")]
    theirs = ref.state_dict()
    if len(ours) != len(theirs):
        raise ValueError(f"cannot map {len(ours)} tensors onto the reference's {len(theirs)}")
    with torch.no_grad():
        for (name, t), src in zip(theirs.items(), ours):
            if t.shape != src.shape:
                raise ValueError(f"{name}: reference {tuple(t.shape)} vs {tuple(src.shape)}")
            t.copy_(src)
    return ref
