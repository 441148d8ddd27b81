"""CIFAR ResNet with 6n+2 weighted layers (He et al. 2016, Sec. 4.2)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from torch import Tensor, nn

from project.models.blocks import BasicBlock
from project.models.init import INITS, torch_default_init_, zero_init_residual_
from project.nn import BatchNorm2d, Conv2d, GlobalAvgPool2d, Linear, make_activation

HEADS = ("linear", "conv")

# Small classifier init: near-zero initial logits, so the initial loss is ln(num_classes).
CLASSIFIER_INIT_STD = 0.01


class ResNet(nn.Module):
    """3×3 conv (16) -> 3 stages of n BasicBlocks (16@32×32, 32@16×16, 64@8×8) -> pool -> head.

    Input (B, 3, 32, 32) -> logits (B, num_classes). Stages 2 and 3 downsample with a stride-2
    first conv. Depth = 1 + 6n + 1 weighted layers (ResNet-20 for n = 3: 0.27M parameters).

    norm_layer: `num_channels -> norm module` (torchvision's convention), called once per norm
    position; default the scratch BatchNorm2d. E.g. `functools.partial(GroupNorm2d, num_groups=8)`.
    init: "he" (the paper's) or "torch_default"; zero_init_residual: each block starts as the
    identity (see `project.models.init`).
    head="linear": global average pool, then one fully connected layer (COL775).
    head="conv": fully convolutional — a 1×1 convolution to num_classes channels, then global
    average pooling; no Linear layer anywhere (HW2).
    `features(x)` returns the penultimate features: the pooled (B, widths[-1]) vector.
    """

    def __init__(
        self,
        n: int,
        num_classes: int = 10,
        norm_layer: Callable[[int], nn.Module] | None = None,
        head: str = "linear",
        shortcut: str = "A",
        activation: str = "relu",
        widths: Sequence[int] = (16, 32, 64),
        in_channels: int = 3,
        init: str = "he",
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if n < 1:
            raise ValueError(f"ResNet needs n >= 1 blocks per stage, got n={n}")
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        self.n, self.head_kind = n, head
        widths = tuple(widths)
        norm_factory = norm_layer or BatchNorm2d
        act_factory = partial(make_activation, activation)
        self.stem = nn.Sequential(
            Conv2d(in_channels, widths[0], 3, padding=1), norm_factory(widths[0]), act_factory()
        )
        stages, width_in = [], widths[0]
        for i, width in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(
                    BasicBlock(width_in, width, stride, norm_factory, act_factory, shortcut)
                )
                width_in = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = GlobalAvgPool2d()
        if head == "linear":
            self.fc = Linear(widths[-1], num_classes, init_std=CLASSIFIER_INIT_STD)
        else:
            self.classifier = Conv2d(
                widths[-1], num_classes, 1, bias=True, init_std=CLASSIFIER_INIT_STD
            )
        self._initialize(init, zero_init_residual)

    def _initialize(self, init: str, zero_init_residual: bool) -> None:
        """`init` for the body's convs (not the small-std head); see `project.models.init`."""
        if init == "torch_default":
            body = [self.stem, self.stages]
            torch_default_init_(
                [m for part in body for m in part.modules() if isinstance(m, Conv2d)]
            )
        if zero_init_residual:
            zero_init_residual_([m for m in self.stages.modules() if isinstance(m, BasicBlock)])

    @staticmethod
    def norm_widths(widths: Sequence[int] = (16, 32, 64), **_) -> tuple[int, ...]:
        """The channel counts its norm layers see (the stage widths), for config checks."""
        return tuple(widths)

    def feature_map(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, widths[-1], H/4, W/4)."""
        return self.stages(self.stem(x))

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features: (B, 3, H, W) -> (B, widths[-1])."""
        return self.pool(self.feature_map(x))

    def forward(self, x: Tensor, return_features: bool = False):
        """(B, 3, H, W) -> logits (B, num_classes) [, features (B, widths[-1])]."""
        fmap = self.feature_map(x)
        feats = self.pool(fmap)
        if self.head_kind == "linear":
            logits = self.fc(feats)
        else:
            logits = self.pool(self.classifier(fmap))
        return (logits, feats) if return_features else logits
