"""Shared test utilities: run the real CLI on tiny synthetic data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

# A model and data small enough that a full run (fit + final evaluation) takes seconds on 2 cores.
TINY = [
    "data=synthetic",
    "data.train_size=160",
    "data.test_size=64",
    "data.val_size=0.25",
    "model.n=1",
    "model.widths=[8,16,16]",
    "batch_size=32",
    "trainer=cpu",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "logger=csv",
]


# Long enough epochs (80 steps of 16 images) that a test can act in the middle of one.
RESUMABLE = [
    "data.train_size=1600",
    "data.val_size=320",
    "batch_size=16",
    "data.augment=true",
    "deterministic=true",
    "trainer.max_epochs=3",
]


def cli(module: str, *args: str, cwd: Path = REPO, timeout: int = 300, env=None):
    """Run `python -m <module> args...` as a user would; return the CompletedProcess."""
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def train(run_dir: Path, *overrides: str, tiny: bool = True, **kwargs):
    """`python -m project.train` into run_dir; TINY's data keys give way to another `data=`."""
    base = TINY if tiny else []
    if any(o.startswith("data=") for o in overrides):
        base = [a for a in base if not a.startswith("data")]  # train_size etc. are synthetic's
    args = [*base, *overrides, f"hydra.run.dir={run_dir}"]
    return cli("project.train", *args, **kwargs)


def run_main(module, args: list[str], capsys) -> tuple[int, str]:
    """A CLI in-process (no interpreter start-up): compose its Hydra config from `args` and run
    it through the same `run_cli` wrapper as `main()`. Returns (exit code, stdout+stderr)."""
    from hydra import compose, initialize_config_dir

    from project.errors import run_cli

    name = module.__name__.rsplit(".", 1)[-1]  # evaluate | export | predict: config and command
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name=name, overrides=args)
    try:
        run_cli(getattr(module, name), cfg)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def csv_column(run_dir: Path, key: str) -> list[tuple[int, float]]:
    """(step, value) of every row of the run's CSV log that has `key`."""
    import csv

    with open(Path(run_dir) / "csv" / "metrics.csv", newline="") as f:
        return [(int(r["step"]), float(r[key])) for r in csv.DictReader(f) if r.get(key)]


def sweep(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """A sweep of TINY jobs into sweep_dir (`--multirun` or a config in MULTIRUN mode); asserts
    it succeeded."""
    flags = [o for o in overrides if o.startswith("--")]  # argparse wants them first
    rest = [o for o in overrides if o not in flags]
    proc = cli("project.train", *flags, *TINY, *rest, f"hydra.sweep.dir={sweep_dir}", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def read_results(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "results.json").read_text())


class CrashWhenSeedIs:
    """A Lightning callback (used by config override in tests) that crashes a run mid-training
    when its seed matches: `+callbacks.crash._target_=tests.helpers.CrashWhenSeedIs
    +callbacks.crash.seed=0`."""

    def __new__(cls, seed: int):
        import lightning as L

        class _Crash(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, *args) -> None:
                if trainer.global_step >= 2 and int(trainer.datamodule.seed) == seed:
                    raise RuntimeError(f"test crash in the run with seed {seed}")

        return _Crash()


class HoldUntilFileExists:
    """A Lightning callback (used by config override in tests) that pauses training after its
    first batch until `path` exists (at most `timeout` seconds), having created `<path>.held`
    to say it is holding: it keeps a run alive while a test does something beside it, however
    fast the machine trains.
    `+callbacks.hold._target_=tests.helpers.HoldUntilFileExists +callbacks.hold.path=<file>`."""

    def __new__(cls, path: str, timeout: float = 240):
        import time

        import lightning as L

        class _Hold(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, *args) -> None:
                if trainer.global_step != 1:
                    return
                Path(f"{path}.held").touch()
                deadline = time.time() + timeout
                while not Path(path).exists() and time.time() < deadline:
                    time.sleep(0.05)

        return _Hold()
