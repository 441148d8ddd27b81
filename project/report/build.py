"""`make_report`: read runs, then write the tables, plots, BN sanity check and HTML page."""

from __future__ import annotations

from pathlib import Path

from project.errors import UserError
from project.io import atomic_write_text
from project.report.curves import CURVE_PLOTS
from project.report.grids import GRID_PLOTS
from project.report.page import render_html
from project.report.plots import make_plots
from project.report.runs import load_runs
from project.report.sanity import bn_sanity, sanity_markdown
from project.report.tables import summary_csv, summary_markdown

PLOTS = CURVE_PLOTS[:2] + GRID_PLOTS + CURVE_PLOTS[2:]  # lr last: it is the least often present


def make_report(
    paths: list[str | Path] | str | Path,
    out_dir: str | Path | None = None,
    title: str | None = None,
) -> Path:
    """Write a report for the runs under `paths` into `out_dir`; returns the `report.html` path.

    `paths` are run dirs or sweep dirs (searched recursively). `out_dir` defaults to
    `<first path>/report`. Raises `UserError` when a path is missing or holds no runs.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    runs = load_runs(paths)
    out = Path(out_dir) if out_dir is not None else Path(paths[0]) / "report"
    title = title or f"Report: {', '.join(Path(p).as_posix() for p in paths)}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"--out {out} cannot be created ({err.strerror or err}): the report writes "
            f"summary.csv, plots and report.html there. Pass a directory you can write to, e.g. "
            f"--out reports/<name>."
        ) from None

    pairs = bn_sanity(runs)
    sanity_md = sanity_markdown(pairs)
    atomic_write_text(out / "summary.csv", summary_csv(runs))
    atomic_write_text(out / "summary.md", summary_markdown(runs, title, sanity_md))
    if pairs:
        atomic_write_text(out / "bn_sanity.md", sanity_markdown(pairs, heading="#"))
    else:
        # An earlier report of other runs may have left one; it would now be wrong.
        (out / "bn_sanity.md").unlink(missing_ok=True)
    plots = make_plots(runs, out, PLOTS)
    return atomic_write_text(out / "report.html", render_html(title, runs, plots, pairs))
