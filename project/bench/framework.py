"""Part 3: one training epoch of `project.train`'s Lightning loop vs a bare PyTorch loop.

Lightning side: what `python -m project.train` builds (the Hydra config composed from `conf/`,
then `project.training.run.build`: train/val metrics, feature quantiles, checkpoints, early
stopping, LR monitor, progress bar, CSV logger), fitted for R+1 epochs. Its time is the
`time/epoch_s` that `EpochTimer` logs to `<run dir>/csv/metrics.csv`: the epoch's training
batches, not the validation and checkpointing after them. Validation is cut to one small batch
(`data.val_size`, `limit_val_batches`) and the final evaluation of `run.train` is skipped: both
are untimed. Logger: CSV only, not the default W&B offline one, whose service process competes
with the timed loops for the cores (in one quick run each on this shared 2-core machine, both
sides' epochs were 6-9x slower with W&B than without); the ratio would then measure that
background load rather than the training loop.

Bare side: the same model (config and seed), the same data module's train loader and
`transform_batch` (augmentation + normalisation), the config's SGD without LR schedule (stepped
once an epoch, it costs nothing), cross-entropy, backward, step and BIN's ρ clipping, as the
LightningModule does; one epoch timed with `time.perf_counter`.

Interleaving: a callback runs bare epochs in the same process, one before Lightning's first
epoch (a warm-up) and one after each Lightning epoch: Bw L0 B0 L1 B1 ... LR BR; L0 is
Lightning's warm-up. Each L_k (k = 1..R) is compared with the bare epoch just before it and the
one just after it; ratio = the median of these 2R ratios. A slow drift of the machine's load
biases the two comparisons in opposite directions, and a sudden change spoils only one of them
(other jobs share this machine, so both happen). The ms columns are the medians of L_1..L_R
and B_0..B_R. Only the first selected norm runs (a Lightning run per norm takes minutes).
"""

from __future__ import annotations

import csv
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from project.bench.runconfig import compose_run_config
from project.bench.timing import print_row
from project.models.factory import build_model
from project.nn import apply_constraints_
from project.training.run import build

LOGGER = "csv"  # not the default W&B: see the module docstring


def bare_loop(cfg: DictConfig, datamodule, device: torch.device):
    """A function running one plain-PyTorch training epoch; returns its seconds."""
    torch.manual_seed(cfg.seed)
    model = build_model(
        OmegaConf.to_container(cfg.model, resolve=True),
        OmegaConf.to_container(cfg.norm, resolve=True),
        datamodule.num_classes,
    ).to(device)
    opt = instantiate(cfg.optimizer)(model.parameters())

    def epoch() -> float:
        model.train()
        t0 = time.perf_counter()
        with torch.enable_grad():  # called from a Lightning hook: do not inherit its grad mode
            for images, labels in datamodule.train_dataloader():
                images = images.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                loss = F.cross_entropy(model(datamodule.transform_batch(images, True)), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                apply_constraints_(model)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    return epoch


class BareEpochs(L.Callback):
    """Bare epochs around Lightning's: a warm-up one before the first, one after each epoch
    (after its validation and checkpoint; `seconds` holds these)."""

    def __init__(self, cfg: DictConfig, device: torch.device):
        self.cfg, self.device, self.epoch, self.seconds = cfg, device, None, []

    def on_train_start(self, trainer, pl_module) -> None:
        self.epoch = bare_loop(self.cfg, trainer.datamodule, self.device)
        self.epoch()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(self.epoch())


def lightning_epoch_seconds(run_dir: Path) -> list[float]:
    """`time/epoch_s` of every epoch, in order, from the run's CSV metrics."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("time/epoch_s")]
    return [float(r["time/epoch_s"]) for r in sorted(rows, key=lambda r: int(r["epoch"]))]


def _secs(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def bench_framework(
    data: tuple[list[str], str | None],
    n: int,
    batch_size: int,
    repeats: int,
    device: torch.device,
    norm: str,
) -> list[dict]:
    """One row: median Lightning and bare epoch times and the median of their ratios."""
    overrides, root = data
    cuda = device.type == "cuda"
    overrides = overrides + [
        f"model.n={n}", f"norm={norm}", f"batch_size={batch_size}", f"logger={LOGGER}",
        f"trainer.accelerator={'gpu' if cuda else 'cpu'}",
        f"trainer.devices={[device.index or 0] if cuda else 1}",
        f"trainer.max_epochs={repeats + 1}", "+trainer.limit_val_batches=1",
        "trainer.enable_model_summary=false", f"early_stopping.patience={repeats + 2}",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-framework-") as tmp:
        run_dir = Path(tmp)
        cfg = compose_run_config(overrides, root, run_dir)
        L.seed_everything(cfg.seed, workers=True)
        datamodule, module, trainer = build(cfg, run_dir)
        bare = BareEpochs(cfg, device)
        trainer.callbacks.append(bare)
        trainer.fit(module, datamodule=datamodule)
        lightning = lightning_epoch_seconds(run_dir)
    images = datamodule.split_sizes["train"]
    if len(lightning) != repeats + 1 or len(bare.seconds) != repeats + 1:
        raise RuntimeError(
            f"expected {repeats + 1} epochs, got {len(lightning)} / {len(bare.seconds)}"
        )
    # L_k (k >= 1) against the bare epochs before (B_{k-1}) and after (B_k) it.
    ratios = [lightning[k] / bare.seconds[j] for k in range(1, repeats + 1) for j in (k - 1, k)]
    print(f"  framework epochs s: Lightning {_secs(lightning)}, bare {_secs(bare.seconds)}")
    source = Path(root).name if root else "synthetic"
    row = {
        "part": "framework",
        "norm": norm,
        "shape": f"ResNet-{6 * n + 2} B={batch_size}, {images} imgs",
        "mode": "train epoch",
        "timed": "Lightning vs bare loop",
        "lightning_ms": 1e3 * statistics.median(lightning[1:]),
        "bare_ms": 1e3 * statistics.median(bare.seconds),
        "ratio": statistics.median(ratios),
        "note": f"data {source}; {repeats} Lightning epochs after a warm-up",
    }
    print_row(row)
    return [row]
