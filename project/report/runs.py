"""Finding run directories and reading what `python -m project.train` left in them.

A run dir is any directory holding `results.json` or a `.hydra/` folder (single runs under
`outputs/<date>/<time>/`, sweep jobs under `multirun/<date>/<time>/<job>/`). A run with `.hydra/`
but no `results.json` was interrupted: it is kept with status `incomplete` so it is never
silently dropped from a report.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from project.errors import UserError
from project.report.history import History, read_history
from project.results import METRIC_KEYS, affects_result, as_float, override_key

# Directories that never contain runs; skipping them keeps the recursive search fast on big trees.
_SKIP_DIRS = {".hydra", "csv", "checkpoints", "wandb", "__pycache__", ".git", "data"}


@dataclass
class Run:
    """Everything the report needs from one run directory."""

    path: Path
    results: dict[str, Any]
    overrides: list[str]
    history: History
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.results.get("status") or "incomplete")

    @property
    def config(self) -> dict[str, Any]:
        config = self.results.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def variant(self) -> str:
        # Older or partial results may lack `variant`; the norm name is the best stand-in.
        return str(self.results.get("variant") or self.config.get("norm") or "")

    @property
    def result_overrides(self) -> dict[str, str]:
        """{key: "key=value"} of the overrides that can change what the run trains, the last of a
        key winning as in Hydra (`resume=true` and the logging cadence are left out)."""
        found = {override_key(o): o for o in self.overrides}
        return {k: o for k, o in found.items() if affects_result(k)}

    @property
    def metrics(self) -> dict[str, float | None]:
        metrics = self.results.get("metrics")
        metrics = metrics if isinstance(metrics, dict) else {}
        return {k: as_float(metrics.get(k)) for k in METRIC_KEYS}

    @property
    def note(self) -> str:
        """One line explaining a non-completed status (error message, divergence epoch)."""
        if self.status == "failed":
            return " ".join(str(self.results.get("error") or "failed").split())
        if self.status == "diverged":
            epoch = self.results.get("diverged_epoch")
            return f"diverged at epoch {epoch}" if epoch is not None else "diverged"
        if self.status == "incomplete":
            return str(self.results.get("error") or "no results.json (interrupted run?)")
        return ""


def _is_run_dir(path: Path) -> bool:
    return (path / "results.json").is_file() or (path / ".hydra").is_dir()


def find_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Run dirs at or below `paths`; raises UserError for a missing path or no runs at all."""
    found: dict[Path, None] = {}  # dict as an ordered set: one entry per run even if paths overlap
    for raw in paths:
        root = Path(raw)
        if root.is_file() and root.name == "results.json":
            root = root.parent
        if not root.exists():
            raise UserError(
                f"Path '{raw}' does not exist. Pass one or more run directories (holding "
                "results.json and .hydra/) or sweep directories such as multirun/<date>/<time>, "
                "as written by `python -m project.train ...`."
            )
        for run_dir in _walk(root):
            found.setdefault(run_dir, None)
    if not found:
        shown = " ".join(str(p) for p in paths)
        raise UserError(
            f"No runs found under {shown}. A run directory holds results.json (and .hydra/, "
            "csv/metrics.csv, checkpoints/); create one with `python -m project.train ...` or a "
            "sweep with `python -m project.train -m ...`, then pass its outputs/<date>/<time> or "
            "multirun/<date>/<time> directory."
        )
    return list(found)


def _walk(root: Path) -> list[Path]:
    if _is_run_dir(root):
        return [root]  # runs never nest, so there is no need to look further down
    out = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if child.name not in _SKIP_DIRS and not (child / "report.html").exists():
            out.extend(_walk(child))
    return out


def load_run(path: Path) -> Run:
    """Read one run dir; unreadable files degrade to an `incomplete` run rather than a crash."""
    results: dict[str, Any] = {}
    results_file = path / "results.json"
    if results_file.is_file():
        try:
            results = json.loads(results_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            results = {"status": "incomplete", "error": f"unreadable results.json: {exc}"}
        if not isinstance(results, dict):
            results = {"status": "incomplete", "error": "results.json is not a JSON object"}
    return Run(
        path=path,
        results=results,
        # The run's own record first: a later attempt (a failed resume) rewrites .hydra/.
        overrides=results.get("overrides") or _read_overrides(path / ".hydra" / "overrides.yaml"),
        history=read_history(path),
    )


def _read_overrides(path: Path) -> list[str]:
    if not path.is_file():
        return []
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


def natural_key(text: str) -> list[Any]:
    """Sort key that orders numbers by value: `batch_size=8` before `batch_size=128`,
    `lr=0.001` before `lr=0.01`, `weight_decay=1e-5` before `weight_decay=1e-4`."""
    parts = re.split(r"(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)", text)
    return [(0, float(t), "") if t[0].isdigit() else (1, 0.0, t) for t in parts if t]


def varying_keys(items: list[dict[str, Any]]) -> set[str]:
    """The keys whose value (a missing key counts as one) is not the same in every dict."""
    keys = {k for d in items for k in d}
    return {k for k in keys if len({json.dumps(d.get(k), default=str) for d in items}) > 1}


def assign_labels(runs: list[Run]) -> None:
    """Label each run by the overrides that differ across runs and can change what it trains
    (not `resume=true` or the logging cadence), else by variant/run name/dir."""
    varying = varying_keys([run.result_overrides for run in runs])
    for run in runs:
        run.label = " ".join(o for o in run.overrides if override_key(o) in varying)
    unlabeled = [run for run in runs if not run.label]
    # Pick the first fallback that tells the unlabeled runs apart; later ones are more specific.
    for getter in (
        lambda r: r.variant,
        lambda r: str(r.results.get("run_name") or ""),
        lambda r: r.path.name,
    ):
        names = [getter(r) for r in unlabeled]
        if all(names) and len(set(names)) == len(names):
            break
    for run, name in zip(unlabeled, names):
        run.label = name or run.variant or run.path.name
    _make_unique(runs)


def _make_unique(runs: list[Run]) -> None:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    common = _common_parent([r.path for r in runs])
    for run in runs:
        if counts[run.label] > 1:
            rel = run.path.absolute().relative_to(common) if common else run.path
            run.label = f"{run.label} [{rel.as_posix()}]"


def _common_parent(paths: list[Path]) -> Path | None:
    parts = [p.absolute().parts for p in paths]
    prefix = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        prefix.append(items[0])
    if not prefix:
        return None
    common = Path(*prefix)
    # A run that *is* the common prefix would get an empty relative path; use its parent.
    return common.parent if any(p.absolute() == common for p in paths) else common


def load_runs(paths: list[str | Path], progress: bool = True) -> list[Run]:
    """Find, read, label and sort (by label, naturally) every run under `paths`.

    `progress` shows a bar on stderr while reading (only on a terminal: logs stay clean)."""
    from tqdm import tqdm

    dirs = find_run_dirs(paths)
    bar = tqdm(dirs, desc="reading runs", unit="run", disable=None if progress else True)
    runs = [load_run(p) for p in bar]
    runs = [r for r in runs if not r.results.get("debug")]  # debug=... presets: not experiments
    assign_labels(runs)
    runs.sort(key=lambda r: (natural_key(r.label), r.path.as_posix()))
    return runs


def status_counts(runs: list[Run]) -> str:
    """'2 completed, 1 diverged': how many runs ended in each status."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
