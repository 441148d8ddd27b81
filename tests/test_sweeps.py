"""Where a sweep's jobs run and how they are chosen (issue 14): joblib (parallel on this machine,
threads per job), submitit (SLURM config; a local 2-job sweep), Optuna (hparams_search), a sweep
of 2-process DDP jobs, and the "k of N done" count."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from project.report.runs import load_runs
from project.train import _output_dir_overrides, job_metric
from project.training.ddp_jobs import JOB_ENV, child_argv
from project.training.parallel import parallel_jobs, threads_per_job
from project.training.sweep import planned_jobs
from tests.helpers import REPO, TINY, cli, read_results, sweep


def _hydra_cfg(*overrides: str) -> dict:
    proc = cli("project.train", *overrides, "--cfg", "hydra")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return yaml.safe_load(proc.stdout)["hydra"]


# --- launchers, search, threads ----------------------------------------------------------------


def test_threads_per_job():
    joblib = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"}
    assert threads_per_job(None, {**joblib, "n_jobs": 2}, cores=2) == 1
    assert threads_per_job(None, {**joblib, "n_jobs": -1}, cores=8) == 1
    assert threads_per_job(None, {**joblib, "n_jobs": 2}, cores=8) == 4
    assert threads_per_job(3, {**joblib, "n_jobs": 2}, cores=8) == 3
    assert threads_per_job(None, {"_target_": "BasicLauncher"}, cores=8) is None
    assert parallel_jobs(-2, 8) == 7 and parallel_jobs(None, 8) == 1


@pytest.fixture(scope="module")
def search(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """An Optuna search of 2 trials, both run at once by the joblib launcher (2 processes)."""
    sweep_dir = tmp_path_factory.mktemp("search")
    search = ["hparams_search=lr_wd", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2"]
    proc = sweep(sweep_dir, *search, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    return sweep_dir, proc


def test_joblib_runs_both_jobs_with_a_thread_each(search):
    sweep_dir, proc = search
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    assert all(read_results(sweep_dir / j)["status"] == "completed" for j in "01")
    pids = {(sweep_dir / j / ".lock").read_text() for j in "01"}
    assert len(pids) == 2  # two worker processes
    assert "torch threads per job: 1" in (sweep_dir / "0" / "train.log").read_text()
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    assert "2 jobs: 2 completed" in proc.stdout


def test_optuna_search_of_two_trials(search):
    sweep_dir, _ = search
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    values = [job_metric(sweep_dir / j, "val/acc") for j in "01"]
    assert best["best_value"] == max(values)
    trials = [read_results(sweep_dir / j)["config"] for j in "01"]
    assert trials[0]["lr"] != trials[1]["lr"]  # two different trials
    assert set(best["best_params"]) == {"optimizer.lr", "optimizer.weight_decay"}
    assert len(load_runs([sweep_dir])) == 2  # the trials are normal runs for the report


def test_submitit_slurm_composes():
    hydra = _hydra_cfg("hydra/launcher=submitit_slurm", "trainer=ddp")
    launcher = hydra["launcher"]
    assert launcher["_target_"].endswith("SlurmLauncher")
    for key in ("partition", "gpus_per_node", "timeout_min", "array_parallelism"):
        assert key in launcher
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

    assert set(SlurmQueueConf.__dataclass_fields__) <= set(launcher)  # every key the plugin has
    # Resolved as the launcher sees it: one GPU and one SLURM task per DDP process.
    from hydra import compose, initialize_config_dir

    from project.training.compose import CONF_DIR

    overrides = ["hydra/launcher=submitit_slurm", "trainer=ddp", "hydra.launcher.partition=gpu"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    resolved = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert resolved["gpus_per_node"] == resolved["tasks_per_node"] == 2
    assert resolved["partition"] == "gpu"


@pytest.mark.slow  # about a minute: each job is a fresh process importing torch and Lightning
def test_submitit_local_runs_a_two_jobsweep(tmp_path):
    launcher = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]
    proc = sweep(tmp_path, "--multirun", "seed=0,1", *launcher)
    assert all(read_results(tmp_path / j)["status"] == "completed" for j in "01")
    assert "2 jobs: 2 completed" in proc.stdout


def test_planned_jobs_counts_sweep_lists():
    basic = {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}
    hydra = {"sweeper": basic, "overrides": {"task": ["norm=bn,gn", "seed=range(3)", "lr=1"]}}
    assert planned_jobs(OmegaConf.create(hydra)) == 6
    # An experiment's sweeper params count too; the command line replaces the same key.
    hydra["sweeper"] = {**basic, "params": {"norm": "bn,in,gn", "batch_size": "8,128"}}
    hydra["overrides"]["task"] = ["norm=bn,gn"]
    assert planned_jobs(OmegaConf.create(hydra)) == 4
    optuna = {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"}
    hydra["sweeper"] = {**optuna, "n_trials": 7}
    assert planned_jobs(OmegaConf.create(hydra)) == 7


# --- DDP + Hydra, output dirs ------------------------------------------------------------------


def test_ddp_child_runs_its_parent_job(monkeypatch):
    job = {"run_dir": "/tmp/sweep dir/1", "overrides": ["norm=gn", "optimizer.lr=0.01"]}
    monkeypatch.setenv(JOB_ENV, json.dumps(job))
    monkeypatch.setenv("LOCAL_RANK", "1")
    argv = ["train.py", "--multirun", "norm=bn,gn", 'hydra.run.dir="outputs/x"']
    assert child_argv(argv) == [
        "train.py",
        "norm=gn",
        "optimizer.lr=0.01",
        "hydra.run.dir='/tmp/sweep dir/1'",
        "hydra.output_subdir=null",
    ]
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert child_argv(argv) == argv


def test_output_dir_override_is_parsed_like_hydra():
    dirs = _output_dir_overrides(['hydra.run.dir="outputs/a b"', "hydra.sweep.dir='m/x'", "-m"])
    assert dirs == [Path("outputs/a b"), Path("m/x")]
    assert _output_dir_overrides(["hydra.run.dir=outputs/${now:%H}"]) == []


@pytest.mark.slow
def test_ddp_multirun_leaves_one_dir_per_job(tmp_path):
    """`trainer=ddp` on 2 CPU processes in a 2-job sweep: 2 job dirs, nothing else anywhere."""
    sweep_dir = tmp_path / "sweep"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    tiny = [o for o in TINY if not o.startswith("trainer")]
    env = {"PYTHONPATH": str(REPO)}
    proc = cli(
        "project.train",
        "--multirun",
        *tiny,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "seed=0,1",
        f'hydra.sweep.dir="{sweep_dir}"',
        cwd=cwd,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (proc.stdout + proc.stderr).count("MEMBER: 2/2") == 2  # rank 1 joined each job
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    assert all(read_results(sweep_dir / j)["status"] == "completed" for j in "01")
    assert list(cwd.iterdir()) == []  # no stray outputs/ or multirun/ from a relaunched rank
