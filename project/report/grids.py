"""Per-variant panel grids: feature quantiles, weight histograms and confusion matrices."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from project.report.plots import (
    PlotSpec,
    capped_note,
    epoch_axis,
    legend_outside,
    new_figure,
    panel_title,
    plot_band,
    shared_legend,
)
from project.report.runs import Run
from project.report.variants import Variant
from project.report.weights import ROLES, layer_weights

QUANTILES = ("q01", "q20", "q80", "q99")
# Caps keep grids legible and PNGs under the size budget; the HTML says when some were left out.
MAX_QUANTILE_PANELS = 12
MAX_WEIGHT_ROWS = 6
MAX_CONFUSION_PANELS = 6
CONFUSION_UNIT = "fraction of the true class"


def grid(
    n: int, max_cols: int, panel_w: float, panel_h: float, sharey: bool = False
) -> tuple[Figure, list]:
    """A figure with `n` panels in rows of at most `max_cols` (spare cells hidden)."""
    cols = min(n, max_cols)
    rows = (n + cols - 1) // cols
    fig = new_figure(panel_w * cols, panel_h * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=sharey)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def feature_quantiles(
    variants: list[Variant], colors: dict[str, tuple]
) -> tuple[Figure, str] | str:
    """Quantiles of the penultimate features on the val set vs epoch, one panel per variant,
    all on one y scale so the panels compare at a glance."""
    cols = [f"val/feat_{q}" for q in QUANTILES]
    available = [v for v in variants if any(r.history.has(c) for r in v.runs for c in cols)]
    chosen = available[:MAX_QUANTILE_PANELS]
    if not chosen:
        return "no run logged val/feat_q01..q99"
    fig, axes = grid(len(chosen), 4, 3.0, 2.4, sharey=True)
    shades = ("#9ecae1", "#3182bd", "#e6550d", "#fdae6b")  # outer quantiles lighter than inner
    for ax, variant in zip(axes, chosen):
        for q, col, shade in zip(QUANTILES, cols, shades):
            plot_band(ax, [r.history.series(col) for r in variant.runs], shade, q)
        ax.set_title(panel_title(variant.label), fontsize=8)
        ax.set_ylabel("feature value")
        epoch_axis(ax)
    legend_outside(fig, axes[0])
    return fig, capped_note(len(chosen), len(available))


def _has_weights(run: Run) -> bool:
    return (run.path / "checkpoints" / "best.ckpt").is_file() or (run.path / "weights.pt").is_file()


def weight_histograms(
    variants: list[Variant], colors: dict[str, tuple]
) -> tuple[Figure, str] | str:
    """Histograms of a few layers' weights, a row per variant (its first run with weights):
    sparsity from L1 shows as a spike at 0."""
    rows = []
    # Loading a checkpoint is the slow part, so stop at the cap instead of counting them all.
    for variant in variants:
        if len(rows) == MAX_WEIGHT_ROWS:
            break
        run = next((r for r in variant.runs if _has_weights(r)), None)
        layers = layer_weights(run.path) if run else []
        if layers:
            rows.append((variant, {role: (name, w) for role, name, w in layers}))
    if not rows:
        return "no run has checkpoints/best.ckpt or weights.pt with conv/linear weights"
    roles = [role for role in ROLES if any(role in layers for _, layers in rows)]
    fig = new_figure(2.6 * len(roles), 1.9 * len(rows) + 0.5)
    axes = fig.subplots(len(rows), len(roles), squeeze=False)
    for r, (variant, layers) in enumerate(rows):
        for c, role in enumerate(roles):
            ax = axes[r][c]
            if role not in layers:
                ax.set_axis_off()
                continue
            name, w = layers[role]
            w = w[np.isfinite(w)]
            if w.size:
                ax.hist(w, bins=60, color=colors[variant.label], histtype="stepfilled")
                near_zero = 100 * float(np.mean(np.abs(w) < 1e-3))
                ax.text(0.98, 0.95, f"|w|<1e-3: {near_zero:.1f}%", transform=ax.transAxes,
                        ha="right", va="top", fontsize=6)  # fmt: skip
            ax.set_title(f"{role}: {name}", fontsize=7)
            ax.set_xlabel("weight value", fontsize=7)
            ax.set_ylabel("count", fontsize=7)
            ax.tick_params(labelsize=6)
    handles = [Patch(color=colors[v.label], label=v.label) for v, _ in rows]
    shared_legend(fig, handles, [h.get_label() for h in handles])
    shown = {id(v) for v, _ in rows}
    more = any(_has_weights(r) for v in variants if id(v) not in shown for r in v.runs)
    note = f"One run per variant (its first with weights), the first {MAX_WEIGHT_ROWS} variants."
    return fig, note if more else "One run per variant (its first with weights)."


def _confusion(run: Run) -> np.ndarray | None:
    matrix = (run.results.get("confusion_matrix") or {}).get("test")
    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        return None
    return m if m.ndim == 2 and m.shape[0] == m.shape[1] and m.size else None


def variant_confusion(variant: Variant) -> tuple[np.ndarray, int] | None:
    """The test confusion counts summed over the variant's seeds (those of the first run's
    shape), and how many runs were summed."""
    matrices = [m for r in variant.runs if (m := _confusion(r)) is not None]
    same = [m for m in matrices if matrices and m.shape == matrices[0].shape]
    return (np.sum(same, axis=0), len(same)) if same else None


def confusion_matrices(
    variants: list[Variant], colors: dict[str, tuple]
) -> tuple[Figure, str] | str:
    """Row-normalized test confusion matrices (rows: true class), one panel per variant."""
    available = [(v, c) for v in variants if (c := variant_confusion(v)) is not None]
    chosen = available[:MAX_CONFUSION_PANELS]
    if not chosen:
        return "no results.json has confusion_matrix.test"
    fig, axes = grid(len(chosen), 3, 3.6, 3.4)
    image = None
    for ax, (variant, (m, runs)) in zip(axes, chosen):
        totals = m.sum(axis=1, keepdims=True)
        # Classes absent from the test set would divide by zero; show them as an empty row.
        norm = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
        image = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues", interpolation="nearest")
        k = m.shape[0]
        names = list(variant.runs[0].results.get("class_names") or [])
        ticks = names if len(names) == k and k <= 20 else [str(i) for i in range(k)]
        step = 1 if k <= 20 else max(1, k // 10)
        ax.set_xticks(range(0, k, step), ticks[::step], rotation=90, fontsize=6)
        ax.set_yticks(range(0, k, step), ticks[::step], fontsize=6)
        summed = f" ({runs} runs summed)" if runs > 1 else ""
        title = panel_title(variant.label + summed)
        ax.set(title=title, xlabel="predicted class", ylabel="true class")
        ax.grid(False)
        if k <= 10:
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=5,
                            color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
    # The colourbar is this figure's legend: cell shade -> fraction (cells print it in %).
    fig.colorbar(image, ax=axes, label=CONFUSION_UNIT + " (cells: %)", shrink=0.8)
    return fig, capped_note(len(chosen), len(available))


GRID_PLOTS = [
    PlotSpec("feature_quantiles.png", "Feature quantiles (val, mean ± std over seeds)",
             feature_quantiles),
    PlotSpec("weight_histograms.png", "Weight histograms", weight_histograms),
    PlotSpec("confusion_matrix.png", "Test confusion matrices (row-normalized, seeds summed)",
             confusion_matrices),
]  # fmt: skip
