"""The summary table: one row per run, rendered as CSV (fractions) and Markdown (percentages).

Failed, diverged and incomplete runs keep their row with a `note` saying why, so a sweep's table
always accounts for every job. All number formatting is fixed so output is byte-for-byte stable.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from project.report.runs import Run
from project.results import METRIC_KEYS

#: (column, results.json config key) for the key config columns.
CONFIG_COLUMNS = (
    ("model", "model"),
    ("n", "n"),
    ("head", "head"),
    ("norm", "norm"),
    ("batch_size", "batch_size"),
    ("optimizer", "optimizer"),
    ("lr", "lr"),
    ("weight_decay", "weight_decay"),
    ("l1", "l1"),
    ("max_epochs", "max_epochs"),
)

COLUMNS = (
    ("label", "variant")
    + tuple(c for c, _ in CONFIG_COLUMNS)
    + METRIC_KEYS
    + ("best_epoch", "epochs", "params", "wall_time_s", "initial_loss", "status", "note", "path")
)


def summary_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """Raw (unformatted) values for each run, keyed by `COLUMNS`."""
    rows = []
    for run in runs:
        res, cfg = run.results, run.config
        row: dict[str, Any] = {"label": run.label, "variant": run.variant}
        row.update({col: cfg.get(key) for col, key in CONFIG_COLUMNS})
        row.update(run.metrics)
        row.update(
            best_epoch=res.get("best_epoch"),
            epochs=res.get("epochs"),
            params=res.get("params"),
            wall_time_s=res.get("wall_time_s"),
            initial_loss=res.get("initial_loss"),
            status=run.status,
            note=run.note,
            path=run.path.as_posix(),
        )
        rows.append(row)
    return rows


def _plain(value: Any) -> str:
    """Fixed CSV formatting: empty for missing, 6 significant digits for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def summary_csv(runs: list[Run]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in summary_rows(runs):
        writer.writerow([_plain(row[c]) for c in COLUMNS])
    return buf.getvalue()


def _pct(value: Any) -> str:
    if value is None:
        return "-"
    return "nan" if math.isnan(value) else f"{100 * value:.2f}"


def _md_cell(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text.replace("|", "\\|")


# Markdown/HTML show a narrower table: paths and raw counts live in the CSV.
DISPLAY_COLUMNS = (
    ("label", "run"),
    ("status", "status"),
    ("variant", "variant"),
    ("model", "model"),
    ("n", "n"),
    ("head", "head"),
    ("norm", "norm"),
    ("batch_size", "bs"),
    ("optimizer", "opt"),
    ("lr", "lr"),
    ("weight_decay", "wd"),
    ("l1", "l1"),
    *((k, k.replace("/", " ").replace("f1_", "f1 ") + " %") for k in METRIC_KEYS),
    ("best_epoch", "best ep"),
    ("epochs", "epochs"),
    ("wall_time_s", "time s"),
    ("initial_loss", "init loss"),
    ("note", "note"),
)


def display_table(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """(headers, cells) shared by the Markdown and HTML tables."""
    headers = [h for _, h in DISPLAY_COLUMNS]
    body = []
    for row in summary_rows(runs):
        cells = []
        for key, _ in DISPLAY_COLUMNS:
            value = row[key]
            if key in METRIC_KEYS:
                cells.append(_pct(value))
            elif key == "wall_time_s":
                cells.append("-" if value is None else f"{float(value):.1f}")
            elif key == "initial_loss":
                cells.append("-" if value is None else f"{float(value):.3f}")
            else:
                cells.append("-" if value in (None, "") else _plain(value))
        body.append(cells)
    return headers, body


def markdown_table(headers: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in cells) + " |" for cells in body]
    return "\n".join(lines) + "\n"


def initial_loss_note(runs: list[Run]) -> str:
    """Compare initial losses with ln(C), the loss of a uniform prediction over C classes."""
    if not any(r.results.get("initial_loss") is not None for r in runs):
        return ""
    classes = sorted({len(r.results.get("class_names") or []) or 10 for r in runs})
    refs = ", ".join(f"ln({c}) = {math.log(c):.3f}" for c in classes)
    return f"Initial loss of an untrained net with uniform predictions should be close to {refs}.\n"


def status_counts(runs: list[Run]) -> str:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def summary_markdown(runs: list[Run], title: str, sanity_md: str = "") -> str:
    headers, body = display_table(runs)
    parts = [
        f"# {title}\n",
        f"{len(runs)} runs ({status_counts(runs)}). Accuracies and F1 scores are final values "
        "in percent; `-` means not available.\n",
        markdown_table(headers, body),
    ]
    note = initial_loss_note(runs)
    if note:
        parts.append(note)
    if sanity_md:
        parts.append(sanity_md)
    return "\n".join(parts)
