"""The `compile=` setting: off, on (inductor's default mode) or a `torch.compile` mode.

`reduce-overhead` adds CUDA graphs, which take the host's kernel launches out of a launch-bound
GPU step. Training (`ImageClassifier`), the config check and `project.bench --compile [MODE]`
all read the setting through `compile_mode`.
"""

from __future__ import annotations

TORCH_COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
COMPILE_SETTINGS = (False, True, *TORCH_COMPILE_MODES)


def compile_mode(setting: bool | str) -> str | None:
    """torch.compile's `mode` for a setting: a mode name as is, True (or False) None."""
    return setting if isinstance(setting, str) else None
