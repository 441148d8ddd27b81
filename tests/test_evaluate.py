"""project.evaluate / project.export / project.checkpoints on a real tiny checkpoint.

One training run (module fixture) makes the checkpoint; the CLIs run as subprocesses where the
process behaviour matters (exit code, no traceback) and in-process elsewhere, to stay fast.
"""

from __future__ import annotations

import csv
import json
import re
import zipfile
from pathlib import Path

import pytest
import torch

from project.checkpoints import FORMAT, load_model
from project.errors import UserError
from tests.helpers import cli, read_results, run_main, train

DATA = ["data=synthetic", "data.train_size=160", "data.test_size=64", "data.val_size=0.25"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("evaluate") / "run"
    proc = train(run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "checkpoints" / "best.ckpt").is_file()
    return run


def true_test_labels() -> torch.Tensor:
    """The synthetic test split's labels, computed independently of project.evaluate."""
    from project.data.synthetic import make_synthetic

    # SyntheticDataModule: test split = make_synthetic(test_size, seed * 2 + 1, noise, image_size).
    _, labels = make_synthetic(64, 1, 0.1, 32)
    return labels


def reference_softmax(run_dir: Path) -> torch.Tensor:
    """(64, 10) softmax of the checkpoint's network on the synthetic test images, normalised by
    hand with the checkpoint's data_stats."""
    from project.data.synthetic import make_synthetic

    net, meta = load_model(run_dir / "checkpoints" / "best.ckpt")
    images, _ = make_synthetic(64, 1, 0.1, 32)
    stats = meta["data_stats"]
    x = (images.float() / 255 - torch.tensor(stats["mean"])[:, None, None]) / torch.tensor(
        stats["std"]
    )[:, None, None]
    with torch.no_grad():
        return net(x).softmax(1)


def test_evaluate_reproduces_training_test_accuracy(run_dir):
    proc = cli("project.evaluate", f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}", *DATA)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = run_dir / "eval_synthetic_test"
    metrics = json.loads((out / "metrics.json").read_text())
    expected = read_results(run_dir)["metrics"]
    assert metrics["accuracy"] == pytest.approx(expected["test/acc"], abs=1e-6)
    assert metrics["f1_macro"] == pytest.approx(expected["test/f1_macro"], abs=1e-6)
    assert metrics["n_images"] == 64 and metrics["dataset"] == "synthetic"
    assert metrics["loss"] > 0 and "accuracy" in proc.stdout

    rows = list(csv.reader((out / "predictions.csv").open()))
    names = metrics["class_names"]
    header = ["id", "label", "class_name", "true_label", "true_class_name"]
    assert rows[0] == header + [f"p_{name}" for name in names] and len(rows) == 65
    assert [int(r[0]) for r in rows[1:]] == list(range(64))
    assert all(names[int(r[1])] == r[2] for r in rows[1:])
    labels = true_test_labels()
    correct = sum(int(r[1]) == int(y) for r, y in zip(rows[1:], labels))
    assert metrics["accuracy"] == pytest.approx(correct / 64, abs=1e-9)
    # The true labels are the dataset's; the probabilities are the network's softmax, computed
    # here from the images and the checkpoint's statistics, and the label is their argmax.
    assert [int(r[3]) for r in rows[1:]] == labels.tolist()
    assert all(names[int(r[3])] == r[4] for r in rows[1:])
    probs = torch.tensor([[float(v) for v in r[5:]] for r in rows[1:]])
    torch.testing.assert_close(probs, reference_softmax(run_dir), rtol=0, atol=1e-6)
    assert [int(r[1]) for r in rows[1:]] == probs.argmax(1).tolist()

    confusion = list(csv.reader((out / "confusion_matrix.csv").open()))
    assert len(confusion) == 11 and sum(int(v) for r in confusion[1:] for v in r[1:]) == 64
    assert (out / "confusion_matrix.png").stat().st_size > 0


def test_evaluate_runs_the_network_compiled_and_channels_last_as_asked(run_dir, tmp_path):
    """`compile=true channels_last=true` (how a compile=true run computed its records): the
    module is compiled, its inputs and weights channels_last, and the outputs the same network's;
    metrics.json says how it ran. An exported .pt and the .ckpt go through both loaders."""
    import torch._dynamo

    from project.checkpoints import export_weights, load_classifier

    exported = export_weights(run_dir / "checkpoints" / "best.ckpt", tmp_path / "model.pt")
    for path in (run_dir / "checkpoints" / "best.ckpt", Path(exported["path"])):
        module, _ = load_classifier(path, compile=True, channels_last=True)
        assert isinstance(module._net, torch._dynamo.eval_frame.OptimizedModule), path
        weight = next(p for p in module.model.parameters() if p.dim() == 4)
        assert weight.is_contiguous(memory_format=torch.channels_last), path
        plain, _ = load_classifier(path)
        assert plain._net is plain.model  # the default: eager, as before

    out = tmp_path / "eval"
    args = [f"ckpt={exported['path']}", *DATA, "compile=true", "channels_last=true", f"out={out}"]
    proc = cli("project.evaluate", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["compile"] is True and metrics["channels_last"] is True
    assert metrics["precision"] == "32-true"
    assert metrics["accuracy"] == pytest.approx(read_results(run_dir)["metrics"]["test/acc"])
    rows = list(csv.reader((out / "predictions.csv").open()))
    probs = torch.tensor([[float(v) for v in r[5:]] for r in rows[1:]])
    torch.testing.assert_close(probs, reference_softmax(run_dir), rtol=0, atol=1e-5)


def test_a_compile_setting_that_is_none_is_one_paragraph(run_dir, capsys):
    from project import evaluate

    args = [f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}", *DATA, "compile=fast"]
    code, text = run_main(evaluate, args, capsys)
    text = " ".join(text.split())
    assert code == 2 and "compile=fast is not a compile setting" in text, text
    assert "reduce-overhead" in text and "Traceback" not in text


def test_export_round_trip(run_dir, tmp_path, capsys):
    from project import evaluate, export
    from project.models.factory import build_model
    from project.training.module import ImageClassifier

    ckpt = run_dir / "checkpoints" / "best.ckpt"
    out = tmp_path / "model.pt"
    code, text = run_main(export, [f"ckpt={ckpt}", f"out={out}"], capsys)
    assert code == 0, text
    assert re.search(r"\d+\.\d{3} MB", text) and "parameters" in text, text

    # Weights-only and Lightning-free: plain containers, rebuilt with project.models alone.
    blob = torch.load(out, map_location="cpu", weights_only=True)
    assert blob["format"] == FORMAT and blob["num_classes"] == 10
    assert len(blob["class_names"]) == 10 and blob["data_stats"]["normalize"] == "train"
    net = build_model(blob["model"], blob["norm"], blob["num_classes"])
    net.load_state_dict(blob["state_dict"])
    net.eval()
    module = ImageClassifier.load_from_checkpoint(ckpt, map_location="cpu").eval()
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = module(x)
        torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-6)
        loaded, meta = load_model(out)
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=1e-6)
    assert meta["kind"] == "export"

    # Evaluating the exported file gives the checkpoint's metrics.
    code, text = run_main(evaluate, [f"ckpt={out}", *DATA, f"out={tmp_path / 'eval'}"], capsys)
    assert code == 0, text
    exported = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    metrics = read_results(run_dir)["metrics"]
    assert exported["accuracy"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert exported["checkpoint_kind"] == "export"


def bad_files(tmp_path: Path, run_dir: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("random.ckpt", "notes.ckpt", "archive.ckpt")}
    paths["random.ckpt"].write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy())
    paths["notes.ckpt"].write_text("these are not weights\n")
    with zipfile.ZipFile(paths["archive.ckpt"], "w") as zf:
        zf.writestr("readme.txt", "a zip, but not a torch file")
    ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    paths["bare.pt"] = tmp_path / "bare.pt"
    torch.save({k[6:]: v for k, v in ckpt["state_dict"].items()}, paths["bare.pt"])
    # Weights of ResNet n=1 stored with hyperparameters that say n=2.
    ckpt["hyper_parameters"]["model"] = {**ckpt["hyper_parameters"]["model"], "n": 2}
    paths["other_arch.ckpt"] = tmp_path / "other_arch.ckpt"
    torch.save(ckpt, paths["other_arch.ckpt"])
    return paths


ERRORS = {
    "missing.ckpt": "does not exist",
    "random.ckpt": "is not a checkpoint",
    "notes.ckpt": "is not a checkpoint",
    "archive.ckpt": "is not a checkpoint",
    "bare.pt": "has no hyperparameters",
    "other_arch.ckpt": "checkpoint of another architecture",
}


def test_bad_checkpoints_raise_user_errors(run_dir, tmp_path, capsys):
    from project import evaluate, export

    files = bad_files(tmp_path, run_dir)
    for name, expected in ERRORS.items():
        path = files.get(name, tmp_path / name)
        with pytest.raises(UserError, match=expected):
            load_model(path)
        for module in (evaluate, export):
            args = [f"ckpt={path}", *(DATA if module is evaluate else [])]
            code, text = run_main(module, args, capsys)
            assert code == 2 and expected in text.replace("\n", " "), (name, text)
            assert "Traceback" not in text
    # The architecture mismatch names the offending keys and shapes.
    with pytest.raises(UserError, match=r"missing from the checkpoint: stages\.0\.1\."):
        load_model(files["other_arch.ckpt"])


def test_no_checkpoint_is_one_paragraph_with_the_command(capsys):
    from project import evaluate, export

    for module, name in ((evaluate, "project.evaluate"), (export, "project.export")):
        code, text = run_main(module, [], capsys)
        text = " ".join(text.split())
        assert code == 2 and "No checkpoint given: pass ckpt=PATH" in text, text
        assert f"python -m {name} ckpt=" in text and "Traceback" not in text


def test_cli_errors_in_a_real_process(run_dir, tmp_path):
    """Exit code and no traceback as a user sees them: not a checkpoint, wrong architecture."""
    notes = tmp_path / "notes.ckpt"
    notes.write_text("not a checkpoint")
    proc = cli("project.export", f"ckpt={notes}")
    text = (proc.stderr + proc.stdout).replace("\n", " ")
    assert proc.returncode == 2 and "is not a checkpoint" in text
    assert "project.train" in text and "Traceback" not in text

    ckpt = run_dir / "checkpoints" / "best.ckpt"
    arch = ["model=resnet", "model.n=1", "model.widths=[8,16,32]"]
    proc = cli("project.evaluate", f"ckpt={ckpt}", *DATA, *arch)
    text = (proc.stderr + proc.stdout).replace("\n", " ")
    assert proc.returncode == 2 and "checkpoint of another architecture" in text
    assert "shape mismatch" in text and "Traceback" not in text


def test_number_of_classes_mismatch(run_dir, tmp_path, capsys):
    from PIL import Image

    from project import evaluate

    for split in ("train", "test"):
        for name in ("cat", "dog", "fox"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / split / name / "0.png")
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    code, text = run_main(
        evaluate, [f"ckpt={ckpt}", "data=folder", f"data.root={tmp_path}"], capsys
    )
    assert code == 2 and "classifies 10 classes" in text and "has 3" in text.replace("\n", " ")
    assert "Traceback" not in text
