"""DDP under Hydra: one run dir per job, however many processes, single run or sweep.

Lightning's DDP launcher (`_SubprocessScriptLauncher`) starts ranks 1..N-1 by running this
script again with the parent's argv plus `hydra.run.dir=<hydra.run.dir>`. That is right for a
single run, but in a `--multirun` argv still says `--multirun norm=bn,gn`: every child would run
the whole sweep again, into a stray sweep dir (lightning-hydra-template #393/#226/#90), and the
overrides a sweeper chose itself (Optuna's lr) are not in argv at all. So the parent job puts its
job (run dir and its own overrides) in the environment, which the children inherit, and a child
replaces its argv with exactly that job: one run, in the parent job's dir, Hydra writing nothing
there (`hydra.output_subdir=null`).

A sweep runs its jobs one after another in one process, and Lightning leaves the first job's DDP
variables (LOCAL_RANK, WORLD_SIZE, ...) in the environment: with LOCAL_RANK set the next job would
believe its processes were started externally and wait for ranks that never come. Each job
therefore starts from the process's original DDP environment and a destroyed process group.
"""

from __future__ import annotations

import json
import os
import re

JOB_ENV = "NORMRES_DDP_JOB"
#: What Lightning's launcher sets in the parent's environment for its children.
_DDP_ENV = ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_ORIGINAL_ENV = {key: os.environ.get(key) for key in _DDP_ENV}
# Characters a Hydra override value may hold unquoted (anything else is quoted).
_PLAIN = re.compile(r"^[\w./:+\-@]+$")


def is_ddp_child() -> bool:
    """True in a DDP process of rank > 0 (started by Lightning, torchrun or SLURM): it trains,
    but the run dir's records (lock, config, results, train.log) belong to rank 0."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(key)
        if value is not None and value.strip().isdigit():
            return int(value) > 0
    return False


def _quote(value: str) -> str:
    if _PLAIN.match(value):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def child_argv(argv: list[str]) -> list[str]:
    """The argv a Lightning DDP child should run: its parent job's, if the parent published one
    (else `argv` unchanged, e.g. a child of a script that does not use this module)."""
    job = os.environ.get(JOB_ENV)
    if not job or os.environ.get("LOCAL_RANK", "0") == "0":
        return argv
    record = json.loads(job)
    return [
        argv[0],
        *record["overrides"],
        f"hydra.run.dir={_quote(record['run_dir'])}",
        "hydra.output_subdir=null",
    ]


def start_job(run_dir: str, overrides: list[str]) -> None:
    """In the job's main process, before Lightning launches anything: a clean DDP environment
    and this job published for the children Lightning may start."""
    if is_ddp_child():
        return
    for key, value in _ORIGINAL_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    os.environ[JOB_ENV] = json.dumps({"run_dir": str(run_dir), "overrides": list(overrides)})


def end_job() -> None:
    """Tear down the job's process group, so the next job of a sweep creates its own."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
