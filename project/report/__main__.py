"""CLI: `python -m project.report PATH... [--out DIR] [--title T]`."""

from __future__ import annotations

import argparse
import sys

from project.errors import UserError, report_error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m project.report",
        description="Summarize training runs (run dirs or sweep dirs, searched recursively) into "
        "summary.csv/.md, PNG plots and report.html.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="run or sweep directories")
    parser.add_argument("--out", default=None, help="output dir (default: <first PATH>/report)")
    parser.add_argument("--title", default=None, help="report title")
    args = parser.parse_args(argv)
    try:
        # Imported here so `--help` stays fast and import problems surface as plain errors.
        from project.report.build import make_report

        html = make_report(args.paths, args.out, args.title)
    except UserError as exc:
        report_error(str(exc))
        return 2
    print(f"report written to {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
