"""Which bfloat16 path this CPU runs, and whether `trainer.precision=bf16-mixed` pays off on it.

Under `torch.autocast("cpu", dtype=torch.bfloat16)` the convolutions and matmuls run in oneDNN's
bfloat16 kernels. Their speed depends on the CPU's bfloat16 instructions:

- `amx`: Intel AMX tiles (`amx_bf16` in /proc/cpuinfo; Xeon Sapphire Rapids and later) —
  matrix units, the fastest path (2-core Xeon: a compiled ResNet-14 epoch 1.9x faster than
  float32, 22 s vs 43 s; experiments/benchmarks/README.md, "On a 2-core AMX Xeon");
- `avx512_bf16`: AVX-512 BF16 dot products (`avx512_bf16`; AMD Zen 4+, Intel Cooper Lake) —
  also faster than float32 (measured here, see experiments/benchmarks/README.md);
- `none`: neither — oneDNN emulates bfloat16 with float32 arithmetic plus conversions, so bf16
  is no faster than float32 (usually slower) and only costs precision.

`bf16_path()` asks torch first (`torch.cpu._is_amx_tile_supported` and friends, which also see
what the OS enables) and falls back to the flags in /proc/cpuinfo.
"""

from __future__ import annotations

from pathlib import Path

import torch

PATHS = ("amx", "avx512_bf16", "none")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags (the first `flags` line of /proc/cpuinfo); empty if unreadable."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def _torch_says(name: str) -> bool | None:
    check = getattr(torch.cpu, name, None)
    try:
        return bool(check()) if check is not None else None
    except Exception:  # noqa: BLE001 - a private helper; fall back to /proc/cpuinfo
        return None


def bf16_path(flags: set[str] | None = None) -> str:
    """The bfloat16 path ("amx", "avx512_bf16" or "none") oneDNN takes on this CPU.

    `flags` (a set of /proc/cpuinfo flags) decides alone when given (tests); otherwise torch's
    own checks decide where available, and /proc/cpuinfo where not.
    """
    if flags is None:
        amx, avx = _torch_says("_is_amx_tile_supported"), _torch_says("_is_avx512_bf16_supported")
        if amx is not None and avx is not None:
            return "amx" if amx else "avx512_bf16" if avx else "none"
        flags = cpu_flags()
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    return "none"


def bf16_message(path: str) -> str:
    """One line saying what bf16 autocast does on a CPU with `path` (see `bf16_path`)."""
    if path == "amx":
        return "CPU bf16: AMX tiles (amx_bf16) run bf16 autocast; bf16-mixed is the fast setting."
    if path == "avx512_bf16":
        return (
            "CPU bf16: AVX-512 BF16 (avx512_bf16, no AMX) runs bf16 autocast; bf16-mixed is "
            "faster than 32-true here (see experiments/benchmarks/README.md)."
        )
    return (
        "CPU bf16: this CPU has neither AMX (amx_bf16) nor AVX-512 BF16 (avx512_bf16); bf16 "
        "autocast is emulated in float32 and will not pay off here: use trainer=cpu (32-true)."
    )


def precision_note(trainer_cfg) -> str | None:
    """The `bf16_message` for a run that trains in bf16 on the CPU, else None.

    `trainer_cfg` is the `trainer` config node (or a mapping): `precision` and `accelerator`.
    """
    precision = str(trainer_cfg.get("precision", ""))
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if not (precision.startswith("bf16") and on_cpu):
        return None
    return bf16_message(bf16_path())
