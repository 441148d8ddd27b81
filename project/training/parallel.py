"""Torch threads per job, so that parallel jobs do not fight over the cores.

torch uses every core of the machine in each process by default. With `hydra/launcher=joblib`
(n_jobs processes on one machine) that is n_jobs x cores threads on cores cores: every job gets
slower than if it ran alone. So a job takes `threads` when set, else its share of the cores
(cores // n_jobs) under joblib, and `cpus_per_task` under submitit when the launcher sets it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (containers, taskset)
    except AttributeError:
        return os.cpu_count() or 1


def parallel_jobs(n_jobs: int | None, cores: int) -> int:
    """joblib's meaning of n_jobs: -1 all cores, -2 all but one, ..., None one."""
    if n_jobs is None or n_jobs == 0:
        return 1
    return max(1, cores + 1 + n_jobs) if n_jobs < 0 else n_jobs


def threads_per_job(threads: int | None, launcher: Mapping, cores: int | None = None) -> int | None:
    """The torch thread count of a job (None: leave torch's default)."""
    if threads:
        return int(threads)
    cores = cores or _cores()
    target = str(launcher.get("_target_") or "")
    if target.endswith("JoblibLauncher"):
        return max(1, cores // parallel_jobs(launcher.get("n_jobs"), cores))
    if "submitit_launcher" in target and launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    return None


def configure_threads(threads: int | None, launcher: Mapping) -> None:
    """Apply `threads_per_job` to torch in this (job) process and say so when it is not the
    default."""
    count = threads_per_job(threads, launcher)
    if count is None:
        return
    import torch

    torch.set_num_threads(count)
    print(f"[normres] torch threads per job: {count} ({_cores()} cores)")
