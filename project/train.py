"""Train one variant: `python -m project.train [group=option ...] [key=value ...]`.

    python -m project.train norm=gn batch_size=8
    python -m project.train --multirun norm=bn,in,bin,ln,gn,none
    python -m project.train data=synthetic trainer.max_epochs=2          # offline, seconds
    python -m project.train data=folder data.root=../shared/data/cifar10-mini

A mistake in the config or the data stops the run with one paragraph saying what is wrong and
how to fix it (exit code 2). In a `--multirun`, a failing job is recorded in its results.json
(`status: "failed"`) and the sweep goes on; the sweep exits non-zero at the end.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from project.errors import UserError
from project.training.resolvers import register as register_resolvers

register_resolvers()


def report_error(message: str) -> None:
    print("\n" + textwrap.fill(f"[normres] error: {message}", width=100), file=sys.stderr)


def find_user_error(err: BaseException) -> UserError | None:
    """The UserError behind `err`, if any (hydra.utils.instantiate wraps what a target raises)."""
    while err is not None:
        if isinstance(err, UserError):
            return err
        err = err.__cause__ or err.__context__
    return None


def run_job(cfg: DictConfig) -> int:
    """Run one job; never raise. Returns the exit code (0 ok, 1 crashed, 2 user error)."""
    from project.training.results import write_results
    from project.training.validation import validate_config

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    print(OmegaConf.to_yaml(cfg, resolve=False))
    try:
        validate_config(cfg)  # config mistakes stop here, in a second: Lightning is not loaded yet
        from project.hardware import precision_note

        if note := precision_note(cfg.trainer):  # bf16 on the CPU: which path runs, does it pay
            print(f"[normres] {note}")
        from project.training.run import train

        train(cfg, run_dir)
        return 0
    except SystemExit as err:  # Lightning's SIGTERMException is a SystemExit
        if type(err).__name__ != "SIGTERMException":
            raise
        report_error(
            f"interrupted by SIGTERM. Continue with: python -m project.train <same "
            f"overrides> resume=true hydra.run.dir={run_dir}"
        )
        return 143  # 128 + SIGTERM, as a shell reports it
    except Exception as err:  # record it, so a sweep's other jobs and the report go on
        user_error = find_user_error(err)
        if user_error is not None:
            code, message, detail = 2, str(user_error), None
        else:
            code, message = 1, f"{type(err).__name__}: {err}"
            detail = traceback.format_exc()
    report_error(message)
    try:
        write_results(run_dir, cfg, "failed", error=message)
        if detail:
            (run_dir / "error.log").write_text(detail)
            print(f"[normres] full traceback in {run_dir / 'error.log'}", file=sys.stderr)
    except Exception as err:  # e.g. an unwritable output dir: say so, do not mask the error
        report_error(f"could not write results.json in {run_dir} ({err}).")
    return code


def check_output_dir(argv: list[str]) -> None:
    """Fail early, in one paragraph, when the run/sweep dir cannot be written (Hydra would
    otherwise die with a traceback while creating it)."""
    targets = [Path(".")]  # the default outputs/ and multirun/ live in the working directory
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+") in ("hydra.run.dir", "hydra.sweep.dir") and "${" not in value:
            targets = [Path(value)]
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    code = run_job(cfg)
    if code and HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(code)


if __name__ == "__main__":
    check_output_dir(sys.argv[1:])
    main()
