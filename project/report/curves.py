"""Per-epoch line plots with every run overlaid: error, loss and learning-rate curves."""

from __future__ import annotations

from matplotlib.figure import Figure

from project.report.plots import PlotSpec, epoch_axis, legend_outside, new_figure
from project.report.runs import Run


def _height(n_runs: int, base: float) -> float:
    # Room for the legend under the axes: one row per three runs.
    return base + 0.2 * ((n_runs + 2) // 3)


def error_curves(runs: list[Run], colors: dict[str, tuple]) -> Figure | str:
    """Train and val error (1 - accuracy, in %) per epoch, two panels."""
    panels = (("train/acc", "train error"), ("val/acc", "val error"))
    if not any(r.history.has(col) for r in runs for col, _ in panels):
        return "no run logged train/acc or val/acc"
    fig = new_figure(10, _height(len(runs), 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (col, title) in zip(axes, panels):
        for run in runs:
            epochs, acc = run.history.series(col)
            if epochs.size:
                ax.plot(epochs, 100 * (1 - acc), color=colors[run.label], label=run.label)
        ax.set_title(title)
        epoch_axis(ax)
    axes[0].set_ylabel("error (%)")
    legend_outside(fig, axes[0], len(runs))
    return fig


def loss_curves(runs: list[Run], colors: dict[str, tuple]) -> Figure | str:
    """Train and val cross-entropy per epoch, two panels (log scale: losses span decades)."""
    getters = (
        ("train loss", lambda r: r.history.train_loss()),
        ("val loss", lambda r: r.history.series("val/loss")),
    )
    if not any(get(r)[0].size for r in runs for _, get in getters):
        return "no run logged train or val loss"
    fig = new_figure(10, _height(len(runs), 3.6))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (title, get) in zip(axes, getters):
        for run in runs:
            epochs, loss = get(run)
            if epochs.size:
                ax.plot(epochs, loss, color=colors[run.label], label=run.label)
        ax.set_title(title)
        epoch_axis(ax)
    axes[0].set_ylabel("loss")
    _log_if_positive(axes[0], [get(r)[1] for r in runs for _, get in getters])
    legend_outside(fig, axes[0], len(runs))
    return fig


def lr_curves(runs: list[Run], colors: dict[str, tuple]) -> Figure | str:
    """Learning rate per epoch, one line per run and parameter group."""
    if not any(r.history.lr_columns() for r in runs):
        return "no lr-* column in any metrics.csv (LearningRateMonitor not used)"
    fig = new_figure(6, _height(len(runs), 3.4))
    ax = fig.subplots()
    values = []
    for run in runs:
        columns = run.history.lr_columns()
        for i, col in enumerate(columns):
            epochs, lr = run.history.series(col)
            if not epochs.size:
                continue
            label = run.label if len(columns) == 1 else f"{run.label} {col}"
            # Extra parameter groups of one run share its colour, told apart by dashing.
            ax.plot(
                epochs, lr, color=colors[run.label], linestyle="-" if i == 0 else "--", label=label
            )
            values.append(lr)
    ax.set(title="learning rate", ylabel="lr")
    epoch_axis(ax)
    _log_if_positive(ax, values)
    legend_outside(fig, ax, len(runs))
    return fig


def _log_if_positive(ax, arrays) -> None:
    import numpy as np

    finite = [a[np.isfinite(a)] for a in arrays if len(a)]
    finite = [a for a in finite if a.size]
    if finite and all((a > 0).all() for a in finite):
        lo = min(float(a.min()) for a in finite)
        hi = max(float(a.max()) for a in finite)
        if hi / lo > 10:  # log only helps when the values span more than a decade
            ax.set_yscale("log")


CURVE_PLOTS = [
    PlotSpec("error_curves.png", "Train and validation error", error_curves),
    PlotSpec("loss_curves.png", "Train and validation loss", loss_curves),
    PlotSpec("lr_curves.png", "Learning rate", lr_curves),
]
