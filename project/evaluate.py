"""Evaluate any checkpoint on any configured dataset: `python -m project.evaluate ckpt=PATH ...`.

    python -m project.evaluate ckpt=outputs/<date>/<time>/checkpoints/best.ckpt data=cifar10
    python -m project.evaluate ckpt=<run>/export/model.pt data=folder data.root=../shared/data/x
    python -m project.evaluate ckpt=... split=val seed=<training seed> device=cuda export=true

Needs no training config: the network, its classes and the input normalisation (the training
data's statistics) all come from the checkpoint. Writes to `out` (default
`<run dir>/eval_<dataset>_<split>/`, or beside a checkpoint outside a run dir): metrics.json,
confusion_matrix.csv (+ .png) and predictions.csv (`id,label,class_name`: index in the split's
order, predicted class, its name).
A mistake (bad path, not a checkpoint, wrong number of classes, ...) prints one paragraph and
exits with code 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from project.checkpoints import default_run_dir, export_weights, load_model
from project.errors import UserError, run_cli, warn
from project.io import atomic_write, atomic_write_json, atomic_write_text

SPLITS = ("test", "val", "train")


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"device={name} was asked for but CUDA is not available on this machine. Use "
            f"device=cpu (the default)."
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name} is not a device; use device=cpu or device=cuda.") from None


def make_datamodule(cfg: DictConfig, meta: dict):
    """The configured data, normalised with the checkpoint's training statistics."""
    from hydra.utils import instantiate

    from project.data import validate_data_config

    validate_data_config(cfg.data)
    stats = meta.get("data_stats")
    # The statistics the network was trained with, not those of the evaluated dataset.
    dm = instantiate(cfg.data, eval_batch_size=int(cfg.batch_size), stats=stats)
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


def split_loader(dm, split: str):
    return dm.eval_dataloaders([split])[0]


@torch.no_grad()
def predict(model, dm, split: str, num_classes: int, device: torch.device):
    """(logits-derived predictions, true labels, summed loss) over the split, in its order."""
    from torchmetrics.classification import MulticlassConfusionMatrix

    from project.training.metrics import classification_metrics

    metrics = classification_metrics(num_classes, "").to(device)
    confusion = MulticlassConfusionMatrix(num_classes).to(device)
    preds, labels, loss = [], [], torch.zeros((), dtype=torch.float64, device=device)
    for images, y in split_loader(dm, split):
        images, y = images.to(device), y.to(device)
        logits = model(dm.transform_batch(images, train=False)).float()
        loss += F.cross_entropy(logits, y, reduction="sum").double()
        metrics.update(logits, y)
        confusion.update(logits, y)
        preds.append(logits.argmax(1).cpu())
        labels.append(y.cpu())
    values = {k: float(v) for k, v in metrics.compute().items()}
    return torch.cat(preds), torch.cat(labels), float(loss), values, confusion.compute().cpu()


def write_confusion_png(path: Path, matrix: torch.Tensor, names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(names)
    size = min(8.0, 2.5 + 0.3 * k)
    fig, ax = plt.subplots(figsize=(size, size), dpi=80)
    ax.imshow(matrix.numpy(), cmap="Blues")
    if k <= 20:  # beyond that the tick labels are unreadable anyway
        ax.set_xticks(range(k), names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def output_dir(cfg: DictConfig, dataset: str) -> Path:
    if cfg.out:
        return Path(cfg.out).expanduser()
    # Beside the checkpoint's run (or the checkpoint itself), so results stay with the model.
    ckpt = Path(cfg.ckpt).expanduser().resolve()
    run_dir = default_run_dir(ckpt) or ckpt.parent
    return run_dir / f"eval_{dataset}_{cfg.split}"


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate `cfg.ckpt` on `cfg.data`'s `cfg.split`; write the outputs; return metrics."""
    try:
        ckpt = str(cfg.ckpt)
    except MissingMandatoryValue:
        raise UserError(
            "No checkpoint given: pass ckpt=PATH, e.g. `python -m project.evaluate "
            "ckpt=outputs/<date>/<time>/checkpoints/best.ckpt data=cifar10`."
        ) from None
    if cfg.split not in SPLITS:
        raise UserError(f"split={cfg.split} is not a split; use one of {', '.join(SPLITS)}.")
    if int(cfg.batch_size) < 1:
        raise UserError(f"batch_size={cfg.batch_size} must be a positive integer.")
    device = resolve_device(str(cfg.device))
    start = time.perf_counter()
    override = OmegaConf.to_container(cfg.model, resolve=True) if cfg.get("model") else None
    model, meta = load_model(ckpt, override)
    model = model.to(device)
    dm = make_datamodule(cfg, meta)
    preds, labels, loss_sum, values, confusion = predict(
        model, dm, cfg.split, meta["num_classes"], device
    )
    n = int(labels.numel())
    if n == 0:
        raise UserError(f"The {cfg.split} split of data={dm.dataset} is empty; choose another.")
    names = meta["class_names"]
    metrics = {
        "accuracy": values["acc"],
        "f1_micro": values["f1_micro"],
        "f1_macro": values["f1_macro"],
        "loss": loss_sum / n,
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
        "wall_time_s": round(time.perf_counter() - start, 2),
    }
    if names != dm.class_names:
        metrics["dataset_class_names"] = dm.class_names  # same count, other names: say so
    out = output_dir(cfg, dm.dataset)
    atomic_write_json(out / "metrics.json", metrics)
    rows = [",".join(["true\\pred", *names])]
    rows += [",".join([names[i], *map(str, r)]) for i, r in enumerate(confusion.tolist())]
    atomic_write_text(out / "confusion_matrix.csv", "\n".join(rows) + "\n")
    write_confusion_png(out / "confusion_matrix.png", confusion, names)
    lines = ["id,label,class_name"]
    lines += [f"{i},{p},{names[p]}" for i, p in enumerate(preds.tolist())]
    atomic_write_text(out / "predictions.csv", "\n".join(lines) + "\n")
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


@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_cli(evaluate, cfg)


if __name__ == "__main__":
    main()
