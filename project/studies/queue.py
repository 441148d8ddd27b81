"""A queue of training runs that survives being stopped: what the full-scale studies run through.

Each queued run has a study, a name and the overrides of `python -m project.train`. It trains in
`<work>/<study>/<name>` (git-ignored) and, once finished, its record — results.json, config.yaml,
csv/metrics.csv and test_predictions.npz, small text/array files, no checkpoints — is copied to
`experiments/<study>/runs/<name>/` (committed, optionally right away with `commit=True`). So:

- a run whose record exists is skipped (the queue can be stopped and continued any time), but
  only if the record was made with the same overrides: a queue continued later with another recipe
  (epochs, schedule, precision) stops with a message instead of mixing two recipes in one table;
- a run that finished in its work dir but has no record yet (the queue was stopped between the
  two) gets its record copied, without training again;
- a run whose work dir holds a checkpoint continues from it (`resume=true`);
- any other run starts from scratch in a fresh work dir.

Each finished run whose validation accuracy is its variant's best so far also has its weights
exported to `experiments/<study>/weights/<variant>.pt` (`project.studies.weights`).

The report reads the committed records directly:
`python -m project.report experiments/<study>/runs`.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from project.errors import UserError, report_error
from project.results import (
    RESULTS_FILE,
    TEST_PREDICTIONS,
    affects_result,
    override_key,
    read_results,
)
from project.studies.weights import keep_if_best

#: The files of a run that make its record (relative to the run dir).
RECORD_FILES = (RESULTS_FILE, "config.yaml", "csv/metrics.csv", TEST_PREDICTIONS)
LAST_CKPT = Path("checkpoints") / "last.ckpt"
#: Statuses that end a run for good (an interrupted or failed run is tried again).
FINAL_STATUSES = ("completed", "diverged")


@dataclass(frozen=True)
class QueuedRun:
    study: str
    name: str
    overrides: tuple[str, ...] = field(default_factory=tuple)


def record_dir(records: Path, run: QueuedRun) -> Path:
    return Path(records) / run.study / "runs" / run.name


def work_dir(work: Path, run: QueuedRun) -> Path:
    return Path(work) / run.study / run.name


def recipe(overrides: Sequence[str]) -> dict[str, str]:
    """{key: value} of the overrides that define a run's result, the last one winning as in Hydra
    (`resume=...` or the logging cadence only say how it was reached: `affects_result`)."""
    pairs = (o.partition("=") for o in overrides)
    return {key: value for key, _, value in pairs if affects_result(override_key(key))}


def _final_with_recipe(results: dict | None, run: QueuedRun, legacy: bool = False) -> bool:
    """Finished (completed or diverged) with the run's overrides; `legacy`: a record without
    overrides (written before they were recorded) counts as matching."""
    if results is None or results.get("status") not in FINAL_STATUSES:
        return False
    overrides = results.get("overrides")
    if overrides is None:
        return legacy
    return recipe(overrides) == recipe(run.overrides)


def next_action(run: QueuedRun, records: Path, work: Path) -> str:
    """`skip` (record committed), `conflict` (a record made with other overrides), `record`
    (finished in the work dir, record not copied yet), `resume` (work dir has a checkpoint) or
    `start`."""
    record = read_results(record_dir(records, run))
    if record is not None and record.get("status") in FINAL_STATUSES:
        return "skip" if _final_with_recipe(record, run, legacy=True) else "conflict"
    finished = read_results(work_dir(work, run))
    if _final_with_recipe(finished, run):
        return "record"
    return "resume" if (work_dir(work, run) / LAST_CKPT).is_file() else "start"


def save_record(run_dir: Path, dest: Path) -> list[Path]:
    """Copy the run's record files into `dest`; returns the copied paths."""
    copied = []
    for name in RECORD_FILES:
        src = Path(run_dir) / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            copied.append(target)
    return copied


def train_command(run: QueuedRun, run_dir: Path, resume: bool, python: str) -> list[str]:
    args = [python, "-m", "project.train", *run.overrides, f"hydra.run.dir={run_dir}"]
    return args + (["resume=true"] if resume else [])


def _train(command: list[str]) -> int:
    """Run one training to its end; returns its exit code.

    The training runs in its own process group, and a SIGINT or SIGTERM of the queue (Ctrl-C, or
    `kill` of the queue) is passed on to it exactly once: it records itself as interrupted and
    exits 130/143, and the queue stops after it. With `subprocess.run` Ctrl-C reached both, and
    the queue killed the training 0.25 s later, before it could record anything, then died with a
    traceback."""
    proc = subprocess.Popen(command, start_new_session=True)

    def forward(signum: int, frame: object) -> None:
        proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_queue(
    runs: Sequence[QueuedRun],
    records: Path,
    work: Path,
    *,
    dry_run: bool = False,
    commit: bool = False,
    python: str = sys.executable,
) -> dict[str, str]:
    """Work through `runs` in order; returns {study/name: action or final status}."""
    outcome: dict[str, str] = {}
    for i, run in enumerate(runs, 1):
        key = f"{run.study}/{run.name}"
        action = next_action(run, records, work)
        run_dir = work_dir(work, run)
        print(f"[queue] {i}/{len(runs)} {key}: {action}", flush=True)
        if action == "conflict":
            report_error(_conflict_message(run, records))
            outcome[key] = action
            break
        if action == "skip" and not dry_run and run_dir.is_dir():
            # Recorded before weights were kept, or by another queue: its work dir still has the
            # checkpoint, so the variant's best weights can still be chosen.
            kept = keep_if_best(run_dir, records, run.study, run.name)
            if kept and commit:
                _commit(kept, f"{key}: weights (validation-best of its variant so far)")
        if action == "skip" or dry_run:
            outcome[key] = action
            continue
        if action == "start" and run_dir.exists():
            shutil.rmtree(run_dir)  # an earlier attempt without a checkpoint: nothing to keep
        returncode = 0
        if action != "record":
            returncode = _train(train_command(run, run_dir, action == "resume", python))
        status = (read_results(run_dir) or {}).get("status", f"exit code {returncode}")
        outcome[key] = status
        if status in FINAL_STATUSES:
            copied = save_record(run_dir, record_dir(records, run))
            copied += keep_if_best(run_dir, records, run.study, run.name)
            if commit:
                _commit(copied, f"{key}: {status} (record of the finished run)")
        elif returncode in (130, 143):  # interrupted: stop the queue, keep the work dir
            print(f"[queue] interrupted during {key}; run the same command again to continue")
            break
    return outcome


def _conflict_message(run: QueuedRun, records: Path) -> str:
    recorded = recipe(read_results(record_dir(records, run))["overrides"])
    queued = recipe(run.overrides)
    changes = [
        f"{key}: {recorded.get(key, '(unset)')} -> {queued.get(key, '(unset)')}"
        for key in sorted(recorded.keys() | queued.keys())
        if recorded.get(key) != queued.get(key)
    ]
    runs = record_dir(records, run).parent
    return (
        f"The committed record {record_dir(records, run)} was made with other overrides than "
        f"this queue's run {run.study}/{run.name} (recorded -> queued: {'; '.join(changes)}), "
        "so the study would mix two recipes in one table. Continue with the recorded recipe "
        "(the same --epochs and overrides after --), or move the old records aside first "
        f"(e.g. `git mv {runs} {runs}_old`) to start the study over with the new one."
    )


def _commit(paths: list[Path], message: str, tries: int = 5) -> None:
    """Commit `paths` (and nothing else) in the repository that holds them, which need not be the
    current directory's (a queue run from a separate worktree commits into the main checkout).
    Retries while another git process holds the index lock (a user committing meanwhile)."""
    files = [str(Path(p).resolve()) for p in paths]
    repo = ["git", "-C", str(Path(files[0]).parent)]
    steps = (["add", "--", *files], ["commit", "-q", "-m", message, "--", *files])
    for attempt in range(tries):
        for step in steps:
            proc = subprocess.run([*repo, *step], capture_output=True, text=True)
            if proc.returncode:
                break
        else:
            return
        error = proc.stderr.strip()
        if "index.lock" not in error or attempt == tries - 1:
            raise UserError(f"git could not commit the record {files[0]}: {error}")
        time.sleep(2)
