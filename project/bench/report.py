"""The benchmark's output: one CSV (all rows) and one markdown file (a table per part).

Each part's rows name their own measured columns (`scratch_ms`/`torch_ms` for layer and model,
`lightning_ms`/`bare_ms` for framework, `pipeline_img_s`/`model_img_s` for data); the CSV holds
the union, blank where a part has no such column, with `ratio` and `note` last.
"""

from __future__ import annotations

import csv
from pathlib import Path

LAST = ("ratio", "note")
TITLES = {
    "layer": "Layer: scratch norm vs torch",
    "model": "Model step: ResNet training step",
    "layout": "Layout: the scratch ResNet's training step, channels_last vs NCHW",
    "framework": "Framework: one training epoch, Lightning (`project.train`) vs a bare loop",
    "data": "Data: input pipeline vs model training throughput",
}
SCRATCH_VS_TORCH = (
    "ratio = scratch time / torch time (median over repeats; < 1 is faster), both in the "
    "row's precision (bf16/fp16: under autocast) and layout. With --compile both sides are "
    "compiled, and ratio_vs_eager = compiled scratch / torch uncompiled (its layers as they "
    "ship), timed in the same interleaved rounds. Model part: ratio_vs_torch_bn = scratch / "
    "torch's BatchNorm net (same conv weights, same rounds; compiled too with --compile)."
)
RATIOS = {
    "layer": SCRATCH_VS_TORCH,
    "model": SCRATCH_VS_TORCH,
    "layout": "ratio = channels_last time / NCHW time (same model and batch, interleaved; > 1: "
    "channels_last=true makes training slower).",
    "framework": "ratio = Lightning epoch time / bare-loop epoch time (median over each Lightning "
    "epoch after the warm-up vs the bare epochs just before and after it; 1 = no overhead).",
    "data": "ratio = pipeline img/s / model img/s (medians over repeats; higher is better: at "
    ">= 5 the input pipeline cannot hold training back much).",
}


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def columns(rows: list[dict]) -> list[str]:
    """Every key of `rows` in order of first appearance, with `ratio` and `note` last."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return [k for k in keys if k not in LAST] + [k for k in LAST if k in keys]


def markdown(rows: list[dict], meta: dict) -> str:
    """The rows as markdown: a header naming the run, then one table per part."""
    lines = ["# Benchmark: `python -m project.bench`", ""]
    lines += [f"- {k}: `{v}`" for k, v in meta.items()]
    for part in dict.fromkeys(r["part"] for r in rows):
        part_rows = [r for r in rows if r["part"] == part]
        cols = [c for c in columns(part_rows) if c != "part"]
        lines += ["", f"## {TITLES.get(part, part)}", ""]
        if part in RATIOS:
            lines += [RATIOS[part], ""]
        lines.append("| " + " | ".join(cols) + " |")
        numeric = [isinstance(part_rows[0].get(c), (int, float)) for c in cols]
        lines.append("|" + "|".join("---:" if num else "---" for num in numeric) + "|")
        for r in part_rows:
            lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_tables(rows: list[dict], meta: dict, out: Path) -> str:
    """Write `bench.csv` and `bench.md` under `out`; return the markdown (for printing)."""
    out.mkdir(parents=True, exist_ok=True)
    fields = columns(rows)
    with open(out / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({c: _fmt(r.get(c, "")) for c in fields})
    text = markdown(rows, meta)
    (out / "bench.md").write_text(text)
    return text
