"""Train one variant: `python -m project.train [group=option ...] [key=value ...]`.

    python -m project.train norm=gn batch_size=8
    python -m project.train --multirun norm=bn,in,bin,ln,gn,none
    python -m project.train data=synthetic trainer.max_epochs=2          # offline, seconds
    python -m project.train data=folder data.root=../shared/data/cifar10-mini
    normres-train ...                       # the same, as a console script (shell completion)

A mistake in the config or the data stops the run with one paragraph saying what is wrong and
how to fix it (exit code 2). In a `--multirun`, a failing job is recorded in its results.json
(`status: "failed"`) and the sweep goes on; the sweep exits non-zero at the end. Ctrl-C or
SIGTERM records `status: "interrupted"` and prints the command that resumes the run.

`main` returns the run's `optimized_metric` (val/acc of the best checkpoint), which is what a
sweeper such as Optuna (`hparams_search=...`) optimizes; None (a failed trial) if there is none.

The flow (one module per step): validate (training/validation.py) -> claim the run dir
(training/rundir.py, training/resume.py) -> build + fit + evaluate (training/run.py,
training/evaluation.py) -> results.json (project/results.py) -> `python -m project.report`.
"""

from __future__ import annotations

import math
import signal
import sys
import tempfile
import traceback
from contextlib import nullcontext
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from project.errors import RunDirRefused, find_user_error, report_error
from project.results import RESULTS_FILE, read_results
from project.training import ddp_jobs
from project.training.compose import CONF_DIR, task_overrides
from project.training.console import ConsoleLog, print_config_tree
from project.training.parallel import configure_threads
from project.training.resolvers import register as register_resolvers

register_resolvers()

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # 128 + signal number, as a shell reports it


def _raise_interrupted(signum, frame) -> None:
    from project.training.run import Interrupted

    raise Interrupted(signal.Signals(signum).name)


def resume_command(run_dir: Path) -> str:
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith("resume=")]
    return " ".join(
        ["python -m project.train", *overrides, "resume=true", f"hydra.run.dir={run_dir}"]
    )


def run_job(cfg: DictConfig) -> int:
    """Run one job; never raise. Returns the exit code (0 ok, 1 crashed, 2 user error,
    130/143 interrupted)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    child = ddp_jobs.is_ddp_child()  # DDP rank > 0: trains, records nothing (rank 0 does)
    ddp_jobs.start_job(str(run_dir), task_overrides())
    try:
        with ConsoleLog(run_dir, to_file=not child) as console:
            if not child:
                print_config_tree(cfg)
            return _run_job(cfg, run_dir, child, console)
    finally:
        ddp_jobs.end_job()


def _run_job(cfg: DictConfig, run_dir: Path, child: bool, console: ConsoleLog) -> int:
    owned = False  # True once the run dir's record belongs to this attempt
    previous_handlers = {
        s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        from project.training.validation import validate_config

        validate_config(cfg)  # config mistakes stop here, in a second: Lightning is not loaded yet
        from project.hardware import precision_note

        if note := precision_note(cfg.trainer):  # bf16 on the CPU: which path runs, does it pay
            print(f"[normres] {note}")
        configure_threads(cfg.get("threads"), HydraConfig.get().launcher)
        from project.training.run import start_attempt, train
        from project.training.rundir import RunDirLock

        # The run dir is rank 0's: a DDP child must not take (and be refused) its lock.
        with nullcontext() if child else RunDirLock(run_dir):
            datamodule, ckpt_path = start_attempt(cfg, run_dir)
            owned = True
            console.claim()  # train.log from here (what was printed so far included)
            train(cfg, run_dir, datamodule, ckpt_path)
        return 0
    except BaseException as err:
        if type(err).__name__ != "Interrupted" and not isinstance(err, Exception):
            raise  # SystemExit from elsewhere, GeneratorExit, ...
        if type(err).__name__ == "Interrupted":
            report_error(
                f"interrupted by {err.signal_name}; results.json says so. Continue with: "
                f"{resume_command(run_dir)}"
            )
            return EXIT_CODES.get(err.signal_name, 130)
        user_error = find_user_error(err)
        code, message = (2, str(user_error)) if user_error else (1, f"{type(err).__name__}: {err}")
        detail = None if user_error else traceback.format_exc()
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    # Never write into a dir that is not this attempt's (refused, or holding another record).
    refused = isinstance(user_error, RunDirRefused)
    ours = not child and (owned or not (refused or (run_dir / RESULTS_FILE).exists()))
    if ours:
        console.claim()
    report_error(message)
    if ours:
        _record_failure(run_dir, cfg, message, detail)
    return code


def _record_failure(run_dir: Path, cfg: DictConfig, message: str, detail: str | None) -> None:
    from project.results import write_results

    try:
        write_results(run_dir, cfg, "failed", error=message, overrides=task_overrides())
        if detail:
            (run_dir / "error.log").write_text(detail)
            print(f"[normres] full traceback in {run_dir / 'error.log'}", file=sys.stderr)
    except Exception as err:  # e.g. an unwritable output dir: say so, do not mask the error
        report_error(f"could not write results.json in {run_dir} ({err}).")


def _output_dir_overrides(argv: list[str]) -> list[Path]:
    """The hydra.run.dir / hydra.sweep.dir values given on the command line, parsed as Hydra
    parses them (quotes removed, escapes applied); interpolations are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    dirs = []
    for arg in argv:
        key = arg.partition("=")[0].lstrip("+~")
        if arg.startswith("-") or key not in ("hydra.run.dir", "hydra.sweep.dir"):
            continue
        try:
            (override,) = parser.parse_overrides([arg])
            value = override.value()
        except Exception:  # Hydra reports a malformed override itself, in its own words
            continue
        if isinstance(value, str) and "${" not in value:
            dirs.append(Path(value))
    return dirs


def check_output_dir(argv: list[str]) -> None:
    """Fail early, in one paragraph, when the run/sweep dir cannot be written (Hydra would
    otherwise die with a traceback while creating it)."""
    # The default outputs/ and multirun/ live in the working directory.
    targets = _output_dir_overrides(argv)[-1:] or [Path(".")]
    for target in targets:
        try:
            target.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=target):
                pass
        except OSError as err:
            report_error(
                f"cannot write the output directory {str(target)!r} ({err.strerror or err}). "
                f"Runs write their config, checkpoints, metrics and results.json there. Choose a "
                f"writable place, e.g. `hydra.run.dir=outputs/my_run` (or `hydra.sweep.dir=...` "
                f"with --multirun), or run from a directory you can write to."
            )
            sys.exit(2)


def job_metric(run_dir: Path, metric: str) -> float | None:
    """The run's `metric` from its results.json (best checkpoint), None if it has none (a failed
    run, or a NaN): what a sweeper optimizes, and a failed trial to Optuna."""
    record = read_results(run_dir) or {}
    value = (record.get("metrics") or {}).get(metric)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# An absolute path: Hydra resolves a relative one against the calling module, which under a
# console script (`normres-train`) is a package name, where conf/ is not importable.
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> float | None:
    code = run_job(cfg)
    if code in EXIT_CODES.values():
        sys.exit(code)  # an interrupt stops a whole sweep, not just its current job
    if code and HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(code)
    return job_metric(Path(HydraConfig.get().runtime.output_dir), cfg.optimized_metric)


def cli() -> None:
    """`normres-train` and `python -m project.train`."""
    # A DDP child started by Lightning runs its parent's job, not the parent's argv (ddp_jobs).
    sys.argv = ddp_jobs.child_argv(sys.argv)
    if not ddp_jobs.is_ddp_child():
        check_output_dir(sys.argv[1:])
    main()


if __name__ == "__main__":
    cli()
