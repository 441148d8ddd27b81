"""The variant table: `summary.csv` (one row per variant) and its `mean ± std (n)` display.

For every metric in `SUMMARY_METRICS` the CSV has `<metric>_n` (runs with a finite value: a
diverged seed's NaN is not averaged in, and this count shows it), `<metric>_mean`,
`<metric>_std` (sample std, ddof=1; empty for one run) and the 95% t-interval of the mean
`<metric>_ci95_lo` / `<metric>_ci95_hi` (empty for one run). `n` counts all the variant's runs.

Rows are in label order. The report never ranks by test: the one marked `val_best` has the
highest mean validation accuracy, and that is the only selection it makes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from project.report.stats import t_half_width
from project.report.tables import (
    CONFIG_COLUMNS,
    CONFIG_HEADERS,
    DISPLAY_METRICS,
    config_cells,
    metric_header,
    pct,
    plain,
    to_csv,
)
from project.report.variants import Variant
from project.results import METRIC_KEYS

#: results.json fields summarised like the metrics.
RUN_FIELDS = ("best_epoch", "epochs", "wall_time_s")
SUMMARY_METRICS = METRIC_KEYS + RUN_FIELDS
STATS = ("n", "mean", "std", "ci95_lo", "ci95_hi")
SUMMARY_COLUMNS = (
    ("variant", "val_best", "n", "seeds", "status")
    + tuple(c for c, _ in CONFIG_COLUMNS)
    + tuple(f"{m}_{s}" for m in SUMMARY_METRICS for s in STATS)
    + ("runs",)
)
SELECTION_NOTE = (
    "Selection uses validation only: the variant marked *val best* has the highest mean "
    "validation accuracy. Rows are in label order; test numbers are reported, never ranked."
)


def _run_values(variants: list[Variant]) -> pd.DataFrame:
    """One row per run: its variant's label and each summary metric (NaN when missing)."""
    rows = []
    for variant in variants:
        for run in variant.runs:
            values = {**run.metrics, **{k: run.results.get(k) for k in RUN_FIELDS}}
            row = {"variant": variant.label}
            row.update({m: _number(values.get(m)) for m in SUMMARY_METRICS})
            rows.append(row)
    frame = pd.DataFrame(rows, columns=("variant",) + SUMMARY_METRICS)
    # An infinite loss or metric is a diverged run's: no more an estimate than NaN.
    return frame.replace([np.inf, -np.inf], np.nan)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def aggregate(variants: list[Variant]) -> pd.DataFrame:
    """Per variant (index: label, in `variants` order) and metric: n, mean, std, ci95_lo/_hi."""
    grouped = _run_values(variants).groupby("variant", sort=False)[list(SUMMARY_METRICS)]
    agg = grouped.agg(["count", "mean", "std"])  # count skips NaN; std is ddof=1 (NaN for n=1)
    out = {}
    for metric in SUMMARY_METRICS:
        n, mean, std = (agg[(metric, s)] for s in ("count", "mean", "std"))
        half = t_half_width(std, n)
        out.update(
            {
                f"{metric}_n": n,
                f"{metric}_mean": mean,
                f"{metric}_std": std,
                f"{metric}_ci95_lo": mean - half,
                f"{metric}_ci95_hi": mean + half,
            }
        )
    return pd.DataFrame(out).reindex([v.label for v in variants])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def summary_rows(variants: list[Variant], best: Variant | None) -> list[dict[str, Any]]:
    """Raw values keyed by `SUMMARY_COLUMNS` (None where there is no value)."""
    stats = aggregate(variants)
    rows = []
    for variant in variants:
        row: dict[str, Any] = {
            "variant": variant.label,
            "val_best": variant is best,
            "n": len(variant.runs),
            "seeds": " ".join("?" if s is None else str(s) for s in variant.seeds),
            "status": variant.status(),
        }
        row.update(config_cells(variant.runs[0]))
        for col, value in stats.loc[variant.label].items():
            row[col] = None if _missing(value) else (int(value) if col.endswith("_n") else value)
        row["runs"] = " ".join(r.path.as_posix() for r in variant.runs)
        rows.append(row)
    return rows


def summary_csv(variants: list[Variant], best: Variant | None) -> str:
    return to_csv(summary_rows(variants, best), SUMMARY_COLUMNS)


def mean_std_n(row: dict[str, Any], metric: str) -> str:
    """'41.83 ± 1.20 (3)' in percent; '41.83 (1)' for one run; '-' for none."""
    n, mean, std = (row.get(f"{metric}_{s}") for s in ("n", "mean", "std"))
    if not n or mean is None:
        return "-"
    spread = "" if std is None else f" \u00b1 {100 * std:.2f}"
    return f"{pct(mean)}{spread} ({n})"


def summary_display(variants: list[Variant], best: Variant | None) -> pd.DataFrame:
    """The variant table as shown in Markdown/HTML (strings)."""
    cells = []
    for row in summary_rows(variants, best):
        shown = {"variant": row["variant"], "val best": "yes" if row["val_best"] else ""}
        shown.update(runs=str(row["n"]), seeds=row["seeds"], status=row["status"])
        shown.update({CONFIG_HEADERS.get(c, c): plain(row[c]) or "-" for c, _ in CONFIG_COLUMNS})
        shown.update({metric_header(k): mean_std_n(row, k) for k in DISPLAY_METRICS})
        epoch, time_s = row["best_epoch_mean"], row["wall_time_s_mean"]
        shown["best ep (mean)"] = "-" if epoch is None else f"{epoch:.1f}"
        shown["time s (mean)"] = "-" if time_s is None else f"{time_s:.1f}"
        cells.append(shown)
    return pd.DataFrame(cells)
