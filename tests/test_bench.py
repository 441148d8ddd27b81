"""`python -m project.bench`: quick runs produce their tables; the reference model is faithful.

No timing assertions: timings on a shared CI machine say nothing reliable.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from project.bench.layers import NORMS, QUICK_SHAPES
from project.bench.model_step import bench_layout, bench_model_step
from project.bench.reference import reference_like
from project.bench.report import write_tables
from project.bench.timing import compile_all, sides_to_time, timings_and_ratios
from project.models import ResNet
from project.nn import norm_layer

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_writes_tables(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "project.bench", "--quick", "--parts", "layer,model", "--out", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "threads: " in proc.stdout
    with open(out / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    layer = {(r["norm"], r["shape"], r["mode"]) for r in rows if r["part"] == "layer"}
    want = {
        (kind, f"8x{c}x{hw}x{hw}", mode)
        for kind in NORMS
        for c, hw in QUICK_SHAPES
        for mode in ("train", "eval")
    }
    assert layer == want
    assert {r["norm"] for r in rows if r["part"] == "model"} == set(NORMS)
    for r in rows:
        assert float(r["ratio"]) > 0
        assert float(r["scratch_ms"]) > 0 and float(r["torch_ms"]) > 0
    md = (out / "bench.md").read_text()
    assert "| ratio |" in md and "Model step" in md


def test_quick_run_covers_every_precision_layout_and_batch_size(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "project.bench", "--quick", "--parts", "layer,model,layout"]
        + ["--norms", "bn,gn", "--precision", "fp32,bf16", "--layouts", "nchw,channels_last"]
        + ["--out", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    grid = {(p, lay) for p in ("fp32", "bf16") for lay in ("nchw", "channels_last")}
    for part in ("layer", "model"):
        got = {(r["precision"], r["layout"]) for r in rows if r["part"] == part}
        assert got == grid, part
    model = [r for r in rows if r["part"] == "model"]
    assert len(model) == 2 * 4
    for r in model:
        assert float(r["ratio_vs_torch_bn"]) > 0 and float(r["torch_bn_ms"]) > 0
        if r["norm"] == "bn":
            assert r["ratio_vs_torch_bn"] == r["ratio"]
    layout = [r for r in rows if r["part"] == "layout"]
    assert {(r["norm"], r["precision"]) for r in layout} == {
        (k, p) for k in ("bn", "gn") for p in ("fp32", "bf16")
    }
    for r in layout:
        assert float(r["channels_last_ms"]) > 0 and float(r["nchw_ms"]) > 0
    md = (out / "bench.md").read_text()
    assert "cpu_bf16_path" in md and "loadavg_start" in md
    assert "| precision | layout |" in md


@pytest.mark.parametrize(
    "flag", [["--precision", "int8"], ["--layouts", "nhwc"], ["--batch-size", "8,x"]]
)
def test_bad_grid_options_are_errors(flag):
    proc = subprocess.run(
        [sys.executable, "-m", "project.bench", *flag],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "error" in proc.stderr


def test_quick_framework_and_data_parts_write_rows(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "project.bench", "--quick", "--parts", "framework,data"]
        + ["--threads", "1", "--out", out],  # 1 thread: steadier on a busy 2-core machine
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    framework = [r for r in rows if r["part"] == "framework"]
    data = [r for r in rows if r["part"] == "data"]
    assert len(framework) == 1 and len(rows) == 3
    assert framework[0]["mode"] == "train epoch" and "Lightning" in framework[0]["timed"]
    assert ["B=8" in data[0]["shape"], "B=128" in data[1]["shape"]] == [True, True]
    for row, keys in [(framework[0], ("lightning_ms", "bare_ms"))] + [
        (r, ("pipeline_img_s", "model_img_s")) for r in data
    ]:
        for key in (*keys, "ratio"):
            assert math.isfinite(float(row[key])) and float(row[key]) > 0, (key, row)
    md = (out / "bench.md").read_text()
    assert "## Framework" in md and "## Data" in md and "| lightning_ms | bare_ms |" in md


def test_missing_data_folder_is_a_one_line_error(tmp_path):
    missing = tmp_path / "no-such-folder"
    proc = subprocess.run(
        [sys.executable, "-m", "project.bench", "--parts", "layer,framework", "--data", missing],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert f"--data {missing}: no such folder" in proc.stderr
    assert "layer" not in proc.stdout  # checked before any part ran


def test_tables_hold_each_parts_own_columns(tmp_path):
    rows = [
        {"part": "model", "norm": "bn", "shape": "s", "mode": "m", "timed": "t"}
        | {"scratch_ms": 2.0, "torch_ms": 1.0, "ratio": 2.0},
        {"part": "data", "norm": "bn", "shape": "s", "mode": "m", "timed": "t"}
        | {"pipeline_img_s": 900, "model_img_s": 100, "ratio": 9.0, "note": "setup 1 s"},
    ]
    md = write_tables(rows, {"threads": 2}, tmp_path)
    with open(tmp_path / "bench.csv") as f:
        header, model, data = list(csv.reader(f))
    assert header[-2:] == ["ratio", "note"] and "pipeline_img_s" in header
    assert model[header.index("pipeline_img_s")] == "" and data[header.index("torch_ms")] == ""
    assert data[header.index("ratio")] == "9.000"
    assert "| norm | shape | mode | timed | scratch_ms | torch_ms | ratio |" in md
    assert "| pipeline_img_s | model_img_s | ratio | note |" in md


def test_unknown_part_is_an_error():
    proc = subprocess.run(
        [sys.executable, "-m", "project.bench", "--parts", "layers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "unknown part" in proc.stderr


@pytest.mark.parametrize("kind", NORMS)
def test_reference_resnet_matches_scratch_resnet(kind):
    """Same weights -> same logits and gradients: the benchmark compares like with like."""
    torch.manual_seed(0)
    ours = ResNet(1, norm_layer=norm_layer(kind)).double().train()
    ref = reference_like(ours, kind).double().train()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    y_ours, y_ref = ours(x), ref(x)
    torch.testing.assert_close(y_ours, y_ref, atol=1e-10, rtol=1e-10)
    y_ours.sum().backward()
    y_ref.sum().backward()
    torch.testing.assert_close(ours.stem[0].weight.grad, ref.stem[0].weight.grad)


def test_compiled_rows_also_compare_with_torch_uncompiled():
    row = timings_and_ratios({"scratch": 0.002, "torch": 0.001, "torch_eager": 0.004})
    assert list(row) == ["scratch_ms", "torch_ms", "torch_eager_ms", "ratio_vs_eager", "ratio"]
    assert row["ratio"] == pytest.approx(2.0) and row["ratio_vs_eager"] == pytest.approx(0.5)
    assert row["torch_eager_ms"] == pytest.approx(4.0)
    assert "ratio_vs_eager" not in timings_and_ratios({"scratch": 1.0, "torch": 1.0})
    row = timings_and_ratios({"scratch": 3.0, "torch": 2.0, "torch_bn": 1.5})
    assert row["ratio_vs_torch_bn"] == pytest.approx(2.0) and row["ratio"] == pytest.approx(1.5)


def test_compile_failure_falls_back_to_eager_with_a_note():
    """A toolchain without a working compiler must not abort a long benchmark run: the eager
    modules come back, labelled, and nothing claims to be compiled."""
    scratch, ref = torch.nn.Identity(), torch.nn.Identity()

    def warm(module):
        raise RuntimeError("no C++ compiler")

    got, note = compile_all({"scratch": scratch, "torch": ref}, warm)
    assert got["scratch"] is scratch and got["torch"] is ref
    assert note == "compile failed: RuntimeError"


def test_sides_to_time_names_what_is_timed():
    scratch, ref, eager = torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity()
    sides, label = sides_to_time(scratch, ref, lambda m: None, None)
    assert sides == {"scratch": scratch, "torch": ref} and label == ""

    def broken(module):
        raise RuntimeError("no C++ compiler")

    sides, label = sides_to_time(scratch, ref, broken, eager)
    assert sides == {"scratch": scratch, "torch": ref}  # no torch_eager: nothing was compiled
    assert label == " (compile failed: RuntimeError)"


def test_compiled_layout_rows_time_compiled_models(monkeypatch):
    """--parts layout --compile: both layouts compiled, and each warmed (compiled) on the batch
    of its own layout, so the timed steps run the graph compiled for that layout."""
    warmed = []  # (model is channels_last, its batch is channels_last), per compiled graph

    def compile_eagerly(module, **kwargs):  # dynamo without inductor: seconds, not minutes
        model_cl = module.stem[0].weight.is_contiguous(memory_format=torch.channels_last)

        def backend(graph, example_inputs):
            tensors = [t for t in example_inputs if isinstance(t, torch.Tensor)]  # not SymInts
            batch = [t for t in tensors if tuple(t.shape) == (2, 3, 8, 8)]
            cl = batch[0].is_contiguous(memory_format=torch.channels_last)
            warmed.append((model_cl, cl))
            return graph.forward

        return real_compile(module, backend=backend)

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", compile_eagerly)
    rows = bench_layout(
        1, 2, 1, torch.device("cpu"), norms=("gn",), image_size=8, warmup=1, compile_model=True
    )
    assert set(warmed) == {(False, False), (True, True)}
    assert rows[0]["timed"].endswith(" compiled") and rows[0]["ratio"] > 0


def test_compiled_model_rows_compare_with_torch_bn_compiled_too(monkeypatch):
    """--parts model --compile: the "as cheap as BN?" ratio sets the compiled scratch net
    against torch's BatchNorm net compiled the same way, not against torch as it ships."""
    compiled_norms = []  # the norm classes of every net handed to torch.compile

    def compile_eagerly(module, **kwargs):  # dynamo without inductor: seconds, not minutes
        compiled_norms.append(
            {type(m).__name__ for m in module.modules() if "Norm" in type(m).__name__}
        )
        return real_compile(module, backend="eager")

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", compile_eagerly)
    rows = bench_model_step(
        1, 2, 1, torch.device("cpu"), norms=("gn",), image_size=8, warmup=1, compile_model=True
    )
    assert {"BatchNorm2d"} in compiled_norms and {"GroupNorm"} in compiled_norms
    assert len(compiled_norms) == 3  # scratch GN, torch's GN, torch's BN
    row = rows[0]
    assert row["timed"].endswith(" compiled") and row["torch_bn_ms"] > 0
    assert row["ratio_vs_torch_bn"] == pytest.approx(row["scratch_ms"] / row["torch_bn_ms"])
