"""Starting or continuing a run in its directory without ever losing an earlier record.

`checkpoints/last.ckpt` is written atomically at the end of every epoch. `resume=true` continues
from it: Lightning restores weights, optimiser, scheduler, callbacks (early stopping, best
checkpoint) and the epoch; the data order and augmentation are seeded by (seed, epoch), so the
resumed run replays exactly what the uninterrupted run would have done. An interrupt (SIGTERM,
Ctrl-C) mid-epoch does not overwrite last.ckpt with a mid-epoch state: Lightning cannot resume these
loaders mid-epoch exactly (it restarts the epoch's data iterator), so the interrupted epoch is
redone from its start and the final metrics equal the uninterrupted run's.

Before anything in the run dir is touched, `prepare_attempt` checks that the run dir may be used:
a new run never reuses a dir holding another run's record; a resume must match the checkpoint's
architecture, norm and classes and the earlier attempt's recipe. The earlier attempt's
results.json/config.yaml are then moved to `attempts/<k>/`, so a finished run's record survives.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from project.errors import RunDirRefused
from project.results import RESULTS_FILE, read_results

LAST = Path("checkpoints") / "last.ckpt"
ATTEMPTS = "attempts"
#: Settings a resumed attempt must share with the earlier one (others, such as the number of
#: epochs or the loggers, may change: e.g. `trainer.max_epochs` to train longer).
RECIPE_KEYS = ("model", "norm", "optimizer", "scheduler", "batch_size", "seed", "regularization")
RECORDS = (RESULTS_FILE, "config.yaml", "error.log")


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def describe_differences(before: Mapping, now: Mapping, keys: tuple[str, ...]) -> list[str]:
    """'key: before X, now Y' for every leaf under `keys` that differs."""
    a = _flatten({k: before.get(k) for k in keys})
    b = _flatten({k: now.get(k) for k in keys})
    return [
        f"{k}: was {a.get(k)!r}, now {b.get(k)!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def read_checkpoint_file(path: Path) -> dict:
    """A Lightning checkpoint as a dict; UserError if it cannot be read (e.g. truncated)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        int(ckpt["epoch"]), int(ckpt["global_step"])
    except Exception as err:
        raise RunDirRefused(
            f"{path} cannot be resumed from: it is not a readable Lightning checkpoint "
            f"({type(err).__name__}: {str(err)[:160]}). It may have been truncated by a crash "
            f"while saving. Nothing in the run dir was changed. Restore an earlier copy, or start "
            f"a new run (in another dir) without `resume=true`."
        ) from None
    return ckpt


def checkpoint_position(path: Path) -> tuple[int, int]:
    """(epoch, global_step) stored in a Lightning checkpoint."""
    ckpt = read_checkpoint_file(path)
    return int(ckpt["epoch"]), int(ckpt["global_step"])


def _check_matches(ckpt_path: Path, ckpt: dict, run_cfg: Mapping, class_names: list[str]) -> None:
    """UserError naming every setting of this attempt that differs from the checkpoint's run."""
    hparams = ckpt.get("hyper_parameters") or {}
    problems = describe_differences(
        {"model": hparams.get("model"), "norm": hparams.get("norm")}, run_cfg, ("model", "norm")
    )
    if list(hparams.get("class_names") or []) != list(class_names):
        problems.append(f"classes: was {hparams.get('class_names')}, now {class_names}")
    previous = ckpt_path.parents[1] / "config.yaml"
    if previous.is_file():
        before = yaml.safe_load(previous.read_text()) or {}
        keys = tuple(k for k in RECIPE_KEYS if k not in ("model", "norm"))
        problems += describe_differences(before, run_cfg, keys)
    if problems:
        shown = "; ".join(problems[:8]) + (
            f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""
        )
        raise RunDirRefused(
            f"`resume=true` with settings that differ from the run in {ckpt_path.parents[1]}: "
            f"{shown}. A resumed run must continue the same experiment; nothing in the run dir "
            f"was changed. Resume with the original overrides (see its config.yaml or "
            f".hydra/overrides.yaml), or start a new run in another dir without `resume=true`."
        )


def csv_history_until(csv_path: Path, epoch: int, step: int) -> list[dict]:
    """The rows of a CSVLogger metrics file up to the checkpoint (epoch, step), empty cells
    dropped; later rows belong to the interrupted epoch, which the resumed run logs again."""
    if not csv_path.is_file():
        return []
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = []
    for row in rows:
        row_epoch = int(row["epoch"]) if row.get("epoch") else -1
        row_step = int(row["step"]) if row.get("step") else -1
        if row_epoch < epoch or (row_epoch == epoch and row_step <= step):
            kept.append({k: v for k, v in row.items() if v not in ("", None)})
    return kept


def _archive_previous_attempt(run_dir: Path) -> Path | None:
    """Move the earlier attempt's records to attempts/<k>/ (k = 1, 2, ...)."""
    present = [name for name in RECORDS if (run_dir / name).is_file()]
    if not present:
        return None
    k = 1 + sum(1 for _ in (run_dir / ATTEMPTS).glob("*")) if (run_dir / ATTEMPTS).is_dir() else 1
    dest = run_dir / ATTEMPTS / str(k)
    dest.mkdir(parents=True)
    for name in present:
        shutil.move(str(run_dir / name), str(dest / name))
    return dest


def prepare_attempt(
    run_dir: Path, resume: bool, run_cfg: Mapping, class_names: list[str]
) -> Path | None:
    """Check that this attempt may use `run_dir`, then archive the earlier attempt's records.

    Returns the checkpoint to resume from (None: start from scratch). Raises UserError before
    anything is written when the dir holds another run, or the resume does not match it.
    """
    previous = read_results(run_dir)
    last = run_dir / LAST
    if not resume:
        if previous is not None or last.is_file():
            status = (previous or {}).get("status", "unfinished")
            raise RunDirRefused(
                f"The run dir {run_dir} already holds a run (status: {status}); a new run would "
                f"overwrite its record. Continue it with `resume=true hydra.run.dir={run_dir}` "
                f"(same overrides), or give this run its own dir (drop hydra.run.dir, or choose "
                f"a new one)."
            )
        return None
    if last.is_file():
        ckpt = read_checkpoint_file(last)
        _check_matches(last, ckpt, run_cfg, class_names)
        _archive_previous_attempt(run_dir)
        return last
    if previous is not None and previous.get("status") == "interrupted":
        # Interrupted before the first epoch ended: the last epoch boundary is the start.
        print(f"[normres] {run_dir} was interrupted before its first epoch ended: starting again.")
        _archive_previous_attempt(run_dir)
        return None
    raise RunDirRefused(
        f"`resume=true` but there is nothing to resume in {run_dir}: no {LAST}. Resume "
        f"continues a run in its own directory, so pass that directory, e.g. `python -m "
        f"project.train resume=true hydra.run.dir=outputs/<date>/<time>` with the same overrides "
        f"as the original run; or drop `resume=true` to start a new run."
    )
