"""JPEG twins of a lossless ImageFolder tree: the same images, as the JPEG copy holds them.

The shared data has CIFAR-10 twice: `cifar10-mini/` (5,085 training images, exact pixels) and
`cifar10-jpeg/` (all 60,000, JPEG-compressed). Every mini image is also in the JPEG copy's
`train/`, under another name. Pairing each mini image with its JPEG file gives two trees that
differ *only* in the encoding, so training on each (same seeds, same split, same test images)
measures what the JPEG copy costs, which the full-scale studies cannot separate from their recipe.

Matching: for every lossless image, the JPEG image of the same class nearest in pixel space
(sum of squared differences, one matmul per class). Measured on the shared data: a twin is 7.60/255
RMS away (median; at most 17.9), the second-nearest image of the class 45/255 (median; at least
16.7), and the twin is never more than 0.66 of the second-nearest distance. So a match counts only
within ``MAX_TWIN_RMS`` *and* clearly nearer than the runner-up (``MAX_RATIO``, Lowe's ratio
test); an absolute threshold alone would not separate the tails. No JPEG file may serve as the
twin of two images.

    python -m project.studies.jpeg_twins ../shared/data/cifar10-mini ../shared/data/cifar10-jpeg \
        data/cifar10-mini-jpeg

writes `data/cifar10-mini-jpeg/{train,test}/<class>/<stem>.jpg`, each file a byte copy of its twin
(not re-encoded), plus `twins.csv` (lossless file, JPEG file, RMS error).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import torch
from torch import Tensor

from project.data.folder import SPLITS, _scan, decode_files, folder_class_names, load_folder_split
from project.errors import UserError, report_error

#: Largest RMS pixel error (in [0, 1] units) accepted between an image and its twin: ~4x the
#: typical JPEG error of 7.6/255 and well below the ~0.2 between unrelated images.
MAX_TWIN_RMS = 30 / 255
#: Largest ratio of the twin's distance to the second-nearest image's (measured: at most 0.66).
MAX_RATIO = 0.8
#: (lossless file, JPEG twin file, RMS error in [0, 1] units)
Pair = tuple[str, str, float]


def nearest_twins(
    queries: Tensor, pool: Tensor, chunk: int = 1024
) -> tuple[Tensor, Tensor, Tensor]:
    """Index in ``pool`` of each query's nearest image, their RMS distance, and the RMS distance
    of the second-nearest pool image.

    Args:
        queries: uint8 ``(Q, C, H, W)``; pool: uint8 ``(P, C, H, W)``, ``P >= 2``.

    Returns:
        ``index`` int64 ``(Q,)`` into ``pool``; ``rms`` and ``second`` float32 ``(Q,)``, RMS pixel
        differences in [0, 1] units, e.g. ``rms = sqrt(mean((q - pool[index]) ** 2)) / 255``.
    """
    p = pool.flatten(1).double()  # float64: ||q||² + ||p||² − 2 q·p cancels badly in float32
    p_sq = (p * p).sum(1)
    index, rms = [], []
    for start in range(0, queries.shape[0], chunk):
        q = queries[start : start + chunk].flatten(1).double()
        dist = (q * q).sum(1, keepdim=True) + p_sq[None] - 2 * q @ p.T  # (q, P) squared L2
        best, idx = dist.topk(2, dim=1, largest=False)  # nearest and runner-up
        index.append(idx[:, 0])
        rms.append((best.clamp_min(0) / q.shape[1]).sqrt().float() / 255)
    both = torch.cat(rms)
    return torch.cat(index), both[:, 0], both[:, 1]


def match_tree(lossless: Path, jpeg: Path, jpeg_split: str = "train") -> list[Pair]:
    """(lossless file, JPEG twin file, RMS) for every image of ``lossless``'s splits.

    Raises UserError when the class folders differ, when an image has no twin within
    ``MAX_TWIN_RMS`` or none clearly nearer than the runner-up (``MAX_RATIO``), or when one JPEG
    file is the nearest image of two lossless ones.
    """
    classes = folder_class_names(lossless)
    if folder_class_names(jpeg) != classes:
        raise UserError(
            f"The class folders of {str(lossless)!r} and {str(jpeg)!r} differ; twins are matched "
            f"within a class, so both trees need the same class folders."
        )
    pool_images, pool_labels = load_folder_split(jpeg, jpeg_split, classes)
    pool_files = [p for p, _ in _scan(jpeg / jpeg_split, {c: i for i, c in enumerate(classes)})]
    pairs: list[Pair] = []
    for split in SPLITS:
        samples = _scan(lossless / split, {c: i for i, c in enumerate(classes)})
        images = decode_files([p for p, _ in samples], pool_images.shape[-1])
        labels = torch.tensor([label for _, label in samples])
        for label in labels.unique().tolist():
            rows = (labels == label).nonzero().flatten()
            cols = (pool_labels == label).nonzero().flatten()
            index, rms, second = nearest_twins(images[rows], pool_images[cols])
            for r, e, e2 in zip(rows.tolist(), rms.tolist(), second.tolist(), strict=True):
                if e <= MAX_TWIN_RMS and e > MAX_RATIO * e2:  # too far: _check_pairs
                    raise UserError(
                        f"{samples[r][0]!r} has no clear JPEG twin: its nearest JPEG image of the "
                        f"class is {e * 255:.1f}/255 RMS away and the next {e2 * 255:.1f}/255 "
                        f"(a twin is under {MAX_RATIO:.0%} of the runner-up's distance). The JPEG "
                        f"tree holds near-duplicates of it; remove them, then match again."
                    )
            pairs += [
                (samples[r][0], pool_files[cols[i]], float(e))
                for r, i, e in zip(rows.tolist(), index.tolist(), rms.tolist(), strict=True)
            ]
    _check_pairs(pairs, lossless, jpeg / jpeg_split)
    return pairs


def _check_pairs(pairs: list[Pair], lossless: Path, pool_dir: Path) -> None:
    far = [(src, rms) for src, _, rms in pairs if rms > MAX_TWIN_RMS]
    if far:
        raise UserError(
            f"{len(far)} images of {str(lossless)!r} have no JPEG twin in {str(pool_dir)!r}: the "
            f"nearest JPEG image of the same class is {far[0][1] * 255:.1f}/255 RMS away for "
            f"{far[0][0]!r} (a twin is within {MAX_TWIN_RMS * 255:.0f}/255). The JPEG tree must "
            f"hold every image of the lossless one; point it at the full cifar10-jpeg copy."
        )
    seen: dict[str, str] = {}
    for src, twin, _ in pairs:
        if twin in seen:
            raise UserError(
                f"{twin!r} is the nearest JPEG image of both {seen[twin]!r} and {src!r}, so the "
                f"twins are ambiguous (duplicate images in {str(lossless)!r}?)."
            )
        seen[twin] = src


def write_twin_tree(lossless: Path, jpeg: Path, out: Path) -> list[Pair]:
    """Copy each image's JPEG twin to ``out/<split>/<class>/<stem><jpeg suffix>``: the same
    split, class and file stem as the lossless image, so both trees list (and split) in the
    same order. Also writes ``out/twins.csv``. Returns the pairs."""
    lossless, jpeg, out = Path(lossless).resolve(), Path(jpeg).resolve(), Path(out).resolve()
    pairs = match_tree(lossless, jpeg)
    if out.exists():
        shutil.rmtree(out)
    for src, twin, _ in pairs:
        rel = Path(src).relative_to(lossless)
        dest = (out / rel).with_suffix(Path(twin).suffix)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(twin, dest)  # a byte copy: the JPEG as the shared copy holds it
    with open(out / "twins.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["lossless", "jpeg", "rms"])
        writer.writerows(
            (Path(s).relative_to(lossless), Path(t).relative_to(jpeg), f"{e:.5f}")
            for s, t, e in pairs
        )
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m project.studies.jpeg_twins", description=__doc__
    )
    parser.add_argument("lossless", type=Path, help="ImageFolder root, e.g. cifar10-mini")
    parser.add_argument("jpeg", type=Path, help="ImageFolder root holding the twins in train/")
    parser.add_argument("out", type=Path, help="where the twin tree goes (git-ignored, e.g. data/)")
    args = parser.parse_args(argv)
    try:
        pairs = write_twin_tree(args.lossless, args.jpeg, args.out)
    except UserError as err:
        report_error(str(err))
        return 1
    rms = torch.tensor([e for _, _, e in pairs]) * 255
    print(
        f"[jpeg_twins] {len(pairs)} twins -> {args.out}; RMS error /255: median "
        f"{rms.median():.2f}, max {rms.max():.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
