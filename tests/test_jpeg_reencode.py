"""jpeg_reencode: the re-encoded tree keeps every file's split, class and name, is written at the
asked JPEG quality with 4:2:0 chroma, and its error from the lossless pixels is measured through
the twins (larger than the source's, and equal to a direct computation)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from project.errors import UserError
from project.studies.jpeg_reencode import main, reencode_tree, rms_to_lossless
from tests.test_jpeg_twins import _trees

# libjpeg's standard luminance table starts 16, 11, 10, 16 (quality 50); quality q scales it by
# 5000/q % below 50 and (200 - 2q) % above, rounded: q=75 -> 8, 6, 5, 8; q=20 -> 40, 28, 25, 40.
LUMA_HEAD = {75: [8, 6, 5, 8], 20: [40, 28, 25, 40]}


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


@pytest.mark.parametrize("quality", [75, 20])
def test_reencoded_tree_keeps_the_names_and_uses_the_asked_quality(tmp_path, quality):
    _, jpeg, _ = _trees(tmp_path)
    out = tmp_path / f"q{quality}"
    assert reencode_tree(jpeg, out, quality) == len(_files(jpeg))
    assert _files(out) == _files(jpeg)
    for rel in _files(out):
        with Image.open(out / rel) as im:
            assert list(im.quantization[0])[:4] == LUMA_HEAD[quality]
            assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0, as the shared copy


def test_error_from_the_lossless_pixels_grows_as_quality_falls(tmp_path):
    lossless, jpeg, twins = _trees(tmp_path)
    reencode_tree(jpeg, tmp_path / "q20", 20)
    source, q20 = rms_to_lossless(lossless, jpeg, [jpeg, tmp_path / "q20"])
    assert source.shape == q20.shape == (len(twins),)
    assert (q20 > source).all()
    # Direct definition for one image: its twin is the JPEG file with the same bytes.
    rel = "train/cat/img_0.png"
    twin = next(p for p in (jpeg / "train" / "cat").iterdir() if p.read_bytes() == twins[rel])
    expected = np.sqrt(((_pixels(twin) - _pixels(lossless / rel)) ** 2).mean())
    names = sorted(twins)  # rms_to_lossless lists train then test, classes and files sorted
    order = [n for s in ("train", "test") for n in names if n.startswith(s)]
    np.testing.assert_allclose(source[order.index(rel)], expected, rtol=1e-6)


def test_cli_writes_the_tree_and_its_measured_error(tmp_path, capsys):
    lossless, jpeg, _ = _trees(tmp_path)
    out = tmp_path / "q30"
    argv = [str(jpeg), str(out), "--quality", "30", "--lossless", str(lossless)]
    assert main(argv) == 0
    info = json.loads((out / "reencode.json").read_text())
    assert info["quality"] == 30 and info["twins"] == 10
    assert info["median_rms_255"] > info["median_rms_255_source"] > 0
    assert "[jpeg_reencode]" in capsys.readouterr().out


def test_a_quality_outside_pil_range_is_a_user_error(tmp_path):
    _, jpeg, _ = _trees(tmp_path)
    with pytest.raises(UserError, match="outside 1..95"):
        reencode_tree(jpeg, tmp_path / "bad", 100)
    assert main([str(jpeg), str(tmp_path / "bad"), "--quality", "0"]) == 1
