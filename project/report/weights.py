"""A handful of representative weight tensors per run, for the weight-histogram plot.

Only conv/linear weights (keys ending in `weight` with >= 2 dims) matter for the L1-vs-L2 study;
norm-layer scales are 1-d and excluded. We keep four roles (first conv, middle conv, last conv,
classifier) so runs with different depths still line up column by column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ROLES = ("first conv", "middle conv", "last conv", "classifier")


def _load_state_dict(run_dir: Path) -> dict[str, Any] | None:
    import torch  # deferred: importing torch is slow and only this plot needs it

    for rel, key in (("checkpoints/best.ckpt", "state_dict"), ("weights.pt", None)):
        path = run_dir / rel
        if not path.is_file():
            continue
        try:
            # Our own checkpoints hold Lightning hyper-parameters, which weights_only rejects.
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - a corrupt checkpoint only costs this plot a row
            continue
        state = obj.get(key) if key and isinstance(obj, dict) else obj
        if isinstance(state, dict):
            return state
    return None


def layer_weights(run_dir: Path) -> list[tuple[str, str, np.ndarray]]:
    """[(role, layer name, flat float64 weights)] for the run's checkpoint; [] if none is usable."""
    state = _load_state_dict(run_dir)
    if not state:
        return []
    weights = []
    for name, tensor in state.items():
        shape = getattr(tensor, "shape", ())
        if str(name).endswith("weight") and len(shape) >= 2:
            clean = name[len("model.") :] if name.startswith("model.") else name
            flat = tensor.detach().cpu().double().numpy().ravel()
            weights.append((clean, len(shape), flat))
    convs = [(n, w) for n, nd, w in weights if nd == 4]
    linears = [(n, w) for n, nd, w in weights if nd == 2]
    picks: list[tuple[str, tuple[str, np.ndarray] | None]] = [
        ("first conv", convs[0] if convs else None),
        ("middle conv", convs[len(convs) // 2] if len(convs) > 2 else None),
        ("last conv", convs[-1] if len(convs) > 1 else None),
        ("classifier", linears[-1] if linears else None),
    ]
    return [(role, w[0], w[1]) for role, w in picks if w is not None]
