"""Print the compact results table of a study for its README, from the report's summary.csv.

    python experiments/table.py experiments/norm_comparison/summary.csv [more.csv ...]
    python experiments/table.py experiments/norm_comparison/full/summary.csv \
        --into experiments/norm_comparison/README.md --marker full-table

The first prints the table; the second writes it into the README between
`<!-- full-table:begin -->` and `<!-- full-table:end -->`, so a re-run study updates its README
without hand-copying numbers.

One row per variant (runs that differ only in seed): accuracies as mean ± std over the seeds
(n = number of runs; a single run has no std), the validation-best variant marked with *.
With the report's comparison.csv beside summary.csv (`--baseline`), a column gives each
variant's test-accuracy difference to the baseline with its 95% interval (to the first
`--baseline` where the report was given several).
The full tables are the report's summary.md (variants) and runs.csv (every run) beside it.
"""

import argparse
import re
from pathlib import Path

import pandas as pd

METRICS = [
    ("val acc %", "val/acc"),
    ("test acc %", "test/acc"),
    ("test F1 macro %", "test/f1_macro"),
]


def mean_std(row: pd.Series, key: str, scale: float = 100.0, digits: int = 1) -> str:
    mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
    if pd.isna(mean):
        return "-"
    text = f"{scale * mean:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {scale * std:.{digits}f}"


def test_differences(summary: Path) -> dict[str, str]:
    """{variant: "−6.7 [−7.5, −5.8]"} of test accuracy against the baseline, from the
    comparison.csv the report writes beside summary.csv with --baseline (empty without)."""
    path = summary.parent / "comparison.csv"
    if not path.is_file():
        return {}
    rows = pd.read_csv(path)
    out = {}
    for _, row in rows[rows["metric"] == "test/acc"].iterrows():
        text = f"{100 * row['diff']:+.1f}".replace("-", "\u2212")
        if not pd.isna(row["ci95_lo"]):
            lo, hi = (f"{100 * row[k]:+.1f}".replace("-", "\u2212") for k in ("ci95_lo", "ci95_hi"))
            text += f" [{lo}, {hi}]"
        out.setdefault(row["variant"], text)  # the first --baseline's row
    return out


def table(paths: list[str]) -> str:
    """The markdown table of the summary.csv files, one row per variant."""
    diffs = {k: v for path in paths for k, v in test_differences(Path(path)).items()}
    header = ["variant", "n", *(name for name, _ in METRICS)]
    header += ["test acc − baseline, points [95% CI]"] if diffs else []
    header += ["epochs", "time s", "status"]
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for path in paths:
        for _, row in pd.read_csv(path).iterrows():
            best = "*" if str(row.get("val_best")).lower() == "true" else ""
            cells = [f"{row['variant']}{best}", str(row["n"])]
            cells += [mean_std(row, key) for _, key in METRICS]
            cells += [diffs.get(row["variant"], "baseline")] if diffs else []
            cells += [mean_std(row, "epochs", 1, 0), mean_std(row, "wall_time_s", 1, 0)]
            cells.append(str(row.get("status", "")))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_between_markers(readme: Path, marker: str, text: str) -> None:
    """Replace what lies between `<!-- {marker}:begin -->` and `<!-- {marker}:end -->`."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    source = readme.read_text()
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(source):
        raise SystemExit(
            f"{readme} has no '{begin}' ... '{end}' pair, so there is nowhere to put the table. "
            "Add the two marker lines where the table belongs (or pick the marker that is there) "
            "and run again."
        )
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", source, count=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", help="the report's summary.csv file(s)")
    parser.add_argument("--into", type=Path, help="README to write the table into (else print)")
    parser.add_argument("--marker", default="table", help="marker name in the README")
    args = parser.parse_args(argv)
    text = table(args.summaries)
    if args.into is None:
        print(text)
    else:
        write_between_markers(args.into, args.marker, text)


if __name__ == "__main__":
    main()
