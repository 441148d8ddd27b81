"""`make_report`: read runs, group them into variants, then write the tables, the baseline
comparison, plots, BN sanity check and HTML page."""

from __future__ import annotations

from pathlib import Path

from project.errors import UserError
from project.io import atomic_write_text
from project.report.compare import compare_to_baseline, comparison_csv
from project.report.curves import CURVE_PLOTS
from project.report.gates import RHO_PLOTS
from project.report.grids import GRID_PLOTS
from project.report.markdown import ReportContents, summary_markdown
from project.report.page import render_html
from project.report.plots import make_plots
from project.report.runs import load_runs
from project.report.sanity import bn_sanity, sanity_markdown
from project.report.summary import summary_csv
from project.report.tables import runs_csv
from project.report.variants import group_variants, val_best

# lr and ρ last: they are the least often present.
PLOTS = CURVE_PLOTS[:2] + GRID_PLOTS + CURVE_PLOTS[2:] + RHO_PLOTS


def _make_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(
            f"--out {out} cannot be created ({err.strerror or err}): the report writes "
            f"summary.csv, plots and report.html there. Pass a directory you can write to, e.g. "
            f"--out reports/<name>."
        ) from None


def _write_or_remove(path: Path, text: str) -> None:
    """Write `text`, or remove `path` when there is nothing to say: an earlier report of other
    runs may have left one, and it would now be wrong."""
    if text:
        atomic_write_text(path, text)
    else:
        path.unlink(missing_ok=True)


def make_report(
    paths: list[str | Path] | str | Path,
    out_dir: str | Path | None = None,
    title: str | None = None,
    baseline: str | list[str] | None = None,
) -> Path:
    """Write a report for the runs under `paths` into `out_dir`; returns the `report.html` path.

    `paths` are run dirs or sweep dirs (searched recursively). `out_dir` defaults to
    `<first path>/report`. `baseline` (`KEY=VALUE[,KEY=VALUE...]`, e.g. `norm=bn`, or a list
    of them) adds each variant's difference to its baseline with a 95% interval (comparison.csv;
    see `project.report.compare`). Raises `UserError` when a path is missing or holds no runs, or
    when no variant matches a baseline.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    runs = load_runs(paths)
    variants = group_variants(runs)
    specs = [baseline] if isinstance(baseline, str) else list(baseline or [])
    comparisons = [c for spec in specs for c in compare_to_baseline(variants, spec)]
    out = Path(out_dir) if out_dir is not None else Path(paths[0]) / "report"
    _make_out_dir(out)
    contents = ReportContents(
        title=title or f"Report: {', '.join(Path(p).as_posix() for p in paths)}",
        runs=[r for v in variants for r in v.runs],  # the run table grouped like the variants
        variants=variants,
        best=val_best(variants),
        comparisons=comparisons,
        pairs=bn_sanity(runs),
    )
    atomic_write_text(out / "runs.csv", runs_csv(runs))
    atomic_write_text(out / "summary.csv", summary_csv(variants, contents.best))
    _write_or_remove(out / "comparison.csv", comparison_csv(comparisons) if comparisons else "")
    atomic_write_text(out / "summary.md", summary_markdown(contents))
    _write_or_remove(out / "bn_sanity.md", sanity_markdown(contents.pairs, heading="#"))
    plots = make_plots(variants, out, PLOTS)
    return atomic_write_text(out / "report.html", render_html(contents, plots))
