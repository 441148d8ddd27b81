"""From-scratch convolution, linear, activation and pooling modules (tensor ops only).

Shapes are NCHW throughout. Weights are our own `nn.Parameter`s; the forward passes call tensor
functions (`torch.conv2d`, matmul, `unfold`), never torch's layer classes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Conv2d(nn.Module):
    """2-D convolution, (N, C_in, H, W) -> (N, C_out, H', W').

    Weights (C_out, C_in, k, k) are initialised Kaiming-normal, std = sqrt(2 / (k²·C_in)) — He et
    al. 2015, eq. 10, which the ResNet paper uses. `init_std` overrides the std (small
    classifier heads). The bias (if any) starts at 0.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = False,
        init_std: float | None = None,
    ):
        super().__init__()
        self.stride, self.padding = stride, padding
        fan_in = in_channels * kernel_size * kernel_size
        std = math.sqrt(2.0 / fan_in) if init_std is None else init_std
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.randn(shape) * std)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return torch.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, kernel_size={k}, stride={self.stride}, padding={self.padding}"


class Linear(nn.Module):
    """Fully connected layer, (N, in) -> (N, out): y = x·Wᵀ + b.

    Default init as torch's: W, b ~ U(-1/sqrt(in), 1/sqrt(in)). With `init_std`, W ~ N(0, std²)
    and b = 0 — used for classifiers so that the initial logits are near zero and the initial
    loss is ln(num_classes).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, init_std: float | None = None
    ):
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        if init_std is None:
            weight = torch.empty(out_features, in_features).uniform_(-bound, bound)
            b = torch.empty(out_features).uniform_(-bound, bound)
        else:
            weight = torch.randn(out_features, in_features) * init_std
            b = torch.zeros(out_features)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(b) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        y = x @ self.weight.t()
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, bias={self.bias is not None}"


class ReLU(nn.Module):
    """max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x)


class Swish(nn.Module):
    """Swish (Ramachandran et al. 2017) with β = 1: x·sigmoid(x), elementwise (= SiLU)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(x)


ACTIVATIONS = {"relu": ReLU, "swish": Swish}


def make_activation(name: str) -> nn.Module:
    """`relu` or `swish` -> a fresh activation module."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _windows(x: Tensor, kernel: int, stride: int, padding: int, fill: float) -> Tensor:
    """Sliding k×k windows of x (N, C, H, W) -> a view (N, C, H', W', k, k).

    H' = floor((H + 2p - k) / s) + 1, as torch's pooling with ceil_mode=False.
    """
    if padding:
        x = F.pad(x, (padding, padding, padding, padding), value=fill)
    return x.unfold(2, kernel, stride).unfold(3, kernel, stride)


class _MaxPool(torch.autograd.Function):
    """Window max with the argmax kept: backward scatters each output gradient to one input.

    Autograd through `amax` would rebuild a (x == max) mask over every window in backward (3×
    slower on CPU); like torch's own max pooling, ties send the gradient to the first maximum.
    """

    @staticmethod
    def forward(ctx, x: Tensor, kernel: int, stride: int, padding: int) -> Tensor:
        n, c, h, w = x.shape
        if kernel == stride and not padding and h % kernel == 0 and w % kernel == 0:
            # Non-overlapping tiles (the usual 2×2/2): a reshape instead of the strided unfold.
            tiles = x.reshape(n, c, h // kernel, kernel, w // kernel, kernel).transpose(3, 4)
            windows = tiles.flatten(-2)  # (N, C, H', W', k²)
        else:
            windows = _windows(x, kernel, stride, padding, -math.inf).flatten(-2)
        values, index = windows.max(dim=-1)
        ctx.save_for_backward(index)
        ctx.geometry = (x.shape, kernel, stride, padding)
        return values

    @staticmethod
    def backward(ctx, grad: Tensor):
        (index,) = ctx.saved_tensors
        (n, c, h, w), kernel, stride, padding = ctx.geometry
        out_h, out_w = index.shape[-2:]
        # Input coordinates of each window's maximum (padding never wins: it is -inf).
        rows = torch.arange(out_h, device=grad.device).view(-1, 1) * stride + index // kernel
        cols = torch.arange(out_w, device=grad.device).view(1, -1) * stride + index % kernel
        flat = (rows - padding) * w + (cols - padding)
        grad_x = grad.new_zeros(n, c, h * w)
        grad_x.scatter_add_(2, flat.flatten(2), grad.flatten(2))
        return grad_x.view(n, c, h, w), None, None, None


class MaxPool2d(nn.Module):
    """Max over k×k windows (padding counts as -inf). (N, C, H, W) -> (N, C, H', W')."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride

    def forward(self, x: Tensor) -> Tensor:
        return _MaxPool.apply(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(MaxPool2d):
    """Mean over k×k windows; zero padding counts in the mean (torch's count_include_pad=True)."""

    def forward(self, x: Tensor) -> Tensor:
        return _windows(x, self.kernel_size, self.stride, self.padding, 0.0).mean((-2, -1))


class GlobalAvgPool2d(nn.Module):
    """Mean over all positions: (N, C, H, W) -> (N, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3))
