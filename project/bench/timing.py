"""Interleaved median timing: both sides of a comparison measured in turn, in the same process.

Timing A for a while and then B for a while lets slow drift (CPU frequency, other processes,
allocator state) bias the ratio. Here every repeat runs each candidate once, in rotating order,
so drift hits both sides alike; the median over repeats discards the occasional outlier.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

# wall: elapsed seconds (what a run takes). cpu: CPU seconds of this process, which a shared
# machine's other processes do not inflate by preempting it (with --threads 1 they are the
# single thread's busy time; with more threads, OpenMP's spin-waiting counts too).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]

# Autocast dtypes: fp32 means no autocast.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def set_clock(name: str) -> None:
    """Time every following measurement with `CLOCKS[name]`."""
    global _clock
    _clock = CLOCKS[name]


def autocast(device: torch.device, precision: str):
    """`torch.autocast` for `precision` ("bf16", "fp16") on `device`; a no-op for "fp32"."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def setup_threads(threads: int | None) -> int:
    """Pin torch's intra-op thread count (default: the machine's cores) and return it.

    torch may otherwise pick a different count per process (or oversubscribe under a test
    runner), and a ratio measured at 1 thread says little about 2.
    """
    if not threads:
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        threads = len(cores) if cores else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 2,
    inner: int = 1,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Median seconds per call of each function in `fns`, measured interleaved.

    Each function first runs `warmup` times (allocator, caches, lazy init, compilation). Then
    `repeats` rounds each time every function `inner` back-to-back calls; the order rotates per
    round so that no side always runs first (or right after the other).
    """
    device = torch.device(device)
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(1, repeats)):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn = fns[name]
            _sync(device)
            t0 = _clock()
            for _ in range(inner):
                fn()
            _sync(device)
            samples[name].append((_clock() - t0) / inner)
    return {name: statistics.median(s) for name, s in samples.items()}


def print_row(row: dict) -> None:
    """Progress line for one measured comparison (a full run takes minutes)."""
    values = "  ".join(
        f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
        for key, value in row.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    )
    print(
        f"  {row['part']:5s} {row['norm']:4s} {row['shape']:16s} {row['mode']:10s} {values}",
        flush=True,
    )


def compile_all(
    modules: dict[str, nn.Module],
    warm: Callable[[nn.Module], object],
    mode: str | None = None,
) -> tuple[dict[str, nn.Module], str]:
    """`torch.compile` every module of a comparison (in `mode`, e.g. "reduce-overhead" for CUDA
    graphs); returns them under the same names, and a note.

    `warm(module)` runs every variant that will be timed, so compilation happens here, outside
    the timed loop, and a toolchain failure surfaces here (the eager modules come back, with
    the note saying so) rather than mid-measurement. Dynamo's caches are reset first: modules
    of one class share compiled code, and past the recompile limit torch silently falls back
    to eager, which would time eager code under a "compiled" label.
    """
    torch._dynamo.reset()
    try:
        compiled = {name: torch.compile(m, mode=mode) for name, m in modules.items()}
        for module in compiled.values():
            warm(module)
    except Exception as e:  # noqa: BLE001 - compile support depends on the toolchain
        return modules, f"compile failed: {type(e).__name__}"
    return compiled, ""


def sides_to_time(
    scratch: nn.Module,
    ref: nn.Module,
    warm: Callable[[nn.Module], object],
    eager_ref: nn.Module | None,
    mode: str | None = None,
    others: dict[str, nn.Module] | None = None,
) -> tuple[dict[str, nn.Module], str]:
    """The modules one comparison times, by name, and the suffix for its `timed` label.

    `eager_ref` None: scratch, torch and `others` (e.g. torch's BN net) as they are. Otherwise
    (--compile) all of them are compiled together (`compile_all`) and `eager_ref`, torch's
    counterpart left uncompiled (torch as it ships), is timed too as "torch_eager"; if
    compiling failed, the eager modules and a note saying so.
    """
    sides = {"scratch": scratch, "torch": ref, **(others or {})}
    if eager_ref is None:
        return sides, ""
    compiled, note = compile_all(sides, warm, mode)
    if note:
        return sides, f" ({note})"
    return {**compiled, "torch_eager": eager_ref}, " compiled"


def timings_and_ratios(t: dict[str, float]) -> dict[str, float]:
    """Row columns from `interleaved_medians` of scratch, torch (and torch_eager, with
    --compile; torch_bn, torch's BatchNorm net, in the model part): milliseconds each, `ratio`
    = scratch / torch, `ratio_vs_eager` = scratch / torch_eager (the compiled scratch layer
    against torch's as it ships), `ratio_vs_torch_bn` = scratch / torch_bn."""
    row = {f"{name}_ms": 1e3 * seconds for name, seconds in t.items()}
    if "torch_eager" in t:
        row["ratio_vs_eager"] = t["scratch"] / t["torch_eager"]
    if "torch_bn" in t:
        row["ratio_vs_torch_bn"] = t["scratch"] / t["torch_bn"]
    row["ratio"] = t["scratch"] / t["torch"]
    return row
