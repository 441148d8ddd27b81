"""JPEG twins: each lossless image is paired with the JPEG file that encodes it, the twin tree holds
byte copies under the lossless names, and a missing or ambiguous twin stops with a message."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from project.errors import UserError
from project.studies.jpeg_twins import MAX_TWIN_RMS, nearest_twins, write_twin_tree
from tests.helpers import SHARED_DATA

CLASSES = ("cat", "dog")


def _smooth_image(rng: np.random.Generator) -> np.ndarray:
    """A 32x32 RGB image of low spatial frequency (JPEG keeps it within a few levels)."""
    coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((32, 32), Image.BICUBIC))


def _jpeg_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def _trees(tmp_path: Path, drop: str | None = None) -> tuple[Path, Path, dict[str, bytes]]:
    """A lossless tree (PNG; train 3 + test 2 per class) and a JPEG tree whose train/ holds every
    lossless image JPEG-encoded under a shuffled name, plus 2 unrelated images per class.
    Returns (lossless root, jpeg root, {lossless relative path: the bytes of its JPEG twin})."""
    rng = np.random.default_rng(0)
    lossless, jpeg = tmp_path / "lossless", tmp_path / "jpeg"
    twins: dict[str, bytes] = {}
    for cls in CLASSES:
        encoded = []
        for split, count in (("train", 3), ("test", 2)):
            (lossless / split / cls).mkdir(parents=True)
            for i in range(count):
                pixels = _smooth_image(rng)
                rel = f"{split}/{cls}/img_{i}.png"
                Image.fromarray(pixels).save(lossless / rel)
                twins[rel] = _jpeg_bytes(pixels)
                if rel != drop:
                    encoded.append(twins[rel])
        encoded += [_jpeg_bytes(_smooth_image(rng)) for _ in range(2)]  # not in the lossless tree
        for split in ("train", "test"):
            (jpeg / split / cls).mkdir(parents=True)
        for k, j in enumerate(rng.permutation(len(encoded))):
            (jpeg / "train" / cls / f"{k:04d}.jpg").write_bytes(encoded[j])
        (jpeg / "test" / cls / "0000.jpg").write_bytes(encoded[0])
    return lossless, jpeg, twins


def test_nearest_twins_matches_the_brute_force_definition():
    gen = torch.Generator().manual_seed(0)
    pool = torch.randint(0, 256, (50, 3, 8, 8), generator=gen, dtype=torch.uint8)
    noise = torch.randint(-6, 7, (20, 3, 8, 8), generator=gen)
    queries = (pool[torch.arange(0, 40, 2)].int() + noise).clamp(0, 255).to(torch.uint8)
    index, rms, second = nearest_twins(queries, pool, chunk=7)  # several chunks
    diff = queries[:, None].double() - pool[None].double()  # (Q, P, C, H, W)
    mse, order = diff.pow(2).flatten(2).mean(2).sort(1)
    assert torch.equal(index, order[:, 0])
    assert torch.equal(index, torch.arange(0, 40, 2))
    torch.testing.assert_close(rms.double(), mse[:, 0].sqrt() / 255, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(second.double(), mse[:, 1].sqrt() / 255, rtol=1e-5, atol=1e-6)


def test_twin_tree_holds_byte_copies_under_the_lossless_names(tmp_path):
    lossless, jpeg, twins = _trees(tmp_path)
    out = tmp_path / "twins"
    pairs = write_twin_tree(lossless, jpeg, out)
    assert len(pairs) == len(twins) == 10
    for rel, expected in twins.items():
        copy = out / Path(rel).with_suffix(".jpg")
        assert copy.read_bytes() == expected, rel
    rows = list(csv.DictReader((out / "twins.csv").read_text().splitlines()))
    assert sorted(r["lossless"] for r in rows) == sorted(twins)
    assert all(0 < float(r["rms"]) <= MAX_TWIN_RMS for r in rows)
    assert all((jpeg / r["jpeg"]).read_bytes() == twins[r["lossless"]] for r in rows)


def test_an_image_without_twin_stops_with_a_message(tmp_path):
    lossless, jpeg, _ = _trees(tmp_path, drop="test/dog/img_1.png")
    with pytest.raises(UserError, match=r"1 images of .* have no JPEG twin.*img_1\.png"):
        write_twin_tree(lossless, jpeg, tmp_path / "twins")
    assert not (tmp_path / "twins").exists()


def test_a_near_duplicate_in_the_jpeg_tree_makes_the_twin_unclear(tmp_path):
    lossless, jpeg, twins = _trees(tmp_path)
    (jpeg / "train/cat/dup.jpg").write_bytes(twins["train/cat/img_2.png"])  # a second copy
    with pytest.raises(UserError, match=r"img_2\.png' has no clear JPEG twin"):
        write_twin_tree(lossless, jpeg, tmp_path / "twins")


def test_two_images_with_one_twin_stop_with_a_message(tmp_path):
    lossless, jpeg, _ = _trees(tmp_path)
    same = lossless / "train/cat/img_0.png"
    (lossless / "test/cat/img_copy.png").write_bytes(same.read_bytes())
    with pytest.raises(UserError, match="nearest JPEG image of both"):
        write_twin_tree(lossless, jpeg, tmp_path / "twins")


@pytest.mark.skipif(
    not (SHARED_DATA / "cifar10-mini").is_dir() or not (SHARED_DATA / "cifar10-jpeg").is_dir(),
    reason="needs ../shared/data/cifar10-mini and cifar10-jpeg",
)
@pytest.mark.slow
def test_every_mini_image_has_its_twin_in_the_jpeg_copy(tmp_path):
    """The data README: mini's images are CIFAR-10 training images, ~7.6/255 RMS from their JPEG."""
    pairs = write_twin_tree(SHARED_DATA / "cifar10-mini", SHARED_DATA / "cifar10-jpeg", tmp_path)
    rms = torch.tensor([e for _, _, e in pairs]) * 255
    assert len(pairs) == 5085 == len({twin for _, twin, _ in pairs})
    assert 7.0 < rms.median() < 8.2  # the data README: 7.6/255
