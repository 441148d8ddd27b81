"""SimpleNN, the LeNet-style network of the ECE661 labs."""

from __future__ import annotations

from torch import Tensor, nn

from project.nn import Conv2d, Linear, MaxPool2d, make_activation, make_norm


class SimpleNN(nn.Module):
    """conv5×5(3→8) -> [norm] -> act -> maxpool2 -> conv3×3(8→16) -> [norm] -> act -> maxpool2
    -> flatten(576) -> FC 120 -> act -> FC 84 -> act -> FC num_classes.

    Input (B, 3, 32, 32): 32 -5+1-> 28 -pool-> 14 -3+1-> 12 -pool-> 6, so 16·6·6 = 576 inputs.
    Weight counts 600, 1,152, 69,120, 10,080, 840 (81,792 without biases). `norm="bn"` puts
    batch norm after each conv (the lab's BN variant). `features(x)` -> (B, 84).
    """

    def __init__(
        self,
        num_classes: int = 10,
        norm: str = "none",
        activation: str = "relu",
        norm_options: dict | None = None,
        in_channels: int = 3,
    ):
        super().__init__()
        opts = dict(norm_options or {})
        bias = norm == "none"  # a norm's β makes a conv bias redundant
        self.conv = nn.Sequential(
            Conv2d(in_channels, 8, 5, bias=bias),
            make_norm(norm, 8, **opts),
            make_activation(activation),
            MaxPool2d(2),
            Conv2d(8, 16, 3, bias=bias),
            make_norm(norm, 16, **opts),
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

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, 32, 32) -> (B, 84)."""
        return self.mlp(self.conv(x))

    def forward(self, x: Tensor, return_features: bool = False):
        feats = self.features(x)
        logits = self.fc(feats)
        return (logits, feats) if return_features else logits
