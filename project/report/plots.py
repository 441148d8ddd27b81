"""Shared plotting plumbing: figures without pyplot, stable colours, small deterministic PNGs.

We build `matplotlib.figure.Figure` objects directly (no pyplot) so making a report never
touches the global backend or leaks figures, and save with fixed metadata so identical input
gives byte-identical PNGs.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from project.io import atomic_write
from project.report.runs import Run

MAX_PNG_BYTES = 200 * 1024
# Lower resolutions to fall back to if a busy grid would exceed the size budget.
_DPIS = (100, 80, 64, 50)
# Fixed style, so a user's matplotlibrc cannot change the bytes (or the look) of a report.
STYLE = {"font.size": 8, "axes.titlesize": 9, "legend.fontsize": 7, "axes.grid": True}


def run_colors(runs: list[Run]) -> dict[str, tuple]:
    """Same colour for a run in every plot, keyed by label."""
    cmap = colormaps["tab10" if len(runs) <= 10 else "tab20"]
    return {r.label: cmap(i % cmap.N) for i, r in enumerate(runs)}


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


def legend_outside(fig: Figure, ax, n_runs: int) -> None:
    """One shared legend below the axes so long sweep labels never cover the curves."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, max(1, n_runs)))


@dataclass
class PlotSpec:
    """One report figure.

    `draw(runs, colors)` returns a Figure, a (Figure, note) pair when the note should be shown
    under it (e.g. runs left out of a capped grid), or a reason string to skip the plot.
    """

    filename: str
    title: str
    draw: Callable[[list[Run], dict[str, tuple]], Figure | tuple[Figure, str] | str]


@dataclass
class PlotResult:
    filename: str
    title: str
    written: bool
    reason: str = ""  # why it was skipped
    note: str = ""  # shown under the image


def make_plots(runs: list[Run], out_dir: Path, specs: list[PlotSpec]) -> list[PlotResult]:
    """Draw every plot; skipped plots remove any stale PNG from an earlier report."""
    import matplotlib

    colors = run_colors(runs)
    results = []
    for spec in specs:
        with matplotlib.rc_context(STYLE):
            fig = spec.draw(runs, colors)
            target = out_dir / spec.filename
            if isinstance(fig, str):
                target.unlink(missing_ok=True)
                results.append(PlotResult(spec.filename, spec.title, False, fig))
            else:
                fig, note = fig if isinstance(fig, tuple) else (fig, "")
                save_png(fig, target)
                results.append(PlotResult(spec.filename, spec.title, True, note=note))
    return results
