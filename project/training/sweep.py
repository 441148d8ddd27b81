"""Hydra callback: after a sweep, count its jobs by status and exit non-zero if any failed.

Each job of a `--multirun` catches its own errors (recording `status: "failed"` in its
results.json) so that one bad job never stops the others; this callback turns those records into
the sweep's exit code. A job dir without a readable results.json (Hydra writes `.hydra/` into
every job dir it starts) counts as failed too: a job that crashed before it could record anything
is not a success.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from project.results import FAILED_STATUSES, read_results

NO_RESULTS = "no results.json"


def job_statuses(sweep_dir: Path) -> dict[str, str]:
    """{job dir name: status} for every job Hydra started under `sweep_dir`."""
    job_dirs = {p.parent for p in sweep_dir.glob("*/.hydra")}
    job_dirs |= {p.parent for p in sweep_dir.glob("*/results.json")}
    statuses = {}
    for job_dir in sorted(job_dirs, key=lambda p: (len(p.name), p.name)):
        record = read_results(job_dir)
        statuses[job_dir.name] = str(record.get("status")) if record else NO_RESULTS
    return statuses


class SweepStatus(Callback):
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
