"""The JPEG copy of CIFAR-10 at a lower JPEG quality: a dose axis for what the encoding costs.

The full-scale studies train on `cifar10-jpeg` (PIL quality 75, 4:2:0 chroma subsampling: its
quantisation tables are libjpeg's quality-75 ones), and no lossless full set is offline, so the
cost of the encoding at full scale cannot be measured directly. What can be measured is how
accuracy falls as the same images are compressed *further*: re-encode every file at quality q
(same subsampling), train the same recipe on each tree, and read accuracy against the pixel error
each tree has from the original pixels. That error is measured where the original pixels are
known: on cifar10-mini's lossless images, through their twins (`project.studies.jpeg_twins`).

    python -m project.studies.jpeg_reencode ../shared/data/cifar10-jpeg data/cifar10-jpeg-q50 \
        --quality 50 --lossless ../shared/data/cifar10-mini

writes `data/cifar10-jpeg-q50/{train,test}/<class>/<file>.jpg` (same names, same order, so the
same split and batches for a given seed) and `reencode.json` (quality, median RMS error /255 from
the lossless pixels over the twins, and that of the source tree).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from project.data.folder import SPLITS, _scan, decode_files, folder_class_names
from project.errors import UserError, report_error
from project.studies.jpeg_twins import match_tree

#: libjpeg's 4:2:0 chroma subsampling (PIL's `subsampling=2`), as the shared copy was written.
SUBSAMPLING_420 = 2


def reencode_tree(src: Path, dst: Path, quality: int) -> int:
    """Decode every image of ``src``'s splits and write it to ``dst`` (same relative path, suffix
    .jpg) as a JPEG of ``quality`` with 4:2:0 subsampling. Returns the number of files."""
    if not 1 <= quality <= 95:
        raise UserError(
            f"--quality {quality} is outside 1..95, the range where PIL's JPEG quality means "
            f"libjpeg's scaled tables; use e.g. 50 or 30."
        )
    src, dst = Path(src).resolve(), Path(dst).resolve()
    classes = {c: i for i, c in enumerate(folder_class_names(src))}
    if dst.exists():
        shutil.rmtree(dst)
    count = 0
    for split in SPLITS:
        for path, _ in _scan(src / split, classes):
            out = (dst / Path(path).relative_to(src)).with_suffix(".jpg")
            out.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                image.convert("RGB").save(out, "JPEG", quality=quality, subsampling=SUBSAMPLING_420)
            count += 1
    return count


def rms_to_lossless(lossless: Path, source: Path, trees: list[Path]) -> list[np.ndarray]:
    """RMS pixel error (0..255 units) of each of ``lossless``'s images against its twin in each
    tree.

    Twins are matched in ``source`` (the JPEG copy the trees were re-encoded from); a tree holds
    the twin under the same relative path with a .jpg suffix. ``source`` itself may be one of the
    trees. Returns one ``(N,)`` array per tree, N = the lossless images.
    """
    lossless, source = Path(lossless).resolve(), Path(source).resolve()
    pairs = match_tree(lossless, source)
    with Image.open(pairs[0][0]) as first:
        size = first.size[0]  # CIFAR: 32; every image is read at this size, as training does
    originals = decode_files([src for src, _, _ in pairs], size).double()
    errors = []
    for tree in trees:
        tree = Path(tree).resolve()
        files = [str((tree / Path(t).relative_to(source)).with_suffix(".jpg")) for _, t, _ in pairs]
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            raise UserError(
                f"{len(missing)} twins are missing from {str(tree)!r}, e.g. {missing[0]!r}: the "
                f"tree must be a re-encoding of all of {str(source)!r}; write it again."
            )
        diff = decode_files(files, size).double() - originals
        errors.append(diff.pow(2).flatten(1).mean(1).sqrt().numpy())
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m project.studies.jpeg_reencode", description=__doc__
    )
    parser.add_argument("source", type=Path, help="ImageFolder root, e.g. cifar10-jpeg")
    parser.add_argument("out", type=Path, help="where the re-encoded tree goes (git-ignored)")
    parser.add_argument("--quality", type=int, required=True, help="JPEG quality, 1..95")
    parser.add_argument(
        "--lossless", type=Path, default=None,
        help="lossless twins (cifar10-mini) to measure each tree's error from the original pixels",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        count = reencode_tree(args.source, args.out, args.quality)
        info: dict = {"source": str(args.source), "quality": args.quality, "files": count}
        if args.lossless is not None:
            trees = [args.source, args.out]
            rms_source, rms_out = rms_to_lossless(args.lossless, args.source, trees)
            info |= {
                "twins": len(rms_out),
                "median_rms_255_source": round(float(np.median(rms_source)), 3),
                "median_rms_255": round(float(np.median(rms_out)), 3),
                "mean_rms_255": round(float(rms_out.mean()), 3),
            }
    except UserError as err:
        report_error(str(err))
        return 1
    (args.out / "reencode.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"[jpeg_reencode] {json.dumps(info)}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(2)
    sys.exit(main())
