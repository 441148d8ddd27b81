"""Hydra callback: after a sweep, say which runs did not complete and exit non-zero if any failed.

Each job of a `--multirun` catches its own errors (recording `status: "failed"` in its
results.json) so that one bad job never stops the others; this callback turns those records into
the sweep's exit code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hydra.experimental.callback import Callback


class SweepStatus(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        statuses = {}
        for results in sorted(sweep_dir.glob("*/results.json")):
            try:
                statuses[results.parent.name] = json.loads(results.read_text())["status"]
            except (OSError, ValueError, KeyError):
                statuses[results.parent.name] = "unreadable"
        counts = {s: list(statuses.values()).count(s) for s in sorted(set(statuses.values()))}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no results"
        print(
            f"[normres] sweep {sweep_dir}: {summary}. Report: python -m project.report {sweep_dir}"
        )
        failed = [job for job, s in statuses.items() if s in ("failed", "unreadable")]
        if failed:
            print(f"[normres] failed jobs: {', '.join(failed)} (see their results.json)")
            sys.exit(1)
