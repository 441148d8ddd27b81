"""Reports over training runs: per-variant tables over seeds (mean, std, 95% interval), baseline
differences with intervals, plots, a BN sanity check and an HTML page.

Use `python -m project.report PATH... [--out DIR] [--title T] [--baseline KEY=VALUE[,...]]...`
or `make_report(paths, out_dir, title, baseline)`.
It only reads run directories written by `python -m project.train`, so it works offline and
with W&B disabled.
"""

from project.report.build import make_report

__all__ = ["make_report"]
