"""Where checkpoints live in a run dir, and how to get one."""

from __future__ import annotations

from pathlib import Path

HOW_TO_GET_ONE = (
    "A training run (`python -m project.train ...`) writes <run dir>/checkpoints/best.ckpt and "
    "last.ckpt, and `python -m project.export ckpt=<that .ckpt>` turns one into a weights-only "
    "<run dir>/export/model.pt; pass either as `ckpt=PATH`."
)


def default_run_dir(ckpt: str | Path) -> Path | None:
    """The run directory of `<run>/checkpoints/x.ckpt` or `<run>/export/x.pt`, else None."""
    ckpt = Path(ckpt).expanduser().resolve()
    return ckpt.parent.parent if ckpt.parent.name in ("checkpoints", "export") else None
