"""The full-scale studies' queue: skip what is recorded, resume what was interrupted, restart
the rest; the report reads committed records as it reads run dirs."""

from __future__ import annotations

import csv
import io
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from project.studies.full_scale import (
    CPU_SCALE,
    JPEG_DOSE_ROOTS,
    JPEG_EFFECT_ROOTS,
    STUDIES,
    plan,
)
from project.studies.queue import (
    LAST_CKPT,
    QueuedRun,
    next_action,
    record_dir,
    run_queue,
    work_dir,
)
from tests.helpers import REPO, RESUMABLE, TINY, cli, read_results, train

QUIET = [*TINY, "trainer.enable_progress_bar=false"]


def _run(name: str, *overrides: str) -> QueuedRun:
    return QueuedRun("toy", name, (*QUIET, *overrides))


def test_a_recorded_run_is_skipped(tmp_path):
    run = _run("a")
    dest = record_dir(tmp_path / "records", run)
    dest.mkdir(parents=True)
    (dest / "results.json").write_text('{"status": "completed"}')
    outcome = run_queue([run], tmp_path / "records", tmp_path / "work", python="/nonexistent")
    assert outcome == {"toy/a": "skip"}  # never started a process (the python path is bogus)


def test_weights_follow_the_validation_best_seed_of_each_variant(tmp_path, monkeypatch):
    from project.studies import weights

    exported = []
    monkeypatch.setattr(
        weights,
        "export_weights",
        lambda ckpt, out: exported.append((Path(ckpt).parent.parent.name, out)),
    )
    runs = (("bn_s0", 0.5, 0.9), ("bn_s1", 0.7, 0.1), ("bn_s2", 0.6, 0.95), ("gn_s0", 0.4, 0.4))
    for name, val, test in runs:
        run_dir = tmp_path / "work" / name
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "checkpoints" / "best.ckpt").write_text("stub")
        compiled = "compile: true\nchannels_last: true\n" if name.startswith("bn") else ""
        (run_dir / "config.yaml").write_text(
            f"data: {{root: ../d}}\ntrainer: {{precision: bf16-mixed}}\n{compiled}"
        )
        results = {"status": "completed", "config": {"data": "folder"},
                   "metrics": {"val/acc": val, "test/acc": test}}  # fmt: skip
        (run_dir / "results.json").write_text(json.dumps(results))
        weights.keep_if_best(run_dir, tmp_path / "records", "study", name)
    # bn_s2: better test, worse val, not exported
    assert [name for name, _ in exported] == ["bn_s0", "bn_s1", "gn_s0"]
    info = weights.current_best(tmp_path / "records", "study", "bn")
    assert info["run"] == "bn_s1" and info["test_acc"] == 0.1
    command = "python -m project.evaluate ckpt=records/study/weights/bn.pt"  # repo-relative
    assert info["evaluate"].startswith(command)
    # Run as the record was made: a compiled run's predictions need a compiled evaluation.
    execution = "precision=bf16-mixed compile=true channels_last=true out="
    assert f"data=folder data.root=../d {execution}" in info["evaluate"]
    assert info["compile"] is True and info["channels_last"] is True
    gn = weights.current_best(tmp_path / "records", "study", "gn")
    assert "precision=bf16-mixed out=" in gn["evaluate"] and "compile" not in gn["evaluate"]
    assert gn["compile"] is False and gn["channels_last"] is False
    assert gn["trained_on"] == "cpu"  # no trainer.accelerator in the config: the CPU


def test_records_are_committed_in_their_own_repository_while_its_index_is_locked(
    tmp_path, monkeypatch
):
    """As when the queue runs from a separate worktree and the user commits meanwhile."""
    import subprocess
    import threading

    from project.studies.queue import _commit

    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "other.txt").write_text("not part of the record")
    record = repo / "experiments" / "s" / "runs" / "a" / "results.json"
    record.parent.mkdir(parents=True)
    record.write_text("{}")
    monkeypatch.chdir(tmp_path)  # not inside the repository
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@t")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@t")
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    threading.Timer(1.0, lock.unlink).start()  # another git process finishes after a second
    _commit([record], "s/a: completed")
    files = subprocess.run([*git, "show", "--name-only", "--format=%s", "HEAD"],
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert files == ["s/a:", "completed", "experiments/s/runs/a/results.json"]


def test_a_record_of_another_recipe_stops_the_queue(tmp_path, capsys):
    old, new = _run("a", "trainer.max_epochs=2", "resume=true"), _run("a", "trainer.max_epochs=3")
    dest = record_dir(tmp_path / "records", old)
    dest.mkdir(parents=True)
    record = {"status": "completed", "overrides": list(old.overrides)}
    (dest / "results.json").write_text(json.dumps(record))
    assert next_action(_run("a", "trainer.max_epochs=2"), tmp_path / "records", tmp_path) == "skip"
    shown = _run("a", "trainer.max_epochs=2", "trainer.log_every_n_steps=160")
    assert next_action(shown, tmp_path / "records", tmp_path) == "skip"  # not what it trains
    later = _run("b")
    outcome = run_queue([new, later], tmp_path / "records", tmp_path / "work", python="/none")
    assert outcome == {"toy/a": "conflict"}  # stopped before training anything
    message = " ".join(capsys.readouterr().err.split())  # one paragraph, wrapped
    assert "(recorded -> queued: trainer.max_epochs: 2 -> 3)" in message and "git mv" in message


def test_an_interrupted_run_resumes_and_a_broken_one_restarts(tmp_path):
    records, work = tmp_path / "records", tmp_path / "work"
    resumable, broken = _run("resumable", "trainer.max_epochs=2"), _run("broken")
    # `resumable` was stopped after its first epoch: its work dir has a checkpoint.
    proc = train(
        work_dir(work, resumable), "trainer.max_epochs=1", "trainer.enable_progress_bar=false"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # `broken` died before any checkpoint: its work dir has only a stale file.
    work_dir(work, broken).mkdir(parents=True)
    (work_dir(work, broken) / "stale.txt").write_text("from a crashed attempt")
    assert next_action(resumable, records, work) == "resume"
    assert next_action(broken, records, work) == "start"

    outcome = run_queue([resumable, broken], records, work)
    assert outcome == {"toy/resumable": "completed", "toy/broken": "completed"}
    assert read_results(work_dir(work, resumable))["epochs"] == 2
    assert (work_dir(work, resumable) / "attempts" / "1" / "results.json").is_file()  # resumed
    assert not (work_dir(work, broken) / "stale.txt").exists()  # restarted from scratch
    for run in (resumable, broken):
        dest = record_dir(records, run)
        names = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
        assert names == ["config.yaml", "csv/metrics.csv", "results.json", "test_predictions.npz"]
        assert next_action(run, records, work) == "skip"

    # Each variant's validation-best weights, loadable by evaluate with the recorded accuracy.
    for run in (resumable, broken):
        info = json.loads((records / "toy" / "weights" / f"{run.name}.json").read_text())
        recorded = read_results(work_dir(work, run))["metrics"]
        assert info["run"] == run.name and info["val_acc"] == recorded["val/acc"]
        assert (records / "toy" / "weights" / f"{run.name}.pt").is_file()

    # The queue stopped after `broken` finished but before its record was copied: the next
    # queue copies it and trains nothing (a bogus python would fail any training).
    shutil.rmtree(record_dir(records, broken))
    assert next_action(broken, records, work) == "record"
    outcome = run_queue([broken], records, work, python="/nonexistent")
    assert outcome == {"toy/broken": "completed"} and next_action(broken, records, work) == "skip"


def test_interrupting_the_queue_records_the_run_as_interrupted_and_stops(tmp_path):
    """`kill -INT` of the queue (Ctrl-C in a terminal reaches only the queue too: the training
    has its own process group): the training is told once, records itself as interrupted, and
    the queue stops with its message, not a traceback; the same queue then resumes the run."""
    records, work = tmp_path / "records", tmp_path / "work"
    run = _run("long", *RESUMABLE, "trainer.max_epochs=20")
    script = (
        "import sys; from pathlib import Path; "
        "from project.studies.queue import QueuedRun, run_queue; "
        f"run_queue([QueuedRun('toy', 'long', {run.overrides!r})], "
        f"Path({str(records)!r}), Path({str(work)!r}))"
    )
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=log, stderr=log)
        deadline = time.time() + 240
        while not (work_dir(work, run) / LAST_CKPT).is_file():  # after its first epoch
            assert proc.poll() is None and time.time() < deadline, "the run never got going"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        log.seek(0)
        output = log.read()
    assert "Traceback" not in output, output[-3000:]
    assert "[queue] interrupted during toy/long" in output
    assert read_results(work_dir(work, run))["status"] == "interrupted"
    assert next_action(run, records, work) == "resume"


@pytest.mark.slow  # two trainings and two reports
def test_report_on_committed_records_equals_report_on_run_dirs(tmp_path):
    from project.report.build import make_report

    work, records = tmp_path / "work", tmp_path / "records"
    runs = [_run("bn", "trainer.max_epochs=1"), _run("gn", "trainer.max_epochs=1", "norm=gn")]
    assert set(run_queue(runs, records, work).values()) == {"completed"}
    for run in runs:  # the run dirs without what is not committed
        shutil.rmtree(work_dir(work, run) / "checkpoints")
    make_report([work / "toy"], tmp_path / "from_runs")
    make_report([records / "toy" / "runs"], tmp_path / "from_records")

    def table(out: Path) -> list[dict]:
        rows = list(csv.DictReader(io.StringIO((out / "summary.csv").read_text())))
        return [{k: v for k, v in r.items() if k not in ("path", "runs")} for r in rows]

    assert table(tmp_path / "from_runs") == table(tmp_path / "from_records")


def test_the_queue_finishes_every_variant_of_a_seed_before_the_next_seed():
    seeds = [r.name.rsplit("_s", 1)[1] for r in plan(["norm_comparison"], seeds=(0, 1))]
    assert seeds == sorted(seeds) and len(seeds) == 14  # 6 norms + none_warmup, per seed


@pytest.mark.parametrize("study", list(STUDIES))
def test_every_study_plans_distinct_runs_on_its_dataset(study):
    runs = plan([study], seeds=(0, 1), epochs=30, extra=("scheduler=cosine",))
    assert len({r.name for r in runs}) == len(runs) >= 2
    roots = JPEG_EFFECT_ROOTS.values() if study in CPU_SCALE else ["../shared/data/cifar10-jpeg"]
    roots = JPEG_DOSE_ROOTS.values() if study == "jpeg_dose" else roots
    for run in runs:
        assert sum(o.startswith("data.root=") for o in run.overrides) == 1
        assert any(f"data.root={root}" in run.overrides for root in roots)
        assert run.overrides[-2:] == ("trainer.max_epochs=30", "scheduler=cosine")


def settings_of(run: QueuedRun) -> dict[str, str]:
    """A queued run's overrides as {key: value} (the last value of a repeated key, as Hydra)."""
    return dict(o.partition("=")[::2] for o in run.overrides)


def test_the_cpu_scale_comparisons_change_only_what_they_measure():
    lossless, jpeg = (settings_of(r) for r in plan(["jpeg_effect"], seeds=(3,)))
    (fp32,) = (settings_of(r) for r in plan(["bf16_effect"], seeds=(3,)))

    def changed(a: dict, b: dict) -> set[str]:
        return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}

    assert changed(lossless, jpeg) == {"data.root", "norm_name"}
    assert changed(lossless, fp32) == {"trainer.precision", "norm_name"}
    assert lossless["trainer"] == "cpu_bf16" and fp32["trainer.precision"] == "32-true"
    assert lossless["seed"] == jpeg["seed"] == fp32["seed"] == "3"


def test_the_jpeg_dose_runs_differ_only_in_the_tree_they_train_on():
    runs = [settings_of(r) for r in plan(["jpeg_dose"], (1,))]
    assert [r["data.root"] for r in runs] == list(JPEG_DOSE_ROOTS.values())
    assert runs[0]["data.root"] == "../shared/data/cifar10-jpeg"  # quality 75: the copy as is
    for run in runs[1:]:
        assert {k for k in run.keys() | runs[0].keys() if run.get(k) != runs[0].get(k)} == {
            "data.root",
            "norm_name",
        }


def test_resnet20_paper_is_he_et_al_schedule_on_their_split():
    (run,) = plan(["resnet20_paper"], seeds=(0,))
    settings = settings_of(run)
    assert settings["data.val_size"] == "5000"  # 45,000 / 5,000 as in the paper
    assert settings["trainer.max_epochs"] == "182"  # 64k iterations of 352 steps
    assert settings["experiment"] == "resnet20" and "scheduler" not in settings
    from project.training.compose import compose_job_config

    cfg = compose_job_config(list(run.overrides))
    assert (cfg.model.n, cfg.batch_size, cfg.optimizer.lr) == (3, 128, 0.1)  # 6n+2 = 20 layers
    assert cfg.optimizer.weight_decay == 1e-4 and cfg.optimizer.momentum == 0.9
    assert list(cfg.scheduler.milestones) == [0.5, 0.75] and cfg.scheduler.gamma == 0.1


# Every weights/ under experiments/, a study's sub-study too (norm_comparison/longer/weights/).
COMMITTED_WEIGHTS = sorted((REPO / "experiments").glob("**/weights/*.json"))


@pytest.mark.slow  # evaluates each committed net on its test images (10,000 at full scale)
@pytest.mark.skipif(not COMMITTED_WEIGHTS, reason="no study has committed weights yet")
@pytest.mark.parametrize(
    "info_path",
    COMMITTED_WEIGHTS,
    ids=lambda p: p.relative_to(REPO / "experiments").with_suffix("").as_posix(),
)
def test_committed_weights_reproduce_their_recorded_test_accuracy(info_path, tmp_path):
    """The command each weights/<variant>.json states, as a user runs it (from the repo root)."""
    info = json.loads(info_path.read_text())
    args = info["evaluate"].split()[3:]  # after `python -m project.evaluate`
    args = [a for a in args if not a.startswith("out=")] + [f"out={tmp_path}"]
    root = next((a.partition("=")[2] for a in args if a.startswith("data.root=")), None)
    if root and not (REPO / root).is_dir():  # e.g. ../shared/data/cifar10-jpeg, data/<made here>
        pytest.skip(f"needs {root}, the data of its evaluate command")
    proc = cli("project.evaluate", *args, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = json.loads((tmp_path / "metrics.json").read_text())["accuracy"]
    assert accuracy == pytest.approx(info["test_acc"], abs=1e-3)  # 10 of 10,000 images
    recorded = REPO / "experiments" / info["record"] / "test_predictions.npz"
    # Image by image, not only the count, where evaluation runs on the record's kind of device
    # (a GPU run's kernels round differently: 26-34 of its 10,000 predictions differ on the CPU).
    if recorded.is_file() and info["trained_on"] == "cpu":
        import numpy as np

        with (tmp_path / "predictions.csv").open() as f:
            labels = [int(row["label"]) for row in csv.DictReader(f)]
        assert int((np.array(labels) != np.load(recorded)["pred"]).sum()) <= 10


def test_batch_2_is_queued_apart_into_the_batch_size_study_folder():
    runs = plan(["batch_size_study_b2"], seeds=(0,))
    assert [r.name for r in runs] == ["bn_b2_s0", "gn_b2_s0"]
    assert {r.study for r in runs} == {"batch_size_study"}
    for run in runs:
        settings = settings_of(run)
        assert settings["batch_size"] == "2" and settings["trainer.log_every_n_steps"] == "640"
    assert not any("_b2_" in r.name for r in plan(["batch_size_study"], seeds=(0,)))
