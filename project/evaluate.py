"""Evaluate any checkpoint on any configured dataset: `python -m project.evaluate ckpt=PATH ...`.

    python -m project.evaluate ckpt=outputs/<date>/<time>/checkpoints/best.ckpt data=cifar10
    python -m project.evaluate ckpt=<run>/export/model.pt data=folder data.root=../shared/data/x
    python -m project.evaluate ckpt=... split=val seed=<training seed> device=cuda export=true
    python -m project.evaluate ckpt=... precision=bf16-mixed compile=true channels_last=true

Needs no training config: the network, its classes and the input normalisation (the training
data's statistics) all come from the checkpoint; `precision`, `compile` and `channels_last` run
it as the training run did (the same settings reproduce its recorded predictions). Writes to
`out` (default `<run dir>/eval_<dataset>_<split>/`, or beside a checkpoint outside a run dir):
metrics.json, confusion_matrix.csv (+ .png, drawn by torchmetrics) and predictions.csv
(`id,label,class_name,true_label,true_class_name,p_<class>...`: index in the split's order,
predicted class and its name, true class and its name, one softmax probability per class).
Runs through a Lightning Trainer: `trainer.test` with the training run's final-evaluation code
(`training.evaluation.evaluate_splits`) for the metrics, `trainer.predict` for the per-image rows.
A mistake (bad path, not a checkpoint, wrong number of classes, ...) prints one paragraph and
exits with code 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra
import lightning as L
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from project.checkpoints import default_run_dir, export_weights, load_classifier
from project.errors import UserError, required, run_cli, warn
from project.inference import (
    inference_trainer,
    predict_probabilities,
    resolve_device,
    write_probability_csv,
)
from project.io import atomic_write, atomic_write_json, atomic_write_text
from project.training.compiling import COMPILE_SETTINGS, TORCH_COMPILE_MODES
from project.training.compose import CONF_DIR
from project.training.evaluation import evaluate_splits

SPLITS = ("test", "val", "train")


def make_datamodule(cfg: DictConfig, meta: dict):
    """The configured data, normalised with the checkpoint's training statistics."""
    from hydra.utils import instantiate

    from project.data import validate_data_config

    validate_data_config(cfg.data)
    stats = meta.get("data_stats")
    # The statistics the network was trained with, not those of the evaluated dataset.
    dm = instantiate(
        cfg.data, eval_batch_size=int(cfg.batch_size), stats=stats, eval_splits=[cfg.split]
    )
    if dm.num_classes != meta["num_classes"]:
        trained_on = (meta.get("data_stats") or {}).get("dataset") or "<its training dataset>"
        raise UserError(
            f"The checkpoint classifies {meta['num_classes']} classes but data={dm.dataset} has "
            f"{dm.num_classes} ({', '.join(dm.class_names[:5])}, ...). Evaluate it on a dataset "
            f"with the same classes, e.g. data={trained_on}."
        )
    check_class_names(meta["class_names"], dm.class_names, bool(cfg.allow_other_classes))
    dm.prepare_data()
    dm.setup("test")
    if stats is None:
        # Checkpoints from before data_stats existed: the evaluated data's own stats are the
        # closest guess, and the user should know the numbers may be off.
        print(
            "[normres] warning: the checkpoint has no data_stats; normalising with the evaluated "
            "dataset's own statistics.",
            file=sys.stderr,
        )
    return dm


def check_class_names(trained: list[str], evaluated: list[str], allow: bool) -> None:
    """Same number of classes but other names: the metrics would compare unrelated labels."""
    if list(trained) == list(evaluated):
        return
    pairs = [f"{a} -> {b}" for a, b in zip(trained, evaluated) if a != b]
    message = (
        f"The checkpoint's class names differ from the dataset's ({'; '.join(pairs[:5])}"
        f"{' ...' if len(pairs) > 5 else ''}): label i of the data is not class i of the model, "
        f"so accuracy would compare unrelated labels."
    )
    if not allow:
        raise UserError(
            f"{message} Evaluate on data with the training classes (in the same order), or pass "
            f"allow_other_classes=true if the classes are the same under other names."
        )
    warn(f"{message} Evaluating anyway (allow_other_classes=true).")


class CrossEntropySum(L.Callback):
    """Cross-entropy summed in float64 over a `trainer.test` call, from `test_step`'s outputs
    `{"logits": (B, K), "target": (B,)}`: the loss metrics.json reports, from the same pass
    (and logits) as the accuracy and F1."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        logits, target = outputs["logits"], outputs["target"]
        self.total += float(F.cross_entropy(logits.double(), target, reduction="sum"))
        self.count += int(target.numel())


def write_confusion(out: Path, probs: Tensor, targets: Tensor, names: list[str]) -> None:
    """confusion_matrix.csv (rows true class, columns predicted) and its PNG, drawn by
    torchmetrics, from probabilities (N, K) and true labels (N,)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(names)
    confusion = MulticlassConfusionMatrix(k)
    confusion.update(probs, targets)
    matrix = confusion.compute()
    rows = [",".join(["true\\pred", *names])]
    rows += [",".join([names[i], *map(str, r)]) for i, r in enumerate(matrix.tolist())]
    atomic_write_text(out / "confusion_matrix.csv", "\n".join(rows) + "\n")

    size = min(12.0, 4.0 + 0.5 * k)
    fig, ax = plt.subplots(figsize=(size, size * 0.85), dpi=80, constrained_layout=True)
    # Counts in the cells only while they fit; class names as ticks always (smaller when many).
    confusion.plot(matrix, ax=ax, add_text=k <= 12, labels=names, cmap="Blues")
    ax.tick_params(labelsize=max(4, min(10, 160 // k)))
    fig.colorbar(ax.images[0], ax=ax, label="images (count)")
    atomic_write(out / "confusion_matrix.png", lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def output_dir(cfg: DictConfig, dataset: str) -> Path:
    if cfg.out:
        return Path(cfg.out).expanduser()
    # Beside the checkpoint's run (or the checkpoint itself), so results stay with the model.
    ckpt = Path(cfg.ckpt).expanduser().resolve()
    run_dir = default_run_dir(ckpt) or ckpt.parent
    return run_dir / f"eval_{dataset}_{cfg.split}"


EXAMPLE = (
    "`python -m project.evaluate ckpt=outputs/<date>/<time>/checkpoints/best.ckpt data=cifar10`"
)


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate `cfg.ckpt` on `cfg.data`'s `cfg.split`; write the outputs; return metrics."""
    ckpt = required(cfg, "ckpt", "checkpoint", EXAMPLE)
    if cfg.split not in SPLITS:
        raise UserError(f"split={cfg.split} is not a split; use one of {', '.join(SPLITS)}.")
    if int(cfg.batch_size) < 1:
        raise UserError(f"batch_size={cfg.batch_size} must be a positive integer.")
    if cfg.compile not in COMPILE_SETTINGS:
        raise UserError(
            f"compile={cfg.compile} is not a compile setting: it is false, true (inductor's "
            f"default mode) or one of torch.compile's modes ({', '.join(TORCH_COMPILE_MODES)}). "
            f"Use the training run's own setting (its config.yaml's `compile`) to reproduce its "
            f"recorded numbers."
        )
    device = resolve_device(str(cfg.device))
    start = time.perf_counter()
    override = OmegaConf.to_container(cfg.model, resolve=True) if cfg.get("model") else None
    module, meta = load_classifier(
        ckpt, override, compile=cfg.compile, channels_last=bool(cfg.channels_last)
    )
    dm = make_datamodule(cfg, meta)
    n = dm.split_sizes[cfg.split]
    if n == 0:
        raise UserError(f"The {cfg.split} split of data={dm.dataset} is empty; choose another.")
    loss = CrossEntropySum()
    trainer = inference_trainer(device, [loss], str(cfg.precision))
    # Metrics as a training run's final evaluation computes them; then per-image probabilities.
    values = evaluate_splits(trainer, module, dm, [cfg.split]).metrics
    probs, targets = predict_probabilities(trainer, module, dm)
    names = meta["class_names"]
    metrics = {
        "accuracy": values[f"{cfg.split}/acc"],
        "f1_micro": values[f"{cfg.split}/f1_micro"],
        "f1_macro": values[f"{cfg.split}/f1_macro"],
        "loss": loss.total / loss.count,
        "n_images": n,
        "checkpoint": str(Path(ckpt).expanduser().resolve()),
        "checkpoint_kind": meta["kind"],
        "dataset": dm.dataset,
        "data_root": str(dm.root) if dm.dataset == "folder" else None,
        "split": cfg.split,
        "class_names": names,
        "trained_on": (meta.get("data_stats") or {}).get("dataset"),
        "model": meta["model"],
        "norm": meta["norm_name"],
        "precision": str(cfg.precision),
        "compile": cfg.compile,
        "channels_last": bool(cfg.channels_last),
        "wall_time_s": round(time.perf_counter() - start, 2),
    }
    if names != dm.class_names:
        metrics["dataset_class_names"] = dm.class_names  # same count, other names: say so
    out = output_dir(cfg, dm.dataset)
    atomic_write_json(out / "metrics.json", metrics)
    write_confusion(out, probs, targets, names)
    preds, true = probs.argmax(1).tolist(), targets.tolist()
    # True labels are the dataset's: name them with its class names (allow_other_classes).
    rows = [(i, p, names[p], t, dm.class_names[t]) for i, (p, t) in enumerate(zip(preds, true))]
    header = ["id", "label", "class_name", "true_label", "true_class_name"]
    write_probability_csv(out / "predictions.csv", header, rows, probs, names)
    print(
        f"[normres] {Path(ckpt).name} on {dm.dataset}/{cfg.split} ({n} images): "
        f"accuracy {metrics['accuracy']:.4f}  f1_micro {metrics['f1_micro']:.4f}  "
        f"f1_macro {metrics['f1_macro']:.4f}  loss {metrics['loss']:.4f}"
    )
    print(f"[normres] wrote metrics.json, confusion_matrix.csv/.png, predictions.csv to {out}")
    if cfg.get("export"):
        run_dir = default_run_dir(ckpt) or out
        info = export_weights(ckpt, run_dir / "export" / "model.pt")
        print(f"[normres] exported {info['path']} ({info['size_mb']:.3f} MB)")
    return metrics


@hydra.main(config_path=str(CONF_DIR), config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_cli(evaluate, cfg)


if __name__ == "__main__":
    main()
