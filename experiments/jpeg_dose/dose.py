"""jpeg_dose: test accuracy of the same recipe against each tree's JPEG error, and what a line
through those points says about the original pixels.

    python experiments/jpeg_dose/dose.py               # table, fits and plot from the records
    python experiments/jpeg_dose/dose.py --cross-eval  # first: each run's val-best checkpoint on
                                                       # the quality-75 test images (needs the run
                                                       # dirs in outputs/full/jpeg_dose/)

Reads runs/*/results.json (committed) and trees.json (each tree's median RMS error from the
original pixels, measured on cifar10-mini's twins by project.studies.jpeg_reencode); writes
dose.md (also into README.md between its dose-table markers), dose.csv, dose_response.png and, with
--cross-eval, cross_eval.csv here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from project.report.stats import paired_difference  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/, for table.py
from table import write_between_markers  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = REPO / "outputs/full/jpeg_dose"
EVAL = REPO / "outputs/eval/jpeg_dose"
BASE = 75  # the shared copy as it is
#: The trees "near the base" for the local fits: quality 75, 70 and 60. Fixed before the
#: quality-70 runs had finished, after the quality-15 run showed a much steeper fall.
LOCAL_MAX_RMS = 10.5


def records(trees: dict) -> pd.DataFrame:
    rows = []
    for path in sorted((HERE / "runs").glob("bn_q*_s*/results.json")):
        res = json.loads(path.read_text())
        quality, seed = path.parent.name.removeprefix("bn_q").split("_s")
        m = res["metrics"]
        rows.append({
            "run": path.parent.name, "quality": int(quality), "seed": int(seed),
            "rms": trees[quality]["median_rms_255"], "test": 100 * m["test/acc"],
            "val": 100 * m["val/acc"], "train_clean": 100 * m["train/acc"],  # clean images
            "best_epoch": res["best_epoch"], "wall_s": res["wall_time_s"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def fit_speed(df: pd.DataFrame, epochs=(0, 2, 5, 10, 14)) -> list[str]:
    """Accuracy on the augmented training batches after each of ``epochs`` (mean over seeds):
    how fast each tree is fitted, the measure in which the course's runs were ahead of ours."""
    acc = {}
    for run, q in zip(df.run, df.quality, strict=True):
        m = pd.read_csv(HERE / "runs" / run / "csv/metrics.csv")
        per_epoch = m.dropna(subset=["train/acc"]).groupby("epoch")["train/acc"].last()
        acc.setdefault(q, []).append(100 * per_epoch.reindex(epochs))
    md = ["| quality | " + " | ".join(f"after epoch {e}" for e in epochs) + " |",
          "|---:|" + "---:|" * len(epochs)]  # fmt: skip
    for q in sorted(acc, reverse=True):
        mean = pd.concat(acc[q], axis=1).mean(axis=1)
        md.append(f"| {q} | " + " | ".join(f"{v:.1f}" for v in mean) + " |")
    return md


def cross_eval(df: pd.DataFrame, trees: dict) -> pd.DataFrame:
    """Each run's val-best checkpoint on the quality-75 test images (bf16, as trained)."""
    base_root = trees[str(BASE)]["root"]
    acc = []
    for run in df["run"]:
        out = EVAL / run
        if not (out / "metrics.json").is_file():
            subprocess.run([
                sys.executable, "-m", "project.evaluate",
                f"ckpt={WORK / run / 'checkpoints/best.ckpt'}", "data=folder",
                f"data.root={base_root}", "precision=bf16-mixed", f"out={out}",
            ], check=True, cwd=REPO, stdout=subprocess.DEVNULL)  # fmt: skip
        acc.append(100 * json.loads((out / "metrics.json").read_text())["accuracy"])
    df = df.assign(test_on_q75=acc)
    df[["run", "quality", "seed", "test", "test_on_q75"]].to_csv(
        HERE / "cross_eval.csv", index=False, float_format="%.2f"
    )
    return df


def mean_sd(v: pd.Series) -> str:
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def t_interval(variant: pd.Series, baseline: pd.Series) -> str:
    """variant − baseline, paired by seed, with the project report's 95% t interval."""
    d = paired_difference(variant.to_numpy(), baseline.to_numpy())
    if d.lo is None:
        return f"{d.diff:+.2f} (n = 1)"
    return f"{d.diff:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}]"


def line(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Least-squares line y = a + b x: (a, b), their covariance, residual degrees of freedom."""
    design = np.stack([np.ones_like(x), x], 1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = len(y) - 2
    sigma2 = ((y - design @ coef) ** 2).sum() / dof if dof > 0 else np.nan
    return coef, sigma2 * np.linalg.inv(design.T @ design), dof


def with_interval(v: np.ndarray, coef: np.ndarray, cov: np.ndarray, dof: int, sign: str) -> str:
    """v @ coef with its 95% t interval (``sign``: "+" to print the sign)."""
    mean, half = v @ coef, stats.t.ppf(0.975, dof) * np.sqrt(v @ cov @ v)
    return f"{mean:{sign}.2f} [{mean - half:{sign}.2f}, {mean + half:{sign}.2f}]"


def fit_rows(df: pd.DataFrame, x0: float, outcome: str) -> list[str]:
    """Lines through (error, accuracy), over all trees and over those near the base, with
    accuracy linear in the RMS error or in the squared error: where each puts zero error."""
    rows = []
    for subset, runs in (
        ("all trees", df),
        (f"trees ≤ {LOCAL_MAX_RMS}/255", df[df.rms <= LOCAL_MAX_RMS]),
    ):
        for axis, power in (("RMS", 1), ("squared error", 2)):
            if runs.rms.nunique() < 2 or len(runs) < 3:
                continue
            coef, cov, dof = line(runs.rms.to_numpy() ** power, runs[outcome].to_numpy())
            rows.append(
                f"| {outcome} | {subset} ({runs.rms.nunique()} trees, {len(runs)} runs) | {axis} | "
                f"{with_interval(np.array([1.0, 0.0]), coef, cov, dof, '')} | "
                f"{with_interval(np.array([0.0, x0**power]), coef, cov, dof, '+')} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cross-eval", action="store_true")
    args = parser.parse_args()
    trees = json.loads((HERE / "trees.json").read_text())
    df = records(trees)
    if args.cross_eval:
        df = cross_eval(df, trees)
    elif (HERE / "cross_eval.csv").is_file():
        df = df.merge(
            pd.read_csv(HERE / "cross_eval.csv")[["run", "test_on_q75"]], on="run", how="left"
        )
    df.to_csv(HERE / "dose.csv", index=False, float_format="%.3f")
    base = df[df.quality == BASE].set_index("seed")
    cross = "test_on_q75" in df
    md = [
        "| quality | median RMS /255 | n | clean-train acc % | val acc % | test acc % (own test "
        "images) | test − quality 75, paired by seed [95% t] | val − quality 75 |"
        + (" test acc % on the quality-75 test images |" if cross else ""),
        "|---:|---:|---:|---:|---:|---:|---|---|" + ("---:|" if cross else ""),
    ]
    for q, g in sorted(df.groupby("quality"), key=lambda kv: -kv[0]):
        g = g.set_index("seed")
        seeds = g.index.intersection(base.index)
        cells = [str(q), f"{g.rms.iloc[0]:.1f}", str(len(g))]
        cells += [mean_sd(g[c]) for c in ("train_clean", "val", "test")]
        for col in ("test", "val"):
            diff = t_interval(g.loc[seeds, col], base.loc[seeds, col])
            cells += ["(baseline)" if q == BASE else diff]
        cells += [mean_sd(g.test_on_q75)] if cross else []
        md.append("| " + " | ".join(cells) + " |")
    x, y = df.rms.to_numpy(), df.test.to_numpy()
    x0 = trees[str(BASE)]["median_rms_255"]
    md += ["", "Lines through (error, accuracy), extended to zero error:", ""]
    md += ["| accuracy | runs | linear in | accuracy % at 0 error [95% t] | "
           "quality 75 − 0 error (the copy's cost) |", "|---|---|---|---:|---:|"]  # fmt: skip
    md += fit_rows(df, x0, "test") + fit_rows(df, x0, "val")
    md += ["", "Accuracy % on the augmented training batches (mean over seeds):", ""]
    md += fit_speed(df)
    (HERE / "dose.md").write_text("\n".join(md) + "\n")
    write_between_markers(HERE / "README.md", "dose-table", "\n".join(md))  # numbers = records
    print("\n".join(md))

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100, constrained_layout=True)
    ax.scatter(x, y, label="test acc, own test images (one run each)", zorder=3)
    if cross:
        ax.scatter(x, df.test_on_q75, marker="x", label="same nets on the quality-75 test images")
    grid = np.linspace(0, x.max() * 1.05, 60)
    near = df[df.rms <= LOCAL_MAX_RMS]
    for power, style in ((1, "--"), (2, ":")):
        coef, _, _ = line(near.rms.to_numpy() ** power, near.test.to_numpy())
        label = (
            f"line in {'RMS' if power == 1 else 'squared error'} through trees ≤ {LOCAL_MAX_RMS}"
        )
        ax.plot(grid, coef[0] + coef[1] * grid**power, style, color="grey", label=label)
    for q, t in trees.items():
        ax.annotate(f"q{q}", (t["median_rms_255"], y.min()), textcoords="offset points",
                    xytext=(0, -22), ha="center", fontsize=7, rotation=90)  # fmt: skip
    ax.set_xlabel("median RMS error from the original pixels (/255)")
    ax.set_ylabel("test accuracy %")
    ax.set_title("ResNet-14 BN, 15 epochs, full CIFAR-10 at JPEG qualities", fontsize=10)
    ax.legend(fontsize=8)
    fig.savefig(HERE / "dose_response.png")


if __name__ == "__main__":
    main()
