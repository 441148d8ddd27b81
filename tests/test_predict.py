"""project.predict on unlabeled images of any size and mode, with a real tiny checkpoint.

The probabilities are checked against the network's softmax computed here independently: the
image prepared by hand with PIL (RGB, bilinear resize, /255, the checkpoint's data_stats).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from project.checkpoints import load_model
from tests.helpers import cli, run_main, train


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("predict") / "run"
    proc = train(run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run / "checkpoints" / "best.ckpt"


def make_images(folder: Path) -> list[str]:
    """Mixed sizes and modes, a subfolder and a non-image file; the images' relative paths in
    sorted order."""
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    pixels = rng.integers(0, 256, (48, 48, 4), dtype=np.uint8)
    Image.fromarray(pixels[:20, :20, :3]).save(folder / "rgb_20x20.png")
    Image.fromarray(pixels[:40, :48, 0]).save(folder / "gray_48x40.PNG")  # (W, H) = (48, 40)
    Image.fromarray(pixels[:32, :32]).save(folder / "sub" / "rgba_32x32.png")
    Image.fromarray(pixels[:30, :45, :3]).save(folder / "sub" / "photo.jpg", quality=90)
    Image.fromarray(pixels[:32, :32, :3]).convert("P").save(folder / "palette.gif")
    (folder / "notes.txt").write_text("not an image")
    return ["gray_48x40.PNG", "palette.gif", "rgb_20x20.png", "sub/photo.jpg", "sub/rgba_32x32.png"]


def reference_softmax(ckpt: Path, files: list[Path]) -> torch.Tensor:
    """(N, K) softmax of the checkpoint's network on `files`, each prepared by hand."""
    net, meta = load_model(ckpt)
    stats = meta["data_stats"]
    size = stats["image_size"]
    mean = torch.tensor(stats["mean"]).view(3, 1, 1)
    std = torch.tensor(stats["std"]).view(3, 1, 1)
    batch = []
    for path in files:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            x = torch.tensor(np.array(im)).permute(2, 0, 1).float() / 255
        batch.append((x - mean) / std)
    with torch.no_grad():
        return net(torch.stack(batch)).softmax(1)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(path.open()))
    return rows[0], rows[1:]


def test_predict_folder_of_mixed_images(ckpt, tmp_path, capsys):
    from project import predict

    folder = tmp_path / "images"
    names = make_images(folder)
    code, text = run_main(predict, [f"ckpt={ckpt}", f"input={folder}", "batch_size=2"], capsys)
    assert code == 0, text
    assert "predicted 5 images" in text and "1 non-image file skipped" in text, text

    header, rows = read_csv(folder / "predictions.csv")
    class_names = load_model(ckpt)[1]["class_names"]
    assert header == ["file", "predicted_class", "class_name"] + [f"p_{c}" for c in class_names]
    assert [r[0] for r in rows] == names  # sorted, relative to the input folder, recursive
    probs = torch.tensor([[float(v) for v in r[3:]] for r in rows])
    torch.testing.assert_close(probs.sum(1), torch.ones(5), rtol=0, atol=1e-6)
    expected = reference_softmax(ckpt, [folder / n for n in names])
    torch.testing.assert_close(probs, expected, rtol=0, atol=1e-6)
    assert [int(r[1]) for r in rows] == expected.argmax(1).tolist()
    assert all(class_names[int(r[1])] == r[2] for r in rows)


def test_predict_in_bf16_matches_float32_within_bf16_precision(ckpt, tmp_path, capsys):
    from project import predict

    folder = tmp_path / "images"
    make_images(folder)
    probs = {}
    for precision in ("32-true", "bf16-mixed"):
        out = tmp_path / f"{precision}.csv"
        args = [f"ckpt={ckpt}", f"input={folder}", f"out={out}", f"precision={precision}"]
        code, text = run_main(predict, args, capsys)
        assert code == 0, text
        probs[precision] = torch.tensor([[float(v) for v in r[3:]] for r in read_csv(out)[1]])
    assert not torch.equal(probs["32-true"], probs["bf16-mixed"])  # bf16 really ran
    torch.testing.assert_close(probs["bf16-mixed"], probs["32-true"], rtol=0, atol=0.05)


def test_predict_single_image_from_the_command_line(ckpt, tmp_path):
    image = tmp_path / "cat.jpeg"
    Image.fromarray(np.full((64, 50, 3), 200, dtype=np.uint8)).save(image)
    proc = cli("project.predict", f"ckpt={ckpt}", f"input={image}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "cat_predictions.csv"  # the default: beside the image
    assert str(out) in proc.stdout and not (tmp_path / ".hydra").exists()
    header, rows = read_csv(out)
    assert len(rows) == 1 and rows[0][0] == "cat.jpeg"
    probs = torch.tensor([float(v) for v in rows[0][3:]])
    torch.testing.assert_close(probs, reference_softmax(ckpt, [image])[0], rtol=0, atol=1e-6)


def test_predict_errors_are_one_paragraph(ckpt, tmp_path, capsys):
    from project import predict

    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.md").write_text("no images here")
    image = tmp_path / "fine.png"
    Image.new("RGB", (8, 8)).save(image)
    notes = tmp_path / "notes.ckpt"
    notes.write_text("not a checkpoint")
    good = f"input={image}"
    cases = {
        "no ckpt": ([good], "No checkpoint given"),
        "no input": ([f"ckpt={ckpt}"], "No input given"),
        "missing ckpt": ([f"ckpt={tmp_path / 'nope.ckpt'}", good], "does not exist"),
        "not a ckpt": ([f"ckpt={notes}", good], "is not a checkpoint"),
        "missing input": ([f"ckpt={ckpt}", f"input={tmp_path / 'nope'}"], "does not exist"),
        "empty folder": ([f"ckpt={ckpt}", f"input={empty}"], "holds no image files (1 other"),
        "not an image": ([f"ckpt={ckpt}", f"input={notes}"], "is not an image file"),
    }
    for case, (args, expected) in cases.items():
        code, text = run_main(predict, args, capsys)
        message = text[text.index("[normres] error:") :] if "[normres] error:" in text else text
        assert code == 2 and expected in message.replace("\n", " "), (case, text)
        assert "Traceback" not in text and "\n\n" not in message.strip(), (case, text)


def test_unreadable_image_stops_with_its_name(ckpt, tmp_path):
    """In a real process: the error is raised inside trainer.predict's loop and must still come
    out as one paragraph naming the file, exit code 2, and no CSV."""
    Image.new("RGB", (8, 8)).save(tmp_path / "fine.png")
    broken = tmp_path / "truncated.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    proc = cli("project.predict", f"ckpt={ckpt}", f"input={tmp_path}")
    message = proc.stderr[proc.stderr.index("[normres] error:") :]
    assert proc.returncode == 2 and f"Cannot read the image file {broken}" in message.replace(
        "\n", " "
    ), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "\n\n" not in message.strip()
    assert not (tmp_path / "predictions.csv").exists()
