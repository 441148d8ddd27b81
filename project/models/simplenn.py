"""SimpleNN, the LeNet-style network of the ECE661 labs."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from project.nn import Conv2d, Linear, MaxPool2d, make_activation


class SimpleNN(nn.Module):
    """conv5×5(3→8) -> [norm] -> act -> maxpool2 -> conv3×3(8→16) -> [norm] -> act -> maxpool2
    -> flatten(576) -> FC 120 -> act -> FC 84 -> act -> FC num_classes.

    Input (B, 3, 32, 32): 32 -5+1-> 28 -pool-> 14 -3+1-> 12 -pool-> 6, so 16·6·6 = 576 inputs.
    Weight counts 600, 1,152, 69,120, 10,080, 840 (81,792 without biases). `norm_layer`
    (`num_channels -> module`, default none) goes after each conv: `BatchNorm2d` is the lab's BN
    variant. `features(x)` -> (B, 84).
    """

    #: Channels of the two conv layers, i.e. what the norm layers see.
    NORM_WIDTHS = (8, 16)

    def __init__(
        self,
        num_classes: int = 10,
        norm_layer: Callable[[int], nn.Module] | None = None,
        activation: str = "relu",
        in_channels: int = 3,
    ):
        super().__init__()
        norms = [(norm_layer or nn.Identity)(width) for width in self.NORM_WIDTHS]
        bias = isinstance(norms[0], nn.Identity)  # a norm's β makes a conv bias redundant
        self.conv = nn.Sequential(
            Conv2d(in_channels, 8, 5, bias=bias),
            norms[0],
            make_activation(activation),
            MaxPool2d(2),
            Conv2d(8, 16, 3, bias=bias),
            norms[1],
            make_activation(activation),
            MaxPool2d(2),
            nn.Flatten(),
        )
        self.mlp = nn.Sequential(
            Linear(576, 120),
            make_activation(activation),
            Linear(120, 84),
            make_activation(activation),
        )
        self.fc = Linear(84, num_classes, init_std=0.01)

    @classmethod
    def norm_widths(cls, **_) -> tuple[int, ...]:
        """The channel counts its norm layers see, for config checks."""
        return cls.NORM_WIDTHS

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, 32, 32) -> (B, 84)."""
        return self.mlp(self.conv(x))

    def forward(self, x: Tensor, return_features: bool = False):
        feats = self.features(x)
        logits = self.fc(feats)
        return (logits, feats) if return_features else logits
