"""The per-run table (`runs.csv`, and the "Runs" table of summary.md / report.html) and the
formatting every report table shares.

Failed, diverged and incomplete runs keep their row with a `note` saying why, so a sweep's table
always accounts for every job. CSVs hold fractions at full precision (the shortest repr that
reads back exactly); Markdown/HTML show percentages. Formatting is fixed so output is
byte-for-byte stable.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from project.report.runs import Run
from project.report.variants import run_seed
from project.results import METRIC_KEYS

#: (column, results.json config key) for the key config columns. `model_n` is the ResNet depth
#: parameter (6n+2 layers), named so it cannot be confused with a variant's count of runs `n`.
CONFIG_COLUMNS = (
    ("model", "model"),
    ("model_n", "n"),
    ("head", "head"),
    ("norm", "norm"),
    ("batch_size", "batch_size"),
    ("optimizer", "optimizer"),
    ("lr", "lr"),
    ("weight_decay", "weight_decay"),
    ("l1", "l1"),
    ("max_epochs", "max_epochs"),
)
#: Short headers of the config columns in Markdown/HTML.
CONFIG_HEADERS = {
    "model_n": "model n",
    "batch_size": "bs",
    "optimizer": "opt",
    "weight_decay": "wd",
}

#: Micro F1 equals accuracy for single-label data, so displayed tables leave it out (CSVs keep it).
DISPLAY_METRICS = tuple(k for k in METRIC_KEYS if not k.endswith("/f1_micro"))
MICRO_F1_NOTE = (
    "Micro F1 equals accuracy for single-label data, so the tables show accuracy and macro F1 "
    "only (micro F1 is in the CSVs)."
)

RUN_COLUMNS = (
    ("label", "variant", "seed")
    + tuple(c for c, _ in CONFIG_COLUMNS)
    + METRIC_KEYS
    + ("best_epoch", "epochs", "params", "wall_time_s", "initial_loss", "status", "note", "path")
)


def config_cells(run: Run) -> dict[str, Any]:
    return {col: run.config.get(key) for col, key in CONFIG_COLUMNS}


def run_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """Raw (unformatted) values for each run, keyed by `RUN_COLUMNS`."""
    rows = []
    for run in runs:
        res = run.results
        row: dict[str, Any] = {"label": run.label, "variant": run.variant, "seed": run_seed(run)}
        row.update(config_cells(run))
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


def plain(value: Any) -> str:
    """Fixed CSV formatting: empty for missing, `nan` for NaN, floats at full precision."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """CSV text of `rows`; cells are formatted by `plain` first so pandas cannot turn an integer
    column with a missing value into floats (`172506.0`) or a missing value into `nan`."""
    frame = pd.DataFrame([[plain(r.get(c)) for c in columns] for r in rows], columns=columns)
    return frame.to_csv(index=False, lineterminator="\n")


def runs_csv(runs: list[Run]) -> str:
    return to_csv(run_rows(runs), RUN_COLUMNS)


def pct(value: float | None) -> str:
    if value is None:
        return "-"
    return "nan" if math.isnan(value) else f"{100 * value:.2f}"


def metric_header(key: str) -> str:
    return key.replace("/", " ").replace("f1_", "f1 ") + " %"


def _dash(value: Any) -> str:
    return "-" if value in (None, "") else plain(value)


def runs_display(runs: list[Run]) -> pd.DataFrame:
    """The per-run table as shown in Markdown/HTML (strings; paths and counts stay in the CSV)."""
    cells = []
    for row in run_rows(runs):
        shown = {"run": row["label"], "status": row["status"], "variant": _dash(row["variant"])}
        shown["seed"] = _dash(row["seed"])
        shown.update({CONFIG_HEADERS.get(c, c): _dash(row[c]) for c, _ in CONFIG_COLUMNS})
        shown.update({metric_header(k): pct(row[k]) for k in DISPLAY_METRICS})
        shown["best ep"] = _dash(row["best_epoch"])
        shown["epochs"] = _dash(row["epochs"])
        time_s, loss = row["wall_time_s"], row["initial_loss"]
        shown["time s"] = "-" if time_s is None else f"{float(time_s):.1f}"
        shown["init loss"] = "-" if loss is None else f"{float(loss):.3f}"
        shown["note"] = _dash(row["note"])
        cells.append(shown)
    return pd.DataFrame(cells)


def _md_cell(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text.replace("|", "\\|")  # tabulate does not escape the column separator


def markdown(frame: pd.DataFrame) -> str:
    """A pipe table of a frame of strings (numbers already formatted: no re-parsing)."""
    escaped = frame.map(_md_cell).rename(columns=_md_cell)
    return escaped.to_markdown(index=False, disable_numparse=True) + "\n"


def markdown_table(headers: list[str], body: list[list[str]]) -> str:
    return markdown(pd.DataFrame(body, columns=headers))


def initial_loss_note(runs: list[Run]) -> str:
    """Compare initial losses with ln(C), the loss of a uniform prediction over C classes."""
    if not any(r.results.get("initial_loss") is not None for r in runs):
        return ""
    classes = sorted({len(r.results.get("class_names") or []) or 10 for r in runs})
    refs = ", ".join(f"ln({c}) = {math.log(c):.3f}" for c in classes)
    return f"Initial loss of an untrained net with uniform predictions should be close to {refs}.\n"
