"""Weight initialisation of the CIFAR ResNets: `model.init` and `model.zero_init_residual`.

- `he` (default, the paper's): every conv Kaiming-normal, std = sqrt(2 / fan_in) (He et al.
  2015), which `project.nn.Conv2d` does on construction.
- `torch_default`: torch's own default for conv layers, kaiming_uniform(a=√5), i.e.
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)): weights about √6 times smaller. With BN and weight decay,
  smaller weights mean a larger effective step, which matters in short runs.
- `zero_init_residual`: the last norm's γ of every residual branch starts at 0 (the last conv's
  weights where the norm has no γ, e.g. norm=none), so every block starts as the identity
  (Goyal et al. 2017; torchvision's `zero_init_residual`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from project.models.blocks import BasicBlock
from project.nn import Conv2d

INITS = ("he", "torch_default")


@torch.no_grad()
def torch_default_init_(convs: list[Conv2d]) -> None:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, as torch's nn.Conv2d.reset_parameters."""
    for conv in convs:
        fan_in = conv.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        conv.weight.uniform_(-bound, bound)
        if conv.bias is not None:
            conv.bias.uniform_(-bound, bound)


@torch.no_grad()
def zero_init_residual_(blocks: list[BasicBlock]) -> None:
    for block in blocks:
        gamma = getattr(block.norm2, "weight", None)
        target = gamma if isinstance(gamma, nn.Parameter) else block.conv2.weight
        target.zero_()
