"""Per-epoch curves, one mean line with a ±std band over seeds per variant: error, loss, lr."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from project.report.plots import PlotSpec, epoch_axis, legend_outside, new_figure, plot_band
from project.report.variants import Variant

#: Clean train accuracy: eval mode, no augmentation, a fixed subset of the train split.
CLEAN_TRAIN_ACC = "train_clean/acc"
#: The running accuracy of the training steps: augmented inputs, train-mode normalisation.
RUNNING_TRAIN_ACC = "train/acc"


def _height(n_variants: int, base: float) -> float:
    # Room for the legend under the axes: one row per three variants.
    return base + 0.2 * ((n_variants + 2) // 3)


def train_accuracy_column(variants: list[Variant]) -> tuple[str, str]:
    """(column, panel title) of the train curve: the clean accuracy when any run logged it (it
    is comparable with val), else the running one, labelled as what it is."""
    if any(r.history.has(CLEAN_TRAIN_ACC) for v in variants for r in v.runs):
        return CLEAN_TRAIN_ACC, "train error (clean: eval mode, no augmentation)"
    return RUNNING_TRAIN_ACC, "train error (running: augmented, train mode)"


def error_curves(variants: list[Variant], colors: dict[str, tuple]) -> Figure | str:
    """Train and val error (1 - accuracy, in %) per epoch, two panels."""
    train_col, train_title = train_accuracy_column(variants)
    panels = ((train_col, train_title), ("val/acc", "val error"))
    if not any(r.history.has(col) for v in variants for r in v.runs for col, _ in panels):
        return "no run logged train/acc or val/acc"
    fig = new_figure(10, _height(len(variants), 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (col, title) in zip(axes, panels):
        for v in variants:
            series = [(e, 100 * (1 - a)) for e, a in (r.history.series(col) for r in v.runs)]
            plot_band(ax, series, colors[v.label], v.label)
        ax.set(title=title, ylabel="error (%)")
        epoch_axis(ax)
    legend_outside(fig, axes[0])
    return fig


def loss_curves(variants: list[Variant], colors: dict[str, tuple]) -> Figure | str:
    """Train and val cross-entropy per epoch, two panels (log scale: losses span decades)."""
    getters = (
        ("train loss", lambda r: r.history.train_loss()),
        ("val loss", lambda r: r.history.series("val/loss")),
    )
    every = [get(r) for v in variants for r in v.runs for _, get in getters]
    if not any(e.size for e, _ in every):
        return "no run logged train or val loss"
    fig = new_figure(10, _height(len(variants), 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (title, get) in zip(axes, getters):
        for v in variants:
            plot_band(ax, [get(r) for r in v.runs], colors[v.label], v.label)
        ax.set(title=title, ylabel="cross-entropy loss")
        epoch_axis(ax)
    _log_if_positive(axes[0], [values for _, values in every])
    legend_outside(fig, axes[0])
    return fig


def lr_curves(variants: list[Variant], colors: dict[str, tuple]) -> Figure | str:
    """Learning rate per epoch as steps (it is constant within an epoch), one line per variant
    and parameter group."""
    if not any(r.history.lr_columns() for v in variants for r in v.runs):
        return "no lr-* column in any metrics.csv (LearningRateMonitor not used)"
    fig = new_figure(6, _height(len(variants), 3.4))
    ax = fig.subplots()
    values = []
    for v in variants:
        columns = sorted({c for r in v.runs for c in r.history.lr_columns()})
        for i, col in enumerate(columns):
            series = [r.history.series(col) for r in v.runs]
            label = v.label if len(columns) == 1 else f"{v.label} {col}"
            # Extra parameter groups of one variant share its colour, told apart by dashing.
            style = "-" if i == 0 else "--"
            if plot_band(ax, series, colors[v.label], label, steps=True, linestyle=style):
                values += [lr for _, lr in series]
    ax.set(title="learning rate (value used during each epoch)", ylabel="lr")
    epoch_axis(ax)
    _log_if_positive(ax, values)
    legend_outside(fig, ax)
    return fig


def _log_if_positive(ax, arrays) -> None:
    finite = [a[np.isfinite(a)] for a in arrays if len(a)]
    finite = [a for a in finite if a.size]
    if finite and all((a > 0).all() for a in finite):
        lo = min(float(a.min()) for a in finite)
        hi = max(float(a.max()) for a in finite)
        if hi / lo > 10:  # log only helps when the values span more than a decade
            ax.set_yscale("log")


CURVE_PLOTS = [
    PlotSpec(
        "error_curves.png", "Train and validation error (mean ± std over seeds)", error_curves
    ),
    PlotSpec("loss_curves.png", "Train and validation loss (mean ± std over seeds)", loss_curves),
    PlotSpec("lr_curves.png", "Learning rate", lr_curves),
]
