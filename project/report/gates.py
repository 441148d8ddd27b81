"""Batch-Instance Normalization's gate ρ per layer over training, one panel per BIN variant.

Training logs the mean ρ of each BIN layer per epoch as `rho/<layer>` (ρ = 1: the layer acts as
batch norm, ρ = 0: as instance norm). Layers are drawn input to output on one colour scale; with
more than `MAX_LEGEND_LAYERS` layers a colourbar of the layer's depth replaces the legend.
"""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from project.report.grids import grid
from project.report.plots import (
    PlotSpec,
    capped_note,
    epoch_axis,
    legend_outside,
    panel_title,
    plot_band,
)
from project.report.runs import natural_key
from project.report.variants import Variant

PREFIX = "rho/"
MAX_PANELS = 6
MAX_LEGEND_LAYERS = 12


def rho_columns(variant: Variant) -> list[str]:
    """The variant's `rho/<layer>` columns in network order (`layer1.0` before `layer1.1`)."""
    columns = {c for r in variant.runs for c in r.history.columns if c.startswith(PREFIX)}
    return sorted(columns, key=natural_key)


def rho_curves(variants: list[Variant], colors: dict[str, tuple]) -> tuple[Figure, str] | str:
    """Mean ρ per layer vs epoch (mean ± std over seeds), a shared 0–1 y axis across panels."""
    available = [(v, cols) for v in variants if (cols := rho_columns(v))]
    chosen = available[:MAX_PANELS]
    if not chosen:
        return "no run logged rho/<layer> (the BIN gate)"
    fig, axes = grid(len(chosen), 3, 3.6, 2.8, sharey=True)
    cmap = colormaps["viridis"]
    most = max(len(cols) for _, cols in chosen)
    for ax, (variant, columns) in zip(axes, chosen):
        for i, col in enumerate(columns):
            series = [r.history.series(col) for r in variant.runs]
            color = cmap(i / max(1, most - 1))
            plot_band(ax, series, color, col[len(PREFIX) :], linewidth=1)
        ax.set(title=panel_title(variant.label), ylabel="mean gate \u03c1", ylim=(-0.02, 1.02))
        epoch_axis(ax)
    if most <= MAX_LEGEND_LAYERS:
        widest = max(chosen, key=lambda item: len(item[1]))
        legend_outside(fig, axes[[v for v, _ in chosen].index(widest[0])])
    else:
        scale = ScalarMappable(Normalize(0, most - 1), cmap)
        fig.colorbar(scale, ax=axes, label="BIN layer (0 = nearest the input)")
    return fig, capped_note(len(chosen), len(available))


RHO_PLOTS = [
    PlotSpec(
        "bin_gate_rho.png",
        "BIN gate \u03c1 per layer (mean ± std over seeds)",
        rho_curves,
        optional=True,
    )
]
