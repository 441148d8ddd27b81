"""Export a checkpoint's weights: `python -m project.export ckpt=PATH [out=PATH.pt]`.

    python -m project.export ckpt=outputs/<date>/<time>/checkpoints/best.ckpt
    # -> outputs/<date>/<time>/export/model.pt

The file is a plain dict saved with `torch.save`, loadable with `torch.load(path,
weights_only=True)` and rebuilt with `project.models` alone (no Lightning, no training config):

    {"format": "normres-weights-v1", "model": {...model config with _target_...},
     "norm": {"kind": ..., ...layer options}, "num_classes": int, "class_names": [str, ...],
     "data_stats": {"mean": [3], "std": [3], "normalize": "train"|"cifar"|"none", "dataset": str,
                    "image_size": int},
     "state_dict": {bare network parameter name: tensor}}

    ckpt = torch.load("model.pt", map_location="cpu", weights_only=True)
    net = build_model(ckpt["model"], ckpt["norm"], ckpt["num_classes"])
    net.load_state_dict(ckpt["state_dict"]); net.eval()
    # inputs: float images in [0, 1], normalised with data_stats unless normalize == "none"

or simply `project.checkpoints.load_model("model.pt")`. Prints the file size in MB and the
parameter count. A mistake prints one paragraph and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from project.checkpoints import default_run_dir, export_weights
from project.errors import required, run_cli
from project.training.compose import CONF_DIR


def default_out(ckpt: str | Path) -> Path:
    """`<run dir>/export/model.pt`, or `export/<name>.pt` beside a checkpoint outside a run."""
    run_dir = default_run_dir(ckpt)
    if run_dir is not None:
        return run_dir / "export" / "model.pt"
    ckpt = Path(ckpt).expanduser()
    return ckpt.parent / "export" / f"{ckpt.stem}.pt"


def export(cfg: DictConfig) -> dict:
    example = "`python -m project.export ckpt=outputs/<date>/<time>/checkpoints/best.ckpt`"
    ckpt = required(cfg, "ckpt", "checkpoint", example)
    out = Path(cfg.out).expanduser() if cfg.out else default_out(ckpt)
    info = export_weights(ckpt, out)
    print(
        f"[normres] exported {ckpt} -> {info['path']}: {info['size_mb']:.3f} MB "
        f"({info['params']:,} parameters, {info['weights_mb']:.3f} MB of tensors)"
    )
    return info


# Absolute: a relative path breaks the `normres-export` console script (see project.train).
@hydra.main(config_path=str(CONF_DIR), config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_cli(export, cfg)


if __name__ == "__main__":
    main()
