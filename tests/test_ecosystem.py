"""The lightning-hydra-template conveniences (issue 14), each through the real CLI on tiny data:
console scripts, debug presets, the printed config and train.log, loggers. (Launchers, Optuna
and DDP sweeps: test_sweeps.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from project.report.runs import load_runs
from project.training.compose import compose_job_config
from tests.helpers import cli, read_results, sweep, train

BIN = Path(sys.executable).parent
SCRIPTS = ["normres-train", "normres-report", "normres-export", "normres-bench"]
DEBUG_PRESETS = ["default", "fdr", "overfit", "limit", "profiler"]


# --- console scripts ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_console_script_runs_help(script, tmp_path):
    path = BIN / script
    assert path.is_file(), f"{script} is not installed: pip install -e ."
    # Outside the repo: a console script must find conf/ wherever it is started.
    proc = subprocess.run([path, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage" in proc.stdout.lower() or "powered by hydra" in proc.stdout.lower()


def test_train_script_installs_shell_completion(tmp_path):
    completion = subprocess.run(
        [BIN / "normres-train", "-sc", "install=bash"], capture_output=True, text=True
    )
    assert completion.returncode == 0 and "complete" in completion.stdout
    assert completion.stdout.rstrip().endswith("normres-train")
    env = {**os.environ, "COMP_LINE": "normres-train norm=", "COMP_POINT": "19"}
    query = subprocess.run(
        [BIN / "normres-train", "-sc", "query=bash"], capture_output=True, text=True, env=env
    )
    assert "norm=gn" in query.stdout.split()


@pytest.mark.parametrize("script", ["normres-evaluate", "normres-predict"])
def test_evaluate_and_predict_scripts(script, tmp_path):
    proc = subprocess.run([BIN / script, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ckpt" in proc.stdout


# --- debug presets, printing, progress ---------------------------------------------------------


@pytest.fixture(scope="module")
def debug_sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """Every debug preset as one job of a sweep (one process: Lightning imported once)."""
    sweep_dir = tmp_path_factory.mktemp("debug")
    # One epoch each (overfit's 20 and limit's 2, shortened).
    presets = f"debug={','.join(DEBUG_PRESETS)}"
    proc = sweep(sweep_dir, "--multirun", presets, "trainer.max_epochs=1")
    return sweep_dir, proc


@pytest.mark.parametrize("job", range(len(DEBUG_PRESETS)))
def test_debug_preset_runs_and_is_marked(debug_sweep, job):
    sweep_dir, _ = debug_sweep
    record = read_results(sweep_dir / str(job))
    assert record["status"] == "completed" and record["debug"] is True
    assert not (sweep_dir / str(job) / "wandb").exists()  # W&B is off in debug runs
    config = yaml.safe_load((sweep_dir / str(job) / "config.yaml").read_text())
    preset = DEBUG_PRESETS[job]
    expected = {
        "fdr": ("fast_dev_run", True),
        "overfit": ("overfit_batches", 3),
        "limit": ("limit_train_batches", 3),
        "profiler": ("profiler", "simple"),
    }.get(preset, ("detect_anomaly", True))
    assert config["trainer"][expected[0]] == expected[1]
    if preset == "profiler":
        assert "Profiler Report" in (sweep_dir / str(job) / "train.log").read_text()


def test_report_skips_debug_runs(debug_sweep, tmp_path):
    debug_dir = debug_sweep[0]
    # The same run recorded as a normal one is reported: the flag, not the dir, decides.
    real = tmp_path / "real"
    shutil.copytree(debug_dir / "3", real)
    record = read_results(real)
    (real / "results.json").write_text(json.dumps({**record, "debug": False}))
    assert [r.path for r in load_runs([debug_dir, real])] == [real]


def test_config_printed_resolved_and_log_lines_once(debug_sweep):
    sweep_dir, proc = debug_sweep
    assert "${" not in proc.stdout and "─ model" in proc.stdout
    out = proc.stdout + proc.stderr
    # Lightning's lines once per job (they were printed by two handlers).
    assert out.count("`Trainer.fit` stopped") == len(DEBUG_PRESETS)
    log = (sweep_dir / "3" / "train.log").read_text()
    assert "${" not in log and "─ trainer" in log  # the tree
    assert "[normres] initial training loss" in log  # our prints
    assert log.count("`Trainer.fit` stopped") == 1  # Lightning's log records
    assert "Testing" in log  # the progress bars of the run
    for k in range(1, len(DEBUG_PRESETS) + 1):
        assert f"{k} of {len(DEBUG_PRESETS)} done" in proc.stdout


def test_trainer_debug_keys_need_no_plus(tmp_path):
    proc = cli(
        "project.train", "trainer.fast_dev_run=true", "trainer.profiler=simple", "--cfg", "job"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


# --- loggers -----------------------------------------------------------------------------------


def test_logger_many_writes_every_logger(tmp_path):
    run_dir = tmp_path / "run"
    # W&B's offline run (10 s of its start-up) is tested with the norm sweep in test_train.py.
    loggers = compose_job_config(["logger=many"]).logger
    assert set(loggers) == {"csv", "wandb", "tensorboard", "mlflow"}
    proc = train(run_dir, "logger=many", "logger.wandb=null", "seed=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "csv" / "metrics.csv").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    runs = [p for p in (run_dir / "mlruns").glob("*/*/meta.yaml") if p.parent.name != "models"]
    assert runs, "no MLflow run in the file store"
    assert any((p.parent / "metrics" / "val" / "acc").is_file() for p in runs)


def test_wandb_name_unique_per_run_and_group_is_experiment(tmp_path):
    names = set()
    for seed in (0, 1):
        cfg = compose_job_config(["experiment=norm_comparison", f"seed={seed}"], run_dir=tmp_path)
        wandb = OmegaConf.to_container(cfg.logger.wandb, resolve=True)
        assert wandb["group"] == "norm_comparison"
        names.add(wandb["name"])
    assert names == {"bn_b128_lr0.1_s0", "bn_b128_lr0.1_s1"}
