"""Predict the classes of unlabeled images: `python -m project.predict ckpt=PATH input=PATH`.

    python -m project.predict ckpt=outputs/<date>/<time>/checkpoints/best.ckpt input=photos/
    python -m project.predict ckpt=<run>/export/model.pt input=cat.jpg out=cat.csv device=cuda

`input` is one image or a folder searched recursively for image files (png, jpg, jpeg, bmp, gif,
webp, any case); other files are skipped and counted. Images of any size and mode (grayscale,
RGBA, palette, ...) are prepared as the training images were: converted to RGB, resized
(bilinear) to the checkpoint's training image size, scaled to [0, 1] and normalised with its
`data_stats`. They go through Lightning's `trainer.predict` with `ImageClassifier.predict_step`.

Writes a CSV (default `<input folder>/predictions.csv`, or `<image>_predictions.csv` beside a
single image): `file` (relative to the input folder), `predicted_class` (index), `class_name`,
and one softmax probability column per class, `p_<class name>`; rows in sorted path order.
A mistake (missing checkpoint or input, no images, an unreadable image, not a checkpoint, ...)
prints one paragraph naming it and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from project.checkpoints import load_classifier
from project.data import CIFAR10_MEAN, CIFAR10_STD
from project.data.files import IMAGE_SUFFIXES, ImageFilesDataModule, find_images
from project.errors import UserError, required, run_cli, warn
from project.inference import (
    inference_trainer,
    predict_probabilities,
    resolve_device,
    write_probability_csv,
)
from project.training.compose import CONF_DIR

EXAMPLE = "`python -m project.predict ckpt=outputs/<date>/<time>/checkpoints/best.ckpt input=DIR`"


def input_images(path: Path) -> tuple[list[Path], int]:
    """`find_images(path)`, with a UserError when there is nothing to predict."""
    if not path.exists():
        raise UserError(
            f"input={path} does not exist (absolute path {path.resolve()}). Pass an image file or "
            f"a folder of images; a relative path is relative to the directory you run from."
        )
    files, skipped = find_images(path)
    kinds = ", ".join(s[1:] for s in IMAGE_SUFFIXES)
    if path.is_file() and not files:
        raise UserError(f"input={path} is not an image file (expected one of: {kinds}).")
    if not files:
        others = f" ({skipped} other files skipped)" if skipped else ""
        raise UserError(
            f"input={path} holds no image files{others}; predict reads {kinds} files (any case) "
            f"in the folder and its subfolders."
        )
    return files, skipped


def default_out(path: Path) -> Path:
    return (
        path / "predictions.csv"
        if path.is_dir()
        else path.with_name(f"{path.stem}_predictions.csv")
    )


def input_stats(meta: dict) -> dict:
    """The checkpoint's `data_stats`; CIFAR-10's published ones (with a warning) for checkpoints
    saved before the statistics were stored."""
    if meta.get("data_stats"):
        return meta["data_stats"]
    warn(
        f"{meta['path']} has no data_stats (an older checkpoint): normalising with CIFAR-10's "
        f"published statistics at 32x32; the probabilities are off if it was trained otherwise."
    )
    return {"mean": list(CIFAR10_MEAN), "std": list(CIFAR10_STD), "normalize": "cifar"}


def predict(cfg: DictConfig) -> Path:
    """Predict every image of `cfg.input` with `cfg.ckpt`; write the CSV; return its path."""
    ckpt = required(cfg, "ckpt", "checkpoint", EXAMPLE)
    source = Path(required(cfg, "input", "input", EXAMPLE)).expanduser()
    if int(cfg.batch_size) < 1:
        raise UserError(f"batch_size={cfg.batch_size} must be a positive integer.")
    device = resolve_device(str(cfg.device))
    files, skipped = input_images(source)
    out = Path(cfg.out).expanduser() if cfg.out else default_out(source)
    if out.is_dir():
        raise UserError(
            f"out={out} is a directory; pass a file path such as {out / 'predictions.csv'}."
        )
    module, meta = load_classifier(ckpt)
    stats = input_stats(meta)
    dm = ImageFilesDataModule(files, stats, batch_size=int(cfg.batch_size))
    trainer = inference_trainer(device, precision=str(cfg.precision))
    probs, _ = predict_probabilities(trainer, module, dm)
    names = meta["class_names"]
    root = source if source.is_dir() else source.parent
    rows = [
        (file.relative_to(root).as_posix(), p, names[p])
        for file, p in zip(files, probs.argmax(1).tolist())
    ]
    write_probability_csv(out, ["file", "predicted_class", "class_name"], rows, probs, names)
    note = f" ({skipped} non-image file{'s' * (skipped != 1)} skipped)" if skipped else ""
    print(
        f"[normres] predicted {len(files)} images of {source} at {dm.image_size}x{dm.image_size}"
        f"{note} with {Path(ckpt).name}; wrote {out}"
    )
    return out


@hydra.main(config_path=str(CONF_DIR), config_name="predict", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_cli(predict, cfg)


if __name__ == "__main__":
    main()
