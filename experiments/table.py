"""Print the compact results table of a study for its README, from the report's summary.csv.

    python experiments/table.py experiments/norm_comparison/summary.csv [more.csv ...]

The full table (every config column, train/val/test × acc/F1) is the report's summary.md beside it;
this one keeps what a reader compares: the run, val/test accuracy, test macro F1, epochs, time.
"""

import csv
import sys

COLUMNS = [
    ("run", "label"),
    ("status", "status"),
    ("train acc %", "train/acc"),
    ("val acc %", "val/acc"),
    ("test acc %", "test/acc"),
    ("test F1 micro %", "test/f1_micro"),
    ("test F1 macro %", "test/f1_macro"),
    ("best epoch", "best_epoch"),
    ("epochs", "epochs"),
    ("time s", "wall_time_s"),
]
PERCENT = {"train/acc", "val/acc", "test/acc", "test/f1_micro", "test/f1_macro"}


def cell(row: dict, key: str) -> str:
    value = row.get(key, "")
    if key in PERCENT and value not in ("", None):
        return f"{100 * float(value):.1f}"
    return value or "-"


def main(paths: list[str]) -> None:
    print("| " + " | ".join(name for name, _ in COLUMNS) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|")
    for path in paths:
        with open(path) as f:
            for row in csv.DictReader(f):
                print("| " + " | ".join(cell(row, key) for _, key in COLUMNS) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
