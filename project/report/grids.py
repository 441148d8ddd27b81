"""Per-run panel grids: feature quantiles, weight histograms and confusion matrices."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from project.report.plots import PlotSpec, capped_note, epoch_axis, new_figure
from project.report.runs import Run
from project.report.weights import ROLES, layer_weights

QUANTILES = ("q01", "q20", "q80", "q99")
# Caps keep grids legible and PNGs under the size budget; the HTML says when runs were left out.
MAX_QUANTILE_PANELS = 12
MAX_WEIGHT_ROWS = 6
MAX_CONFUSION_PANELS = 6


def _grid(n: int, max_cols: int, panel_w: float, panel_h: float) -> tuple[Figure, list]:
    cols = min(n, max_cols)
    rows = (n + cols - 1) // cols
    fig = new_figure(panel_w * cols, panel_h * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def feature_quantiles(runs: list[Run], colors: dict[str, tuple]) -> tuple[Figure, str] | str:
    """Quantiles of the penultimate features on the val set vs epoch, one panel per run."""
    cols = [f"val/feat_{q}" for q in QUANTILES]
    available = [r for r in runs if any(r.history.has(c) for c in cols)]
    chosen = available[:MAX_QUANTILE_PANELS]
    if not chosen:
        return "no run logged val/feat_q01..q99"
    fig, axes = _grid(len(chosen), 4, 3.0, 2.4)
    shades = ("#9ecae1", "#3182bd", "#e6550d", "#fdae6b")  # outer quantiles lighter than inner
    for ax, run in zip(axes, chosen):
        for q, col, shade in zip(QUANTILES, cols, shades):
            epochs, values = run.history.series(col)
            if epochs.size:
                ax.plot(epochs, values, color=shade, label=q)
        ax.set_title(run.label, fontsize=8)
        epoch_axis(ax)
    axes[0].legend(loc="best")
    return fig, capped_note(len(chosen), len(available))


def weight_histograms(runs: list[Run], colors: dict[str, tuple]) -> tuple[Figure, str] | str:
    """Histograms of a few layers' weights, a row per run (sparsity from L1 shows as a spike)."""
    rows = []
    # Loading a checkpoint is the slow part, so stop at the cap instead of counting them all.
    for run in runs:
        if len(rows) == MAX_WEIGHT_ROWS:
            break
        layers = layer_weights(run.path)
        if layers:
            rows.append((run, {role: (name, w) for role, name, w in layers}))
    if not rows:
        return "no run has checkpoints/best.ckpt or weights.pt with conv/linear weights"
    roles = [role for role in ROLES if any(role in layers for _, layers in rows)]
    fig = new_figure(2.6 * len(roles), 1.9 * len(rows))
    axes = fig.subplots(len(rows), len(roles), squeeze=False)
    for r, (run, layers) in enumerate(rows):
        for c, role in enumerate(roles):
            ax = axes[r][c]
            if role not in layers:
                ax.set_axis_off()
                continue
            name, w = layers[role]
            w = w[np.isfinite(w)]
            if w.size:
                ax.hist(w, bins=60, color=colors[run.label], histtype="stepfilled")
                near_zero = 100 * float(np.mean(np.abs(w) < 1e-3))
                ax.text(
                    0.98,
                    0.95,
                    f"|w|<1e-3: {near_zero:.1f}%",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=6,
                )
            ax.set_title(f"{role}: {name}", fontsize=7)
            ax.tick_params(labelsize=6)
            if c == 0:
                ax.set_ylabel(run.label.replace(" ", "\n"), fontsize=7)  # one override per line
    more = any(_has_weights(r) for r in runs[runs.index(rows[-1][0]) + 1 :])
    note = (
        f"Showing the first {MAX_WEIGHT_ROWS} runs with weights (in table order)." if more else ""
    )
    return fig, note


def _has_weights(run: Run) -> bool:
    return (run.path / "checkpoints" / "best.ckpt").is_file() or (run.path / "weights.pt").is_file()


def _confusion(run: Run) -> np.ndarray | None:
    matrix = (run.results.get("confusion_matrix") or {}).get("test")
    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        return None
    return m if m.ndim == 2 and m.shape[0] == m.shape[1] and m.size else None


def confusion_matrices(runs: list[Run], colors: dict[str, tuple]) -> tuple[Figure, str] | str:
    """Row-normalized test confusion matrices (rows: true class), one panel per run."""
    available = [(r, m) for r in runs if (m := _confusion(r)) is not None]
    chosen = available[:MAX_CONFUSION_PANELS]
    if not chosen:
        return "no results.json has confusion_matrix.test"
    fig, axes = _grid(len(chosen), 3, 3.6, 3.4)
    for ax, (run, m) in zip(axes, chosen):
        totals = m.sum(axis=1, keepdims=True)
        # Classes absent from the test set would divide by zero; show them as an empty row.
        norm = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues", interpolation="nearest")
        k = m.shape[0]
        names = list(run.results.get("class_names") or [])
        ticks = names if len(names) == k and k <= 20 else [str(i) for i in range(k)]
        step = 1 if k <= 20 else max(1, k // 10)
        ax.set_xticks(range(0, k, step), ticks[::step], rotation=90, fontsize=6)
        ax.set_yticks(range(0, k, step), ticks[::step], fontsize=6)
        ax.set(title=run.label, xlabel="predicted", ylabel="true")
        ax.grid(False)
        if k <= 10:
            for i in range(k):
                for j in range(k):
                    ax.text(
                        j,
                        i,
                        f"{100 * norm[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=5,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    return fig, capped_note(len(chosen), len(available))


GRID_PLOTS = [
    PlotSpec("feature_quantiles.png", "Feature quantiles (val)", feature_quantiles),
    PlotSpec("weight_histograms.png", "Weight histograms", weight_histograms),
    PlotSpec(
        "confusion_matrix.png", "Test confusion matrices (row-normalized)", confusion_matrices
    ),
]
