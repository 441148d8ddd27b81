"""The weights-only export of a checkpoint: a plain dict loadable with `weights_only=True`.

{"format": "normres-weights-v1", "model": {...}, "norm": {...}, "norm_name": str,
 "num_classes": int, "class_names": [...], "data_stats": {...}, "state_dict": {...}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from project.checkpoints.load import FORMAT, load_model
from project.errors import UserError
from project.io import atomic_torch_save
from project.results import file_megabytes, tensor_megabytes


def export_weights(ckpt: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the weights-only `.pt` of `ckpt` (loadable with `weights_only=True`, no Lightning).

    Returns `{"path", "size_mb" (file), "weights_mb" (tensors), "params"}`, sizes in MB of 10^6
    bytes (`project.results.MB`).
    """
    model, meta = load_model(ckpt)
    state_dict = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "model": meta["model"],
        "norm": meta["norm"],
        "norm_name": meta["norm_name"],
        "num_classes": meta["num_classes"],
        "class_names": meta["class_names"],
        "data_stats": meta["data_stats"],
        "state_dict": state_dict,
    }
    out = Path(out).expanduser()
    if out.exists() and out.is_dir():
        raise UserError(f"out={out} is a directory; pass a file path such as {out / 'model.pt'}.")
    if out.resolve() == Path(ckpt).expanduser().resolve():
        raise UserError(f"out={out} is the checkpoint itself; choose another path.")
    try:
        atomic_torch_save(payload, out)
    except OSError as err:
        raise UserError(
            f"Cannot write {out} ({err.strerror or err}). Choose a writable path with out=PATH.pt."
        ) from None
    return {
        "path": str(out),
        "size_mb": file_megabytes(out),
        "weights_mb": tensor_megabytes(state_dict),
        "params": sum(p.numel() for p in model.parameters()),
    }
