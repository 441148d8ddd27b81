"""The training side of issue 13: warm-up, zero-init residuals, BIN's gate group, the clean
train accuracy and the saved test predictions."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn

from project.models import ResNet
from project.nn import BatchInstanceNorm2d, norm_layer
from project.training import schedulers
from project.training.optim import param_groups
from tests.helpers import read_results, train


def _lrs(scheduler_fn, steps: int, base_lr: float = 0.1, **kwargs) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    sched = scheduler_fn(opt, **kwargs)["scheduler"]
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("name", ["multistep", "step", "cosine", "constant"])
def test_warmup_is_linear_then_the_schedule(name):
    spe, warm = 10, 2  # 10 steps per epoch, 2 warm-up epochs -> 20 warm-up steps
    fn = getattr(schedulers, name)
    with_warmup = _lrs(fn, 60, max_epochs=6, steps_per_epoch=spe, warmup_epochs=warm)
    plain = _lrs(fn, 60, max_epochs=6, steps_per_epoch=spe)
    for s in range(60):
        factor = min(1.0, (s + 1) / (warm * spe))
        assert with_warmup[s] == pytest.approx(plain[s] * factor, rel=1e-12)
    # the schedule is a function of the epoch: constant within an epoch
    assert all(plain[e * spe] == plain[e * spe + k] for e in range(6) for k in range(spe))


def test_multistep_steps_at_its_milestones():
    lrs = _lrs(schedulers.multistep, 40, max_epochs=4, steps_per_epoch=10, milestones=[0.5, 0.75])
    assert lrs[19] == pytest.approx(0.1) and lrs[20] == pytest.approx(0.01)
    assert lrs[30] == pytest.approx(0.001)


@pytest.mark.parametrize("kind", ["bn", "gn", "none"])
def test_zero_init_residual_makes_every_block_the_identity(kind):
    torch.manual_seed(0)
    model = ResNet(1, norm_layer=norm_layer(kind), zero_init_residual=True).train()
    x = model.stem(torch.randn(4, 3, 32, 32))  # post-ReLU, so >= 0
    for stage in model.stages:
        for block in stage:
            out = block(x)
            torch.testing.assert_close(out, torch.relu(block.shortcut(x)), atol=0, rtol=0)
            x = out
    # and without the flag, the blocks are not the identity
    plain = ResNet(1, norm_layer=norm_layer(kind)).train()
    x = plain.stem(torch.randn(4, 3, 32, 32))
    assert not torch.equal(plain.stages[0][0](x), x)


def test_torch_default_init_is_smaller_than_he():
    torch.manual_seed(0)
    he, default = ResNet(2), ResNet(2, init="torch_default")
    w_he, w_default = (m.stages[2][0].conv1.weight.detach() for m in (he, default))
    fan_in = w_he[0].numel()
    assert float(w_he.std()) == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
    assert float(w_default.abs().max()) <= fan_in**-0.5
    assert float(w_default.std()) == pytest.approx((1 / (3 * fan_in)) ** 0.5, rel=0.05)


def test_bin_gates_get_their_own_group():
    model = ResNet(1, norm_layer=norm_layer("bin"))
    groups = param_groups(model, 0.1, {"lr_scale": 10.0, "weight_decay": 0.0})
    gates = {id(m.rho) for m in model.modules() if isinstance(m, BatchInstanceNorm2d)}
    assert [g["name"] for g in groups] == ["weights", "bin_gates"]
    assert {id(p) for p in groups[1]["params"]} == gates and len(gates) == 7
    assert groups[1]["lr"] == pytest.approx(1.0) and groups[1]["weight_decay"] == 0.0
    assert not gates & {id(p) for p in groups[0]["params"]}
    assert len(param_groups(model, 0.1, None)) == 1  # gate_group=null: one group


ONE_EPOCH = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false"]


def test_bin_run_trains_gates_with_the_configured_lr_and_logs_rho(tmp_path):
    proc = train(tmp_path, *ONE_EPOCH, "norm=bin", "gate_group.lr_scale=5", "optimizer.lr=0.02")
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    opt_groups = ckpt["optimizer_states"][0]["param_groups"]
    assert [g["name"] for g in opt_groups] == ["weights", "bin_gates"]
    assert opt_groups[1]["weight_decay"] == 0.0 and opt_groups[0]["weight_decay"] == 5e-4
    assert opt_groups[1]["initial_lr"] == pytest.approx(0.1)  # 5 x 0.02
    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rho_columns = [c for c in rows[0] if c.startswith("rho/")]
    assert len(rho_columns) == 7
    assert any(r.get("rho/stem.1") for r in rows)


def test_clean_train_accuracy_equals_a_separate_evaluation(tmp_path):
    """train_clean/acc of the last epoch == accuracy of last.ckpt's weights, in eval mode,
    on the same fixed subset of the train split, without augmentation."""
    from hydra.utils import instantiate

    from project.checkpoints import load_model
    from project.training.compose import compose_job_config

    proc = train(tmp_path, *ONE_EPOCH, "data.augment=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        logged = [float(r["train_clean/acc"]) for r in csv.DictReader(f) if r["train_clean/acc"]]
    model, _ = load_model(tmp_path / "checkpoints" / "last.ckpt")
    cfg = compose_job_config(
        ["data=synthetic", "data.train_size=160", "data.test_size=64", "data.val_size=0.25"]
    )
    dm = instantiate(cfg.data)
    dm.setup("fit")
    _, clean_loader = dm.val_dataloader()
    correct = total = 0
    with torch.no_grad():
        for images, labels in clean_loader:
            pred = model(dm.transform_batch(images, train=False)).argmax(1)
            correct, total = correct + int((pred == labels).sum()), total + len(labels)
    assert total == 40  # as many images as the val split (0.25 of 160)
    assert logged[-1] == pytest.approx(correct / total, abs=1e-6)


def test_test_predictions_are_saved_and_match_the_test_accuracy(tmp_path):
    proc = train(tmp_path, *ONE_EPOCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = read_results(tmp_path)
    saved = np.load(tmp_path / results["test_predictions"])
    assert saved["pred"].dtype == np.int64 and saved["pred"].shape == (64,)
    assert float((saved["pred"] == saved["target"]).mean()) == pytest.approx(
        results["metrics"]["test/acc"], abs=1e-6
    )
