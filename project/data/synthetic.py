"""A procedurally generated, learnable 10-class image dataset for offline work and fast tests:
``make_synthetic`` and its data source ``SyntheticDataModule``.

Each class is a shape (disc, square, triangle, ring, cross, horizontal stripes, vertical stripes,
diamond, checkerboard, X) drawn at a random position and scale, in a class-tinted but jittered
colour over a random dark background, plus Gaussian pixel noise. Colour alone is a weak cue and
shape a strong one, so a linear model beats chance clearly while a CNN can get near 100%.

Generation is fully vectorized and deterministic given the seed (CPU generator).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from project.data.datamodule import ImageDataModule

SYNTHETIC_CLASSES = (
    "disc",
    "square",
    "triangle",
    "ring",
    "cross",
    "hstripes",
    "vstripes",
    "diamond",
    "checker",
    "xshape",
)
NUM_SYNTHETIC_CLASSES = len(SYNTHETIC_CLASSES)

# One base hue per class (RGB in [0, 1]); jittered per image so colour is only a partial cue.
_BASE_COLOURS = torch.tensor(
    [
        [0.95, 0.30, 0.30],
        [0.30, 0.90, 0.35],
        [0.35, 0.45, 0.95],
        [0.95, 0.85, 0.30],
        [0.85, 0.35, 0.90],
        [0.30, 0.90, 0.90],
        [0.95, 0.60, 0.25],
        [0.65, 0.95, 0.40],
        [0.55, 0.40, 0.85],
        [0.90, 0.90, 0.90],
    ]
)

# Images are generated in chunks so memory stays bounded (10 masks per pixel per image).
_CHUNK = 2048


def _shape_masks(dx: Tensor, dy: Tensor) -> Tensor:
    """All class masks for normalized coordinates ``dx, dy`` (N, H, W) -> bool (N, 10, H, W).

    Coordinates are relative to each image's shape centre, divided by its radius, so every shape
    fits in the square ``[-1, 1]^2``.
    """
    r = torch.sqrt(dx.square() + dy.square())
    box = (dx.abs() < 1) & (dy.abs() < 1)
    masks = [
        r < 1.0,  # disc
        (dx.abs() < 0.8) & (dy.abs() < 0.8),  # square
        (dy > -0.8) & (dy < 0.8) & (dx.abs() < (dy + 0.8) * 0.6),  # triangle (apex up)
        (r > 0.55) & (r < 1.0),  # ring
        ((dx.abs() < 0.3) | (dy.abs() < 0.3)) & box,  # cross
        box & (torch.sin(dy * 2.5 * math.pi) > 0),  # horizontal stripes
        box & (torch.sin(dx * 2.5 * math.pi) > 0),  # vertical stripes
        (dx.abs() + dy.abs()) < 1.0,  # diamond
        box & ((torch.floor(dx * 2) + torch.floor(dy * 2)).remainder(2) == 0),  # checkerboard
        box & ((dx.abs() - dy.abs()).abs() < 0.28),  # X
    ]
    return torch.stack(masks, dim=1)


def _generate_chunk(labels: Tensor, size: int, noise: float, gen: torch.Generator) -> Tensor:
    """Render images for ``labels`` (N,) int64 -> float (N, 3, size, size) in [0, 1]."""
    n = labels.shape[0]
    radius = (0.22 + 0.16 * torch.rand(n, generator=gen)) * size  # (N,)
    centre = (0.5 + (torch.rand(n, 2, generator=gen) - 0.5) * 0.4) * size  # (N, 2) row, col
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    dy = (coords.view(1, size, 1) - centre[:, 0].view(n, 1, 1)) / radius.view(n, 1, 1)
    dx = (coords.view(1, 1, size) - centre[:, 1].view(n, 1, 1)) / radius.view(n, 1, 1)
    dx, dy = torch.broadcast_tensors(dx, dy)  # (N, H, W)
    masks = _shape_masks(dx, dy)  # (N, 10, H, W)
    mask = masks[torch.arange(n), labels].unsqueeze(1).float()  # (N, 1, H, W)

    fg = (_BASE_COLOURS[labels] + 0.25 * torch.randn(n, 3, generator=gen)).clamp(0.1, 1.0)
    bg = 0.45 * torch.rand(n, 3, generator=gen)
    img = bg.view(n, 3, 1, 1) * (1 - mask) + fg.view(n, 3, 1, 1) * mask
    img = img + noise * torch.randn(n, 3, size, size, generator=gen)
    return img.clamp_(0, 1)


def make_synthetic(
    n: int, seed: int, noise: float = 0.1, image_size: int = 32
) -> tuple[Tensor, Tensor]:
    """Generate ``n`` labelled images, identical for identical arguments.

    Labels are balanced (``n // 10`` or one more per class) and shuffled.

    Returns:
        images: uint8 ``(n, 3, image_size, image_size)``.
        labels: int64 ``(n,)`` in ``[0, 10)``.
    """
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_SYNTHETIC_CLASSES
    labels = labels[torch.randperm(n, generator=gen)]
    images = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    for start in range(0, n, _CHUNK):
        chunk = _generate_chunk(labels[start : start + _CHUNK], image_size, noise, gen)
        images[start : start + _CHUNK] = chunk.mul_(255).round_().to(torch.uint8)
    return images, labels


class SyntheticDataModule(ImageDataModule):
    """``make_synthetic`` images, uint8 ``(N, 3, image_size, image_size)``: no files needed.

    Train and test are independent draws (generator seeds ``2 * seed`` and ``2 * seed + 1``).

    Args:
        train_size: images in the train split (before the validation part is taken out).
        test_size: images in the test split.
        noise: std of the Gaussian pixel noise (pixels in [0, 1]).
        image_size: side length of the square images.
        **common: the shared arguments of ``ImageDataModule`` (batch size, split, ...).
    """

    name = "synthetic"

    def __init__(
        self,
        train_size: int = 2000,
        test_size: int = 500,
        noise: float = 0.1,
        image_size: int = 32,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.train_size, self.test_size = train_size, test_size
        self.noise = noise
        self.image_size = image_size

    def _class_names(self) -> list[str]:
        return list(SYNTHETIC_CLASSES)

    def _load_split(self, split: str) -> tuple[Tensor, Tensor]:
        train = split == "train"
        n = self.train_size if train else self.test_size
        return make_synthetic(n, self.seed * 2 + (0 if train else 1), self.noise, self.image_size)
