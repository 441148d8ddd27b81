"""The epoch-time table of benchmarks/README.md ("On a 2-core AMX Xeon") from the records here.

Run from the repository root: `python experiments/benchmarks/epoch_time_amx/table.py`.
Each record is a 3-epoch run; epochs 2 and 3 are the epoch time (the first one compiles).
"""

from pathlib import Path

import pandas as pd

RUNS = Path(__file__).parent / "runs"
NORMS = {"torch_bn": "torch BN (`torch_bn`)", "bn": "BN", "in": "IN", "bin": "BIN", "ln": "LN"}
NORMS |= {"gn": "GN", "none": "none"}
EXTRA = ("bn_fp32_cltrue", "gn_fp32_cltrue", "bn_eager_bf16_cltrue", "bn_eager_fp32_cltrue")


def epochs(name: str) -> tuple[list[float], float]:
    """(training seconds of each epoch, val accuracy after the last) of run `name`."""
    metrics = pd.read_csv(RUNS / name / "csv" / "metrics.csv")
    seconds = metrics.dropna(subset=["time/epoch_s"]).sort_values("epoch")["time/epoch_s"]
    val_acc = metrics.dropna(subset=["val/acc"]).sort_values("epoch")["val/acc"]
    return seconds.tolist(), float(val_acc.iloc[-1])


def later(seconds: list[float]) -> float:
    return sum(seconds[1:3]) / 2


def main() -> None:
    runs = {f"{n}_cl{cl}": epochs(f"{n}_cl{cl}") for n in NORMS for cl in ("false", "true")}
    ref = {cl: later(runs[f"torch_bn_cl{cl}"][0]) for cl in ("false", "true")}
    print(
        "| norm | NCHW: epochs 2, 3 (s) | channels_last: epochs 2, 3 (s) | first epoch NCHW / CL"
        " (s) | scratch / torch BN net, NCHW / CL | CL / NCHW | val acc after 3 epochs NCHW / CL"
        " (%) |"
    )
    print("|---|---|---|---|---:|---:|---|")
    for norm, label in NORMS.items():
        (nchw, acc_n), (cl, acc_c) = runs[f"{norm}_clfalse"], runs[f"{norm}_cltrue"]
        pair = [", ".join(f"{s:.1f}" for s in t[1:3]) for t in (nchw, cl)]
        ratios = f"{later(nchw) / ref['false']:.2f} / {later(cl) / ref['true']:.2f}"
        print(
            f"| {label} | {pair[0]} | {pair[1]} | {nchw[0]:.1f} / {cl[0]:.1f} | {ratios} |"
            f" {later(cl) / later(nchw):.2f} | {100 * acc_n:.1f} / {100 * acc_c:.1f} |"
        )
    print()
    for name in EXTRA:
        seconds, acc = epochs(name)
        print(
            f"- {name}: epochs {', '.join(f'{s:.1f}' for s in seconds)} s; val acc {100 * acc:.1f}%"
        )


if __name__ == "__main__":
    main()
