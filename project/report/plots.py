"""Shared plotting plumbing: figures without pyplot, stable colours, small deterministic PNGs,
and the mean ± std band that every per-epoch curve of a variant is drawn with.

We build `matplotlib.figure.Figure` objects directly (no pyplot) so making a report never
touches the global backend or leaks figures, and save with fixed metadata so identical input
gives byte-identical PNGs.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from project.io import atomic_write
from project.report.variants import Variant

MAX_PNG_BYTES = 200 * 1024
# Lower resolutions to fall back to if a busy grid would exceed the size budget.
_DPIS = (100, 80, 64, 50)
# Fixed style, so a user's matplotlibrc cannot change the bytes (or the look) of a report.
STYLE = {"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7, "axes.grid": True}


def variant_colors(variants: list[Variant]) -> dict[str, tuple]:
    """Same colour for a variant in every plot, keyed by label."""
    cmap = colormaps["tab10" if len(variants) <= 10 else "tab20"]
    return {v.label: cmap(i % cmap.N) for i, v in enumerate(variants)}


Series = tuple[np.ndarray, np.ndarray]  # (epochs, values) of one run


def across_seeds(series: list[Series]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, std) over the runs at each epoch any of them logged. An epoch's mean uses
    the runs that have a finite value there (a diverged seed stops early); its std (ddof=1) is
    NaN where fewer than two runs do, so no band is drawn from a single value."""
    epochs = np.unique(np.concatenate([e for e, _ in series])) if series else np.zeros(0, int)
    stack = np.full((len(series), epochs.size), np.nan)
    for i, (e, v) in enumerate(series):
        stack[i, np.searchsorted(epochs, e)] = v
    count = np.isfinite(stack).sum(axis=0)
    total = np.where(np.isfinite(stack), stack, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        square = np.where(np.isfinite(stack), (stack - mean) ** 2, 0.0).sum(axis=0)
        std = np.where(count > 1, np.sqrt(square / (count - 1)), np.nan)
    return epochs, mean, std


def plot_band(ax, series: list[Series], color, label: str, steps: bool = False, **line) -> bool:
    """The mean line over seeds with a shaded ±std band; False when there is nothing to draw.

    `steps` draws both as steps that hold each epoch's value until the next (`steps-post`)."""
    epochs, mean, std = across_seeds([s for s in series if s[0].size])
    if not epochs.size:
        return False
    draw = {}
    if steps:
        draw = {"drawstyle": "steps-post"}
        # Repeat the last value one epoch on, so the last epoch's step has a width too.
        epochs = np.append(epochs, epochs[-1] + 1)
        mean, std = np.append(mean, mean[-1]), np.append(std, std[-1])
    ax.plot(epochs, mean, color=color, label=label, **draw, **line)
    band = np.isfinite(std)
    if band.any():
        ax.fill_between(
            epochs, mean - std, mean + std, where=band, color=color, alpha=0.2, linewidth=0,
            step="post" if steps else None,
        )  # fmt: skip
    return True


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_png(fig: Figure, path: Path) -> Path:
    """Write `fig` as PNG, lowering the dpi until it fits in MAX_PNG_BYTES."""
    for dpi in _DPIS:
        buf = io.BytesIO()
        # No "Software" tag (it carries the matplotlib version) and no timestamp.
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
        data = buf.getvalue()
        if len(data) <= MAX_PNG_BYTES:
            break
    return atomic_write(path, lambda f: f.write(data))


def epoch_axis(ax) -> None:
    """Label the x axis as epochs, with integer ticks only (half epochs do not exist)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def capped_note(shown: int, available: int) -> str:
    """Say how many runs a capped grid left out ('' when none were)."""
    if shown >= available:
        return ""
    return f"Showing the first {shown} of {available} runs that have this data (in table order)."


def panel_title(label: str, width: int = 36) -> str:
    """A variant label wrapped at spaces to fit one panel of a grid (long sweep labels such as
    `norm=none scheduler.warmup_epochs=2 model.zero_init_residual=true` ran into the next one)."""
    return textwrap.fill(label, width, break_long_words=False, break_on_hyphens=False)


def legend_columns(fig: Figure, labels: list[str], most: int = 3) -> int:
    """As many legend columns (up to `most`) as fit the figure's width: long sweep labels
    (`regularization.l1=1e-05 optimizer.weight_decay=0.0001`) in three columns overflow it."""
    font_in = STYLE["legend.fontsize"] / 72
    entry_in = 0.55 * font_in * max(map(len, labels), default=1) + 0.45  # text + handle + gap
    return max(1, min(most, len(labels), int(fig.get_figwidth() // entry_in)))


def shared_legend(fig: Figure, handles: list, labels: list[str]) -> None:
    """One legend for the whole figure, below the axes, as many columns as fit."""
    fig.legend(handles, labels, loc="outside lower center", ncols=legend_columns(fig, labels))


def legend_outside(fig: Figure, ax) -> None:
    """The legend of `ax`'s lines, shared, below the axes: long labels never cover the curves."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        shared_legend(fig, handles, labels)


@dataclass
class PlotSpec:
    """One report figure.

    `draw(variants, colors)` returns a Figure, a (Figure, note) pair when the note should be shown
    under it (e.g. runs left out of a capped grid), or a reason string to skip the plot.
    """

    filename: str
    title: str
    draw: Callable[[list[Variant], dict[str, tuple]], Figure | tuple[Figure, str] | str]
    #: Only some studies have this data (e.g. BIN's gate): when skipped, the page omits it.
    optional: bool = False


@dataclass
class PlotResult:
    filename: str
    title: str
    written: bool
    reason: str = ""  # why it was skipped
    note: str = ""  # shown under the image


def make_plots(variants: list[Variant], out_dir: Path, specs: list[PlotSpec]) -> list[PlotResult]:
    """Draw every plot; skipped plots remove any stale PNG from an earlier report."""
    import matplotlib

    colors = variant_colors(variants)
    results = []
    for spec in specs:
        with matplotlib.rc_context(STYLE):
            fig = spec.draw(variants, colors)
            target = out_dir / spec.filename
            if isinstance(fig, str):
                target.unlink(missing_ok=True)
                if not spec.optional:
                    results.append(PlotResult(spec.filename, spec.title, False, fig))
            else:
                fig, note = fig if isinstance(fig, tuple) else (fig, "")
                save_png(fig, target)
                results.append(PlotResult(spec.filename, spec.title, True, note=note))
    return results
