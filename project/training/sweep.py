"""Hydra callback: one line per finished job ("k of N done"); after a sweep, count its jobs by
status and exit non-zero if any failed.

Each job of a `--multirun` catches its own errors (recording `status: "failed"` in its
results.json) so that one bad job never stops the others; this callback turns those records into
the sweep's exit code. A job dir without a readable results.json (Hydra writes `.hydra/` into
every job dir it starts) counts as failed too: a job that crashed before it could record anything
is not a success.

Jobs may run in other processes (joblib, submitit) or on other machines (SLURM), so the progress
count is read from the sweep dir (job dirs holding a results.json), and the number of jobs the
sweep plans is written there by `on_multirun_start` (`.normres_sweep.json`).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode

from project.results import FAILED_STATUSES, read_results

NO_RESULTS = "no results.json"
PLAN_FILE = ".normres_sweep.json"


def job_statuses(sweep_dir: Path) -> dict[str, str]:
    """{job dir name: status} for every job Hydra started under `sweep_dir`."""
    job_dirs = {p.parent for p in sweep_dir.glob("*/.hydra")}
    job_dirs |= {p.parent for p in sweep_dir.glob("*/results.json")}
    statuses = {}
    for job_dir in sorted(job_dirs, key=lambda p: (len(p.name), p.name)):
        record = read_results(job_dir)
        statuses[job_dir.name] = str(record.get("status")) if record else NO_RESULTS
    return statuses


def planned_jobs(hydra_cfg) -> int | None:
    """How many jobs the sweep will run: Optuna's n_trials, or the product of the sweep lists
    (command line and `hydra.sweeper.params`) for the basic sweeper; None if unknown."""
    sweeper = hydra_cfg.sweeper
    if "optuna" in str(sweeper.get("_target_", "")).lower():
        return int(sweeper.n_trials)
    params = {k: str(v) for k, v in (sweeper.get("params") or {}).items()}
    for override in hydra_cfg.overrides.task:  # the command line wins over the config's params
        key, _, value = override.partition("=")
        params[key] = value
    try:
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
        sizes = [len(list(o.sweep_string_iterator())) for o in parsed if o.is_sweep_override()]
    except Exception:  # a sweep syntax only another sweeper understands
        return None
    return math.prod(sizes)


def finished_jobs(sweep_dir: Path) -> int:
    return len(list(sweep_dir.glob("*/results.json")))


class SweepStatus(Callback):
    def on_multirun_start(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PLAN_FILE).write_text(json.dumps({"jobs": planned_jobs(config.hydra)}))

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            total = json.loads((sweep_dir / PLAN_FILE).read_text())["jobs"]
        except (OSError, ValueError, KeyError):
            total = None
        record = read_results(Path(config.hydra.runtime.output_dir)) or {}
        status = record.get("status", NO_RESULTS)
        done = finished_jobs(sweep_dir)
        overrides = " ".join(config.hydra.overrides.task)
        of = f" of {total}" if total else ""
        print(f"[normres] job {config.hydra.job.num} ({overrides}) {status}: {done}{of} done")

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        statuses = job_statuses(sweep_dir)
        values = list(statuses.values())
        counts = {s: values.count(s) for s in sorted(set(values))}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no jobs"
        print(
            f"[normres] sweep {sweep_dir}: {len(values)} jobs: {summary}. Report: python -m "
            f"project.report {sweep_dir}"
        )
        failed = [job for job, s in statuses.items() if s in (*FAILED_STATUSES, NO_RESULTS)]
        if failed:
            print(
                f"[normres] failed jobs: {', '.join(failed)} (see their results.json / train.log)"
            )
            sys.exit(1)
