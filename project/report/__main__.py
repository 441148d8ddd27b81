"""CLI: `python -m project.report PATH... [--out DIR] [--title T] [--baseline K=V[,...]]...`."""

from __future__ import annotations

import argparse
import sys

from project.errors import UserError, report_error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m project.report",
        description="Summarize training runs (run dirs or sweep dirs, searched recursively) into "
        "runs.csv (one row per run), summary.csv/.md (one row per variant: runs that differ only "
        "in seed, as mean, std and 95%% interval), PNG plots and report.html.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="run or sweep directories")
    parser.add_argument("--out", default=None, help="output dir (default: <first PATH>/report)")
    parser.add_argument("--title", default=None, help="report title")
    parser.add_argument(
        "--baseline",
        action="append",
        metavar="KEY=VALUE[,KEY=VALUE...]",
        help="compare every variant with the one whose setting KEY is VALUE (e.g. norm=bn): "
        "difference with a 95%% interval, paired by seed, Welch, or a bootstrap over the test "
        "images for single runs; written to comparison.csv and summary.md. Where settings change "
        "together, name them all (batch_size=128,optimizer.lr=0.1): a variant is paired with the "
        "baseline that equals it in everything else. Repeat the flag for several comparisons.",
    )
    args = parser.parse_args(argv)
    try:
        # Imported here so `--help` stays fast and import problems surface as plain errors.
        from project.report.build import make_report

        html = make_report(args.paths, args.out, args.title, args.baseline)
    except UserError as exc:
        report_error(str(exc))
        return 2
    print(f"report written to {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
