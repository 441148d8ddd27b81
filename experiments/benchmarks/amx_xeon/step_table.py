"""The model-step tables of benchmarks/README.md ("On a 2-core AMX Xeon") from the csvs here.

Run from the repository root: `python experiments/benchmarks/amx_xeon/step_table.py`.
Each cell: eager ratio → compiled ratio (scratch / torch's layers of that norm, same rounds).
"""

from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
CELLS = [(p, layout) for p in ("fp32", "bf16") for layout in ("nchw", "channels_last")]
KEY = ["norm", "shape", "precision", "layout"]
RATIOS = ("ratio", "ratio_vs_torch_bn")


def load() -> pd.DataFrame:
    eager = pd.read_csv(HERE / "model_layout_eager_2c.csv").query("part == 'model'")
    files = [HERE / f"model_compile_{p}_2c.csv" for p in ("bf16", "fp32")]
    compiled = pd.concat([pd.read_csv(f) for f in files])
    return eager.merge(compiled, on=KEY, suffixes=("_e", "_c"))


def cell(x: pd.Series, digits: int) -> str:
    ms = f"{x.scratch_ms_c:.{digits}f} / {x.torch_ms_c:.{digits}f}"
    return f"{x.ratio_e:.2f} → **{x.ratio_c:.2f}** ({ms})"


def main() -> None:
    m = load()
    for batch, digits in ((128, 0), (8, 1)):
        print(
            f"\nBatch {batch}: scratch / torch, eager → **compiled** (compiled scratch ms / torch"
            " ms); last column: compiled bf16 channels_last vs torch's compiled BN net\n"
        )
        print("| norm | " + " | ".join(f"{p} {lay}" for p, lay in CELLS) + " | vs torch BN |")
        print("|---|" + "---:|" * (len(CELLS) + 1))
        for norm in ("bn", "in", "bin", "ln", "gn"):
            rows = m[(m.norm == norm) & (m["shape"] == f"ResNet-14 B={batch}")]
            pick = {(r.precision, r.layout): r for r in rows.itertuples()}
            cells = " | ".join(cell(pick[c], digits) for c in CELLS)
            print(f"| {norm} | {cells} | {pick['bf16', 'channels_last'].ratio_vs_torch_bn_c:.2f} |")
    print()
    for label, end in (("eager", "_e"), ("compiled", "_c")):
        for precision in ("fp32", "bf16"):
            ratio, vs_bn = (m.loc[m.precision == precision, c + end] for c in RATIOS)
            print(
                f"- {label} {precision}: {ratio.min():.2f}–{ratio.max():.2f}"
                f" (vs torch BN {vs_bn.min():.2f}–{vs_bn.max():.2f})"
            )


if __name__ == "__main__":
    main()
