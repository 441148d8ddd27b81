"""Checkpoint files written atomically, and a failed write that fails the run.

Lightning's `TorchCheckpointIO` writes through fsspec and, in lightning 2.6, silently drops a
`PermissionError` (only a cross-device error is re-raised), so a run whose checkpoints could not be
written still ended "completed" and tested stale weights. Here every checkpoint goes to a temp
file beside the target, fsync'ed, then renamed over it (a full disk or a kill mid-write leaves the
previous `last.ckpt` intact), and any OS error stops the run with a message naming the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from project.errors import UserError
from project.io import atomic_torch_save


class CheckpointWriteError(UserError):
    """A checkpoint could not be written: the run must not go on as if it had been."""


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        try:
            atomic_torch_save(checkpoint, path)
        except OSError as err:
            raise CheckpointWriteError(
                f"Could not write the checkpoint {path} ({err.strerror or err}; errno "
                f"{err.errno}). The run was stopped rather than go on without it (its results "
                f"would come from stale weights). Free disk space or fix the permissions of "
                f"{path.parent}, then continue with `resume=true` in the same run dir (it "
                f"resumes from the last checkpoint that was written)."
            ) from err
