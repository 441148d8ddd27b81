"""Part 4: images/s of the input pipeline alone vs the model's training throughput.

The question is whether data loading can slow training down. Pipeline: one epoch of the
training `ImageDataModule`'s train loader (index-batch gathers from the in-memory uint8 images),
the transfer to `--device` and its `transform_batch(images, train=True)` (augmentation +
normalisation), i.e. exactly the tensors the model gets; images/s = train images / epoch
seconds. The decode (or cache load) happens once in `setup`, before any epoch: it is reported
separately, in the row's note. On CUDA, training keeps the images resident on the GPU
(`data.resident=auto`) and skips the per-batch copy timed here, so there the pipeline is faster.

Model: full SGD training steps (forward, cross-entropy, backward, step, BIN's clipping) of the
same ResNet, built from the same config, on one batch of the pipeline's output; images/s =
images per call / seconds per call. Each call runs several steps (about 512 images).

Both are timed interleaved (`interleaved_medians`: a pipeline epoch, then a model call, ...)
after one warm-up call each, at batch 8 and 128. ratio = pipeline img/s / model img/s: higher
is better, and at >= 5 the pipeline costs at most a sixth of training time even if nothing
overlaps. Only the first selected norm is run (the pipeline does not depend on it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from project.bench.model_step import _sgd_step
from project.bench.runconfig import compose_run_config
from project.bench.timing import interleaved_medians, print_row
from project.models.factory import build_model

BATCH_SIZES = (8, 128)
IMAGES_PER_MODEL_CALL = 512


def _model_steps(cfg, datamodule, device: torch.device, steps: int) -> Callable[[], None]:
    """`steps` SGD steps of the config's model on one full batch of the pipeline's output."""
    torch.manual_seed(cfg.seed)
    model = build_model(
        OmegaConf.to_container(cfg.model, resolve=True),
        OmegaConf.to_container(cfg.norm, resolve=True),
        datamodule.num_classes,
    )
    x, y = next(iter(datamodule.train_dataloader()))  # the first batch is a full one
    step = _sgd_step(
        model.to(device).train(), datamodule.transform_batch(x.to(device), True), y.to(device)
    )

    def run() -> None:
        for _ in range(steps):
            step()

    return run


def _pipeline_epoch(datamodule, device: torch.device) -> Callable[[], None]:
    """One epoch of what training does to the data before the model sees it."""

    def run() -> None:
        for x, y in datamodule.train_dataloader():
            datamodule.transform_batch(x.to(device, non_blocking=True), True)
            y.to(device, non_blocking=True)

    return run


def bench_data(
    data: tuple[list[str], str | None],
    n: int,
    repeats: int,
    device: torch.device,
    norm: str,
    quick: bool = False,
) -> list[dict]:
    """One row per batch size: pipeline and model images/s and their ratio."""
    overrides, root = data
    rows = []
    for batch_size in BATCH_SIZES:
        run = [f"model.n={n}", f"norm={norm}", f"batch_size={batch_size}"]
        cfg = compose_run_config(overrides + run, root)
        datamodule = instantiate(cfg.data)
        t0 = time.perf_counter()
        datamodule.prepare_data()
        datamodule.setup("fit")
        setup_s = time.perf_counter() - t0
        images = datamodule.split_sizes["train"]
        batch = min(batch_size, images)
        steps = 1 if quick else max(1, IMAGES_PER_MODEL_CALL // batch_size)
        fns = {
            "pipeline": _pipeline_epoch(datamodule, device),
            "model": _model_steps(cfg, datamodule, device, steps),
        }
        t = interleaved_medians(fns, repeats, warmup=1, device=device)
        pipeline_ips, model_ips = images / t["pipeline"], steps * batch / t["model"]
        rows.append(
            {
                "part": "data",
                "norm": norm,
                "shape": f"ResNet-{6 * n + 2} B={batch_size}, {images} imgs",
                "mode": "train",
                "timed": "pipeline epoch vs SGD steps",
                "pipeline_img_s": round(pipeline_ips),
                "model_img_s": round(model_ips),
                "ratio": pipeline_ips / model_ips,
                "note": f"data {Path(root).name if root else 'synthetic'}, "
                f"setup {setup_s:.2f} s (decode or cache load, once)",
            }
        )
        print_row(rows[-1])
    return rows
