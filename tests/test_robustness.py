"""Never lose a run: resume after SIGKILL/SIGTERM, divergence, failing sweep jobs, determinism,
and one clear paragraph for every bad input."""

from __future__ import annotations

import json

import pytest

from tests.helpers import TINY, cli, csv_column, read_results, train


def test_divergence_is_recorded_and_exits_cleanly(tmp_path):
    proc = train(tmp_path, "norm=none", "optimizer.lr=1e4", "trainer.max_epochs=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = read_results(tmp_path)
    assert results["status"] == "diverged"
    assert results["diverged_epoch"] == 0
    assert "diverged" in proc.stdout


def test_failing_job_does_not_stop_the_sweep(tmp_path):
    proc = cli(
        "project.train",
        "--multirun",
        *TINY,
        "data.val_size=0.25,5000",
        "norm=bn,gn",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert proc.returncode != 0  # the sweep says that something failed...
    statuses = {
        p.parent.name: json.loads(p.read_text())["status"] for p in tmp_path.glob("*/results.json")
    }
    # ...but every job ran: jobs 0, 1 (val 0.25; bn, gn) completed, 2, 3 (val 5000) failed.
    assert statuses == {"0": "completed", "1": "completed", "2": "failed", "3": "failed"}
    failed = json.loads((tmp_path / "3" / "results.json").read_text())
    assert "data.val_size" in failed["error"]
    assert "2 completed, 2 failed" in proc.stdout


def test_deterministic_runs_are_identical(tmp_path):
    overrides = ["deterministic=true", "data.augment=true", "norm=bin"]
    for name in ("a", "b"):
        proc = train(tmp_path / name, *overrides)
        assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = read_results(tmp_path / "a"), read_results(tmp_path / "b")
    assert a["metrics"] == b["metrics"]
    for key in ("train/loss_step", "val/loss", "val/feat_q99"):
        assert csv_column(tmp_path / "a", key) == csv_column(tmp_path / "b", key)


def _assert_clear_error(proc, *needles: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in out, out[-3000:]
    flat = " ".join(out.split())  # messages are wrapped to the terminal width
    for needle in needles:
        assert needle in flat, f"{needle!r} not in:\n{out[-3000:]}"


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("model=foo", ("model", "resnet", "simplenn")),
        ("data=foo", ("data", "cifar10", "synthetic")),
        ("optimizer=foo", ("optimizer", "sgd", "adamw")),
        ("norm=foo", ("norm", "bn", "gn")),
    ],
)
def test_unknown_names_list_the_choices(tmp_path, override, needles):
    _assert_clear_error(train(tmp_path, override), *needles)


def test_folder_root_missing(tmp_path):
    proc = train(tmp_path / "run", "data=folder", f"data.root={tmp_path / 'nowhere'}")
    _assert_clear_error(proc, "nowhere", "data.root")


def test_folder_without_images(tmp_path):
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
    proc = train(tmp_path / "run", "data=folder", f"data.root={tmp_path / 'imgs'}")
    _assert_clear_error(proc, "no images")


def test_folder_with_a_single_class(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "imgs" / split / "cat").mkdir(parents=True)
    proc = train(tmp_path / "run", "data=folder", f"data.root={tmp_path / 'imgs'}")
    _assert_clear_error(proc, "at least two")


def test_folder_with_a_non_image_file(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = tmp_path / "imgs" / split / cls
            folder.mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(folder / f"{i}.png")
    (tmp_path / "imgs" / "train" / "cat" / "broken.png").write_text("not an image")
    proc = train(
        tmp_path / "run", "data=folder", f"data.root={tmp_path / 'imgs'}", "data.val_size=0.25"
    )
    _assert_clear_error(proc, "broken.png")


def test_cifar_absent_offline(tmp_path):
    proc = train(
        tmp_path / "run", "data=cifar10", f"paths.data_dir={tmp_path}", "data.download=false"
    )
    _assert_clear_error(proc, "cifar-10", "data=synthetic", "data=folder")


def test_resume_with_nothing_to_resume(tmp_path):
    _assert_clear_error(train(tmp_path, "resume=true"), "nothing to resume", "hydra.run.dir")


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    proc = train(blocker / "run")
    _assert_clear_error(proc, "cannot write the output directory", "hydra.run.dir")
