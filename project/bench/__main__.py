"""`python -m project.bench`: what the from-scratch layers and the framework cost, as ratios.

Parts: `layer` (each scratch norm vs torch's), `model` (a ResNet training step, scratch vs
torch layers), `layout` (the scratch ResNet's training step, channels_last vs NCHW),
`framework` (a training epoch of `project.train`'s Lightning loop vs a bare PyTorch loop),
`data` (input-pipeline images/s vs model training images/s, at batch 8 and 128).
One run measures the chosen parts, prints the table and writes it to `--out` as `bench.csv` and
`bench.md`. Every ratio is a ratio of medians over `--repeats` rounds after warm-up, both sides
timed interleaved in this one process; each part's table says which way round. Examples:

    python -m project.bench                       # all parts, batch 128, ResNet-14
    python -m project.bench --parts model --channels-last --compile
    python -m project.bench --parts layer,model --precision fp32,bf16 --layouts nchw,channels_last \
        --batch-size 128,8                        # every precision x layout x batch size
    python -m project.bench --parts framework,data --data ../shared/data/cifar10-mini
    python -m project.bench --quick --out /tmp/b  # tiny shapes, 1 repeat (the test suite's run)
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import torch

from project.bench.layers import NORMS, QUICK_SHAPES, STAGE_SHAPES, bench_layers
from project.bench.model_step import bench_layout, bench_model_step
from project.bench.report import write_tables
from project.bench.timing import CLOCKS, PRECISIONS, set_clock, setup_threads
from project.errors import UserError
from project.hardware import bf16_path

LAYOUTS = ("nchw", "channels_last")

PARTS = ("layer", "model", "layout", "framework", "data")
DEFAULT_PARTS = "layer,model,framework,data"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m project.bench", description=__doc__.split("\n")[0])
    p.add_argument("--parts", default=DEFAULT_PARTS, help=f"comma list of {', '.join(PARTS)}")
    p.add_argument(
        "--norms",
        default=",".join(NORMS),
        help="comma list of norm kinds (framework and data parts: the first only)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument(
        "--batch-size",
        default="128",
        help="comma list, e.g. 128,8 (layer, model, layout parts; framework: the first; the data "
        "part: always 8 and 128)",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        help=f"comma list of {', '.join(PRECISIONS)} (layer and model parts): fp32 plain, "
        "bf16/fp16 under torch.autocast (the norms then get bf16/fp16 inputs)",
    )
    p.add_argument(
        "--layouts",
        default=None,
        help=f"comma list of {', '.join(LAYOUTS)} (layer and model parts; default nchw, or "
        "channels_last with --channels-last)",
    )
    p.add_argument(
        "--clock",
        default="wall",
        choices=list(CLOCKS),
        help="wall: elapsed time; cpu: this process's CPU time, which other processes on a "
        "shared machine do not inflate (use with --threads 1)",
    )
    p.add_argument("--n", type=int, default=2, help="ResNet blocks per stage (depth 6n+2)")
    p.add_argument("--repeats", type=int, default=15, help="timed rounds per comparison")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: cores)")
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="channels_last memory format (= --layouts channels_last)",
    )
    p.add_argument(
        "--compile",
        nargs="?",
        const=True,
        default=False,
        metavar="MODE",
        help="torch.compile both sides (layer, model and layout parts); optionally in a "
        "torch.compile mode, e.g. `--compile reduce-overhead` (CUDA graphs)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="ImageFolder root for the framework and data parts (default: "
        "../shared/data/cifar10-mini if present, else synthetic images)",
    )
    p.add_argument("--quick", action="store_true", help="tiny shapes, 1 repeat (smoke test)")
    p.add_argument("--out", default="outputs/bench", help="folder for bench.csv and bench.md")
    args = p.parse_args(argv)
    args.parts = _comma_list(args.parts)
    args.norms = _comma_list(args.norms)
    args.precision = _comma_list(args.precision)
    layouts = args.layouts or ("channels_last" if args.channels_last else "nchw")
    args.layouts = _comma_list(layouts)
    for flag, what, values, valid in [
        ("--parts", "part", args.parts, PARTS),
        ("--precision", "precision", args.precision, tuple(PRECISIONS)),
        ("--layouts", "layout", args.layouts, LAYOUTS),
    ]:
        for value in values:
            if value not in valid:
                p.error(f"{flag}: unknown {what} {value!r}; valid: {', '.join(valid)}")
        if not values:
            p.error(f"{flag} is empty")
    try:
        args.batch_sizes = [int(b) for b in _comma_list(args.batch_size)]
    except ValueError:
        p.error(f"--batch-size must be integers, e.g. 128,8; got {args.batch_size!r}")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        p.error("--batch-size must be >= 1")
    args.batch_size = args.batch_sizes[0]
    for name in ("n", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if not args.norms:
        p.error("--norms is empty; e.g. --norms bn,gn")
    for kind in args.norms:
        if kind not in NORMS:
            p.error(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")
    return args


def _comma_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit code (2: a mistake in the arguments)."""
    args = parse_args(argv)
    try:
        return run(args, argv)
    except Exception as err:
        # A UserError, or one that hydra.utils.instantiate wrapped (e.g. a bad data folder).
        cause = err
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        print(f"[bench] error: {cause}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Measure the parts in `args`, write and print the tables."""
    data = None
    if {"framework", "data"} & set(args.parts):
        # Imported here: Lightning and Hydra take seconds to import, the other parts need neither.
        from project.bench.data_pipeline import bench_data
        from project.bench.framework import bench_framework
        from project.bench.runconfig import data_choice

        # Checked first: a bad --data must not surface after minutes of other parts.
        data = data_choice(args.data, args.quick)
    threads = setup_threads(args.threads)
    set_clock(args.clock)
    device = torch.device(args.device)
    quick = args.quick
    batch = 8 if quick else args.batch_size
    batches = [8] if quick else args.batch_sizes
    repeats = 1 if quick else args.repeats
    # layer and model parts: every batch size x precision x layout
    grid = list(itertools.product(batches, args.precision, args.layouts))
    meta = {
        "command": "python -m project.bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "torch": torch.__version__,
        "device": args.device,
        "cpu": cpu_model(),
        "cpu_bf16_path": bf16_path(),
        "threads": threads,
        "clock": args.clock,
        "precision": ",".join(args.precision),
        "layouts": ",".join(args.layouts),
        "batch_sizes": ",".join(map(str, batches)),
        "compile": args.compile,
        "loadavg_start": _loadavg(),
    }
    print(" | ".join(f"{k}: {v}" for k, v in meta.items()), flush=True)
    rows: list[dict] = []
    t0 = time.perf_counter()
    for part in args.parts:
        if part == "layer":
            for b, precision, layout in grid:
                rows += bench_layers(
                    b,
                    repeats,
                    device,
                    shapes=QUICK_SHAPES if quick else STAGE_SHAPES,
                    norms=args.norms,
                    channels_last=layout == "channels_last",
                    compile_layers=args.compile,
                    warmup=1 if quick else 3,
                    inner=1 if quick else 5,
                    precision=precision,
                )
        elif part == "model":
            for b, precision, layout in grid:
                rows += bench_model_step(
                    1 if quick else args.n,
                    b,
                    repeats,
                    device,
                    norms=args.norms,
                    channels_last=layout == "channels_last",
                    compile_model=args.compile,
                    image_size=16 if quick else 32,
                    warmup=1 if quick else 2,
                    precision=precision,
                )
        elif part == "layout":
            for b, precision in itertools.product(batches, args.precision):
                rows += bench_layout(
                    1 if quick else args.n,
                    b,
                    repeats,
                    device,
                    norms=args.norms,
                    image_size=16 if quick else 32,
                    warmup=1 if quick else 2,
                    precision=precision,
                    compile_model=args.compile,
                )
        elif part == "framework":
            rows += bench_framework(
                data, 1 if quick else args.n, batch, repeats, device, norm=args.norms[0]
            )
        elif part == "data":
            rows += bench_data(
                data, 1 if quick else args.n, repeats, device, norm=args.norms[0], quick=quick
            )
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    meta["loadavg_end"] = _loadavg()
    print(write_tables(rows, meta, Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
