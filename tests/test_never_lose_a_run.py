"""Never lose a run: the checkpoint is the last state, a record is never overwritten, every failure
is loud. One test per finding of the audit (issue 10), each through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO, RESUMABLE, TINY, cli, csv_column, read_results, train


def popen_train(run_dir: Path | None, *overrides: str, cwd: Path = REPO) -> subprocess.Popen:
    """A training process in the background. Its stderr goes to a temp file, not a pipe: a pipe
    nobody reads while the test waits would fill up and block the run."""
    args = [*TINY, "trainer.enable_progress_bar=false", *overrides]
    args += [f"hydra.run.dir={run_dir}"] if run_dir else []
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (open as long as the process runs)
    proc = subprocess.Popen(
        [sys.executable, "-m", "project.train", *args],
        cwd=cwd,
        env={**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"},
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    proc.stderr_log = log  # Popen sets .stderr only for PIPE
    return proc


def finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    """Wait for the process; return its stderr."""
    proc.wait(timeout=timeout)
    proc.stderr_log.seek(0)
    return proc.stderr_log.read()


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {what}: {finish(proc)[-2000:]}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def steps_logged(run_dir: Path, epoch: int) -> int:
    metrics = run_dir / "csv" / "metrics.csv"
    if not metrics.is_file():
        return 0
    import csv

    with open(metrics, newline="") as f:
        return sum(
            1 for r in csv.DictReader(f) if r.get("train/loss_step") and r["epoch"] == str(epoch)
        )


def one_paragraph(stderr: str) -> str:
    """The `[normres] error:` paragraph; asserts there is no traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "[normres] error:" in stderr, stderr[-3000:]
    return " ".join(stderr.split("[normres] error:", 1)[1].split())


# 1. last.ckpt is the last epoch
def test_last_checkpoint_is_the_last_epoch_even_when_val_is_flat(tmp_path):
    proc = train(tmp_path, "optimizer.lr=1e-9", "trainer.max_epochs=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=False)
    assert last["epoch"] == 2 and last["global_step"] == 3 * 4  # 120 images / 32 per batch
    assert best["epoch"] == 0  # val accuracy never improved after the first epoch


# 2. a checkpoint that cannot be written fails the run
def test_unwritable_checkpoint_dir_mid_run_fails_the_run(tmp_path):
    proc = popen_train(tmp_path, *RESUMABLE)
    ckpt_dir = tmp_path / "checkpoints"
    wait_for(lambda: (ckpt_dir / "last.ckpt").is_file(), proc, "the first checkpoint")
    # Root ignores permission bits, so make the dir unusable for anyone: replace it by a file.
    for f in ckpt_dir.iterdir():
        f.unlink()
    ckpt_dir.rmdir()
    ckpt_dir.write_text("not a directory")
    stderr = finish(proc)
    assert proc.returncode == 2, stderr[-3000:]
    message = one_paragraph(stderr)
    assert "Could not write the checkpoint" in message and str(ckpt_dir) in message
    results = read_results(tmp_path)
    assert results["status"] == "failed" and "Could not write the checkpoint" in results["error"]


def test_failed_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    """A full disk mid-write: the error names the path and the old last.ckpt is intact."""
    import errno

    from project.training.checkpoint_io import AtomicCheckpointIO, CheckpointWriteError

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, path)

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointWriteError, match="No space left on device") as err:
        io.save_checkpoint({"epoch": 2}, path)
    assert str(path) in str(err.value)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left


# 3. a failed resume never touches a finished run's record
@pytest.fixture(scope="module")
def finished_bn_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    proc = train(run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def _records(run_dir: Path) -> dict[str, bytes]:
    return {n: (run_dir / n).read_bytes() for n in ("results.json", "config.yaml")}


def test_resume_with_another_norm_is_refused_and_changes_nothing(finished_bn_run):
    before = _records(finished_bn_run)
    proc = train(finished_bn_run, "resume=true", "norm=gn")
    assert proc.returncode == 2
    message = one_paragraph(proc.stderr)
    assert "norm._target_" in message and "GroupNorm2d" in message and "BatchNorm2d" in message
    assert len(proc.stderr.strip().splitlines()) <= 6  # one paragraph, not a state_dict dump
    assert _records(finished_bn_run) == before
    assert not (finished_bn_run / "attempts").exists()


def test_resume_from_a_truncated_checkpoint_is_refused_and_changes_nothing(
    tmp_path, finished_bn_run
):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_bn_run, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    before = _records(run_dir)
    proc = train(run_dir, "resume=true")
    assert proc.returncode == 2
    assert "not a readable Lightning checkpoint" in one_paragraph(proc.stderr)
    assert _records(run_dir) == before


def test_a_new_run_in_a_finished_run_dir_is_refused(finished_bn_run):
    before = _records(finished_bn_run)
    proc = train(finished_bn_run, "seed=1")
    assert proc.returncode == 2 and "already holds a run" in one_paragraph(proc.stderr)
    assert _records(finished_bn_run) == before
    # a config error in that dir does not overwrite the record either
    proc = train(finished_bn_run, "optimizer.lr=-1")
    assert proc.returncode == 2 and _records(finished_bn_run) == before


def test_resume_keeps_the_earlier_attempt_as_history(tmp_path):
    proc = train(tmp_path, "trainer.max_epochs=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = _records(tmp_path)
    proc = train(tmp_path, "trainer.max_epochs=2", "resume=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _records(tmp_path / "attempts" / "1") == first
    assert read_results(tmp_path)["epochs"] == 2


# 4. run dirs are unique, and locked
def test_two_runs_started_in_the_same_second_get_two_dirs(tmp_path):
    procs = [popen_train(None, cwd=tmp_path) for _ in range(2)]
    for proc in procs:
        stderr = finish(proc)
        assert proc.returncode == 0, stderr[-3000:]
    dirs = sorted(p.parent for p in (tmp_path / "outputs").glob("*/*/results.json"))
    assert len(dirs) == 2
    assert all(read_results(d)["status"] == "completed" for d in dirs)


def test_a_second_process_refuses_a_run_dir_in_use(tmp_path):
    # The first run holds after its first batch until `go` exists: on a fast CPU it would
    # otherwise finish before the second process has started (seen on a 2-core Zen 5).
    go = tmp_path.parent / f"{tmp_path.name}_go"
    hold = [
        "+callbacks.hold._target_=tests.helpers.HoldUntilFileExists",
        f"+callbacks.hold.path={go}",
    ]
    first = popen_train(tmp_path, *RESUMABLE, *hold)
    held = go.parent / f"{go.name}.held"
    wait_for(held.exists, first, "the first run to train a batch and hold")
    second = train(tmp_path, *RESUMABLE, *hold)
    go.touch()
    assert second.returncode == 2
    message = one_paragraph(second.stderr)
    assert "in use by a running training process" in message and f"pid {first.pid}" in message
    stderr = finish(first)
    assert first.returncode == 0, stderr[-3000:]
    assert read_results(tmp_path)["status"] == "completed"
    assert not (tmp_path / "attempts").exists()  # the refused process wrote nothing


# 5. a sweep never hides a failed job
def test_sweep_with_a_failing_job_exits_non_zero_and_counts_it(tmp_path):
    proc = cli(
        "project.train",
        "--multirun",
        *TINY,
        "trainer.max_epochs=1",
        "optimizer.lr=0.1,fast",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "2 jobs: 1 completed, 1 failed" in proc.stdout
    failed = read_results(tmp_path / "1")
    assert failed["status"] == "failed" and "optimizer.lr" in failed["error"]


def test_a_job_without_results_counts_as_failed(tmp_path):
    from project.training.sweep import NO_RESULTS, job_statuses

    for job, record in (("0", {"status": "completed"}), ("1", None)):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        if record:
            (tmp_path / job / "results.json").write_text(json.dumps(record))
    assert job_statuses(tmp_path) == {"0": "completed", "1": NO_RESULTS}


# 6. interrupts: recorded, resumable, and the resumed run equals the uninterrupted one
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    proc = train(run_dir, *RESUMABLE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.mark.parametrize(
    ("sig", "code", "epoch"),
    [
        (signal.SIGTERM, 143, 1),
        (signal.SIGINT, 130, 1),
        pytest.param(signal.SIGINT, 130, 0, marks=pytest.mark.slow),  # before any checkpoint
    ],
    ids=["sigterm-mid-epoch-1", "sigint-mid-epoch-1", "sigint-mid-epoch-0"],
)
def test_interrupt_then_resume_equals_uninterrupted(tmp_path, uninterrupted, sig, code, epoch):
    proc = popen_train(tmp_path, *RESUMABLE)
    wait_for(lambda: steps_logged(tmp_path, epoch) >= 5, proc, f"the middle of epoch {epoch}")
    proc.send_signal(sig)
    stderr = finish(proc, timeout=120)
    assert proc.returncode == code, stderr[-3000:]
    message = one_paragraph(stderr)
    assert f"interrupted by {signal.Signals(sig).name}" in message and "resume=true" in message
    results = read_results(tmp_path)
    assert results["status"] == "interrupted" and results["epochs"] == epoch
    if epoch:  # last.ckpt is the last epoch boundary, never a mid-epoch state
        last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
        assert last["epoch"] == epoch - 1 and last["global_step"] == 80 * epoch

    resumed = train(tmp_path, *RESUMABLE, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = read_results(uninterrupted), read_results(tmp_path)
    assert got["status"] == "completed" and got["epochs"] == 3
    assert got["metrics"] == expected["metrics"] and got["best_epoch"] == expected["best_epoch"]
    assert read_results(tmp_path / "attempts" / "1")["status"] == "interrupted"


@pytest.mark.slow  # SIGTERM/SIGINT above cover resume equality in the default run
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, uninterrupted):
    proc = popen_train(tmp_path, *RESUMABLE)
    wait_for(lambda: steps_logged(tmp_path, 1) >= 5, proc, "the middle of epoch 1")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (tmp_path / "results.json").exists()

    resumed = train(tmp_path, *RESUMABLE, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = read_results(uninterrupted), read_results(tmp_path)
    assert got["status"] == "completed" and got["epochs"] == expected["epochs"] == 3
    assert got["metrics"] == expected["metrics"]
    assert got["best_epoch"] == expected["best_epoch"]
    # The CSV history continues: each step and epoch logged once, same values as uninterrupted.
    assert csv_column(tmp_path, "train/loss_step") == csv_column(uninterrupted, "train/loss_step")
    assert csv_column(tmp_path, "val/acc") == csv_column(uninterrupted, "val/acc")


# 7. every config value is range-checked before training
@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("norm.momentum=2", ["norm.momentum", "[0, 1)"]),
        ("optimizer.momentum=2", ["optimizer.momentum", "[0, 1)"]),
        ("optimizer.lr=nan", ["optimizer.lr", "finite"]),
        ("optimizer.lr=inf", ["optimizer.lr", "finite"]),
        ("norm.eps=-1", ["norm.eps", "> 0"]),
        ("regularization.label_smoothing=2", ["label_smoothing", "[0, 1)"]),
        ("feature_quantiles=[1.5]", ["feature_quantiles", "[0, 1]"]),
        ("seed=-1", ["seed", "2^32 - 1"]),
        ("model.widths=[16,0,64]", ["model.widths", "1 to 2048"]),
        ("model.head=foo", ["model.head", "linear, conv"]),
        ("model.shortcut=C", ["model.shortcut", "A, B, B3"]),
        ("model.activation=foo", ["model.activation", "relu, swish"]),
        ("model.n=1000", ["model.n", "ResNet-6002", "parameters"]),
        ("batch_size=100000000000000000000", ["batch_size", "at most"]),
        ("norm=bin norm.rho_init=1.5", ["norm.rho_init", "[0, 1]"]),
        ("compile=fast", ["compile", "reduce-overhead"]),
    ],
)
def test_bad_value_is_rejected_before_training(tmp_path, override, needles):
    """The validator itself, in-process (each CLI start costs seconds; the CLI path, exit code 2
    and one paragraph, is checked once below and in test_train)."""
    from project.errors import UserError
    from project.training.compose import compose_job_config
    from project.training.validation import validate_config

    cfg = compose_job_config([*TINY, *override.split()], tmp_path)
    with pytest.raises(UserError) as err:
        validate_config(cfg)
    message = str(err.value)
    assert all(n in message for n in needles), message
    assert "Fix:" in message


def test_a_bad_value_stops_the_cli_in_seconds_as_one_paragraph(tmp_path):
    start = time.perf_counter()
    proc = train(tmp_path, "model.n=1000")
    assert proc.returncode == 2
    message = one_paragraph(proc.stderr)
    assert "model.n" in message and "ResNet-6002" in message
    assert time.perf_counter() - start < 60  # rejected before anything is built
    assert not (tmp_path / "checkpoints").exists()


def test_milestones_after_the_last_epoch_warn(tmp_path):
    proc = train(tmp_path, "trainer.max_epochs=1", "scheduler.milestones=[5,8]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[normres] warning: scheduler.milestones [5, 8]" in proc.stderr


def test_a_step_decay_after_the_last_epoch_warns(tmp_path, capsys):
    """The trap behind a cut-down lab_lr_decay: decay every 10 epochs in a 10-epoch run is a
    constant lr."""
    from project.training.compose import compose_job_config
    from project.training.validation import validate_config

    overrides = ["scheduler=step", "scheduler.decay_epochs=10", "trainer.max_epochs=10"]
    validate_config(compose_job_config([*TINY, *overrides], tmp_path))
    assert "scheduler.decay_epochs=10 is at or after the last epoch" in capsys.readouterr().err
    validate_config(compose_job_config([*TINY, *overrides[:2], "trainer.max_epochs=11"], tmp_path))
    assert "decay_epochs" not in capsys.readouterr().err


# 8. W&B: every job its own run, finished whatever happens
def test_a_failed_job_does_not_capture_the_next_jobs_wandb_run(tmp_path):
    proc = cli(
        "project.train",
        "--multirun",
        *[o for o in TINY if o != "logger=csv"],
        "logger=wandb",
        "trainer.max_epochs=1",
        "+callbacks.crash._target_=tests.helpers.CrashWhenSeedIs",
        "+callbacks.crash.seed=0",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert read_results(tmp_path / "0")["status"] == "failed"
    assert read_results(tmp_path / "1")["status"] == "completed"
    ids = []
    for job in ("0", "1"):
        run_id = (tmp_path / job / "wandb_run_id.txt").read_text().strip()
        runs = list((tmp_path / job / "wandb").glob(f"offline-run-*-{run_id}"))
        assert len(runs) == 1, list((tmp_path / job).rglob("offline-run-*"))
        ids.append(run_id)
    assert ids[0] != ids[1]
    assert not list((tmp_path / "0" / "wandb").glob(f"offline-run-*-{ids[1]}"))


# 9. evaluate and report refuse what would mislead
def test_evaluate_refuses_a_dataset_with_other_class_names(tmp_path, finished_bn_run):
    from PIL import Image

    for split, n in (("train", 6), ("test", 3)):
        for c in range(10):
            folder = tmp_path / "other" / split / f"class_{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (20 * c, i, 0)).save(folder / f"{i}.png")
    ckpt = finished_bn_run / "checkpoints" / "best.ckpt"
    args = [
        f"ckpt={ckpt}",
        "data=folder",
        f"data.root={tmp_path / 'other'}",
        f"out={tmp_path / 'e'}",
    ]
    proc = cli("project.evaluate", *args)
    assert proc.returncode == 2
    message = one_paragraph(proc.stderr)
    assert (
        "class names" in message and "class_0" in message and "allow_other_classes=true" in message
    )
    assert not (tmp_path / "e").exists()
    proc = cli("project.evaluate", *args, "allow_other_classes=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[normres] warning:" in proc.stderr and (tmp_path / "e" / "metrics.json").is_file()


def test_report_out_under_a_file_is_one_paragraph(tmp_path, finished_bn_run):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = cli("project.report", str(finished_bn_run), "--out", str(blocker / "report"))
    assert proc.returncode == 2
    assert "--out" in one_paragraph(proc.stderr)
