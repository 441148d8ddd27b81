"""Print the compact results table of a study for its README, from the report's summary.csv.

    python experiments/table.py experiments/norm_comparison/summary.csv [more.csv ...]

One row per variant (runs that differ only in seed): accuracies as mean ± std over the seeds
(n = number of runs; a single run has no std), the validation-best variant marked with *.
With the report's comparison.csv beside summary.csv (`--baseline`), a column gives each
variant's test-accuracy difference to the baseline with its 95% interval.
The full tables are the report's summary.md (variants) and runs.csv (every run) beside it.
"""

import sys
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
        out[row["variant"]] = text
    return out


def main(paths: list[str]) -> None:
    diffs = {k: v for path in paths for k, v in test_differences(Path(path)).items()}
    header = ["variant", "n", *(name for name, _ in METRICS)]
    header += ["test acc − baseline, points [95% CI]"] if diffs else []
    header += ["epochs", "time s", "status"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for path in paths:
        for _, row in pd.read_csv(path).iterrows():
            best = "*" if str(row.get("val_best")).lower() == "true" else ""
            cells = [f"{row['variant']}{best}", str(row["n"])]
            cells += [mean_std(row, key) for _, key in METRICS]
            cells += [diffs.get(row["variant"], "baseline")] if diffs else []
            cells += [mean_std(row, "epochs", 1, 0), mean_std(row, "wall_time_s", 1, 0)]
            cells.append(str(row.get("status", "")))
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
