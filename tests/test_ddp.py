"""Synchronised BatchNorm / Batch-Instance norm across processes (CPU, gloo).

Two processes each get part of a fixed random batch (halves, and an uneven 5/3 split); with
`sync=True` every rank must produce exactly what one process computes on the concatenated batch
(`sync=False`): outputs, input gradients, the rank-summed parameter gradients, and the moving
statistics (unbiased with the global count).
"""

from __future__ import annotations

import os
import socket
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from project.nn import BatchInstanceNorm2d, BatchNorm2d
from tests.helpers import TINY, read_results, train

WORLD = 2
SHAPE = (8, 6, 5, 7)  # (N, C, H, W) of the full batch, split over the ranks
STEPS = 3
TOL = 1e-10
KINDS = ("bn", "bin")
# Samples per rank: halves as in DDP, and an uneven split (a short last batch on one rank).
SPLITS = {"even": (4, 4), "uneven": (5, 3)}


def _part(split: str, rank: int) -> slice:
    sizes = SPLITS[split]
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


assert all(sum(sizes) == SHAPE[0] and len(sizes) == WORLD for sizes in SPLITS.values())

needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is unavailable",
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_layer(kind: str, sync: bool) -> BatchNorm2d:
    """A layer with non-trivial (seeded, hence identical everywhere) parameters, in float64."""
    c = SHAPE[1]
    gen = torch.Generator().manual_seed(1234)
    cls = BatchNorm2d if kind == "bn" else BatchInstanceNorm2d
    layer = cls(c, sync=sync).double()
    with torch.no_grad():
        layer.weight.copy_(1.0 + 0.5 * torch.randn(c, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.randn(c, generator=gen, dtype=torch.float64))
        if kind == "bin":
            layer.rho.copy_(torch.rand(c, generator=gen, dtype=torch.float64))
    return layer


def _data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(x, g) full batches for each step: input and upstream gradient, float64."""
    n, c, h, w = SHAPE
    gen = torch.Generator().manual_seed(0)
    out = []
    for step in range(STEPS):
        # Different offsets/scales per channel and step, so the moments are non-trivial.
        shift = torch.randn(1, c, 1, 1, generator=gen, dtype=torch.float64) * (step + 1)
        x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64) * 2.0 + shift
        g = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
        out.append((x, g))
    return out


def _run(layer: BatchNorm2d, data, part: slice) -> dict:
    """Train-mode steps on x[part]; per step the output, input and parameter gradients; then the
    moving statistics and an eval-mode output."""
    params = dict(layer.named_parameters())
    steps = []
    for x_full, g_full in data:
        x = x_full[part].clone().requires_grad_(True)
        layer.zero_grad(set_to_none=True)
        y = layer(x)
        (y * g_full[part]).sum().backward()
        grads = {name: p.grad.detach().clone() for name, p in params.items()}
        steps.append({"y": y.detach(), "dx": x.grad.detach(), "grads": grads})
    layer.eval()
    with torch.no_grad():
        y_eval = layer(data[0][0][part])
    layer.train()
    return {
        "steps": steps,
        "running_mean": layer.running_mean.clone(),
        "running_var": layer.running_var.clone(),
        "num_batches_tracked": int(layer.num_batches_tracked),
        "y_eval": y_eval,
    }


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=WORLD)
        data = _data()
        results = {}
        for split in SPLITS:
            for kind in KINDS:
                res = _run(_make_layer(kind, sync=True), data, _part(split, rank))
                for step in res["steps"]:
                    for grad in step["grads"].values():
                        dist.all_reduce(grad)  # SUM: what DDP's gradient averaging builds on
                results[split, kind] = res
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()
        dist.destroy_process_group()
    except BaseException:
        (Path(out_dir) / f"rank{rank}.err").write_text(traceback.format_exc())
        raise


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory) -> list[dict]:
    """Run both ranks once (module scope: process start-up dominates the cost)."""
    out_dir = tmp_path_factory.mktemp("ddp")
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, port, str(out_dir))) for r in range(WORLD)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():  # a hung collective: do not leave the process behind
            p.kill()
            p.join()
    errors = "\n".join(f.read_text() for f in sorted(out_dir.glob("rank*.err")))
    codes = [p.exitcode for p in procs]
    assert codes == [0] * WORLD and not errors, f"workers failed (exit codes {codes}):\n{errors}"
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(WORLD)]


def _close(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    assert got.dtype == torch.float64, what
    assert got.shape == want.shape, what
    err = (got - want).abs().max().item()
    assert err <= TOL, f"{what}: max abs error {err:.3g}"


@needs_gloo
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("kind", KINDS)
def test_sync_matches_single_process_on_full_batch(ddp_results, kind, split):
    ref = _run(_make_layer(kind, sync=False), _data(), slice(None))
    for rank, results in enumerate(ddp_results):
        res = results[split, kind]
        part = _part(split, rank)
        for step, (got, want) in enumerate(zip(res["steps"], ref["steps"])):
            where = f"{kind} {split} rank {rank} step {step}"
            _close(got["y"], want["y"][part], f"{where}: output")
            _close(got["dx"], want["dx"][part], f"{where}: input gradient")
            assert set(got["grads"]) == set(want["grads"])
            for name, grad in got["grads"].items():
                _close(grad, want["grads"][name], f"{where}: rank-summed grad of {name}")
        _close(res["running_mean"], ref["running_mean"], f"{kind} rank {rank}: running_mean")
        _close(res["running_var"], ref["running_var"], f"{kind} rank {rank}: running_var")
        assert res["num_batches_tracked"] == ref["num_batches_tracked"] == STEPS
        _close(res["y_eval"], ref["y_eval"][part], f"{kind} rank {rank}: eval output")


@needs_gloo
def test_sync_results_are_not_trivially_equal_to_local_statistics(ddp_results):
    """Guard against a vacuous pass: per-rank (unsynced) statistics give different results."""
    data = _data()
    for kind in KINDS:
        local = _run(_make_layer(kind, sync=False), data, _part("even", 0))
        synced = ddp_results[0]["even", kind]
        assert (local["steps"][0]["y"] - synced["steps"][0]["y"]).abs().max() > 1e-3
        assert (local["running_var"] - synced["running_var"]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_sync_without_process_group_equals_local(kind):
    assert not (dist.is_available() and dist.is_initialized())
    data = _data()
    got = _run(_make_layer(kind, sync=True), data, slice(None))
    want = _run(_make_layer(kind, sync=False), data, slice(None))
    for step, (a, b) in enumerate(zip(got["steps"], want["steps"])):
        _close(a["y"], b["y"], f"{kind} step {step}: output")
        _close(a["dx"], b["dx"], f"{kind} step {step}: input gradient")
        for name, grad in a["grads"].items():
            _close(grad, b["grads"][name], f"{kind} step {step}: grad of {name}")
    _close(got["running_mean"], want["running_mean"], f"{kind}: running_mean")
    _close(got["running_var"], want["running_var"], f"{kind}: running_var")
    _close(got["y_eval"], want["y_eval"], f"{kind}: eval output")


@needs_gloo
@pytest.mark.slow
@pytest.mark.parametrize("norm", ["bn", "bin"])
def test_cli_ddp_on_cpu(tmp_path, norm):
    """`trainer=ddp` on 2 CPU processes through the real CLI: runs, and writes results.json."""
    run_dir = tmp_path / "run"
    tiny = [o for o in TINY if not o.startswith(("trainer=", "trainer.max_epochs="))]
    proc = train(
        run_dir,
        *tiny,
        f"norm={norm}",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        tiny=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr  # the second rank really joined
    assert (run_dir / "results.json").is_file()
    assert read_results(run_dir)
