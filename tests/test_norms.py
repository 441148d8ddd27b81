"""From-scratch normalisation layers (`project.nn.norms`) against torch's reference layers.

Every check compares against an independent implementation (torch's `nn.BatchNorm2d`,
`nn.InstanceNorm2d`, `nn.GroupNorm`, or an autograd-differentiated formula) or uses
`torch.autograd.gradcheck` on the custom autograd Function with its closed-form backward.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import project.nn as pnn
from project.nn import (
    NORM_KINDS,
    BatchInstanceNorm2d,
    BatchNorm2d,
    GroupNorm2d,
    InstanceNorm2d,
    LayerNorm2d,
    default_num_groups,
    make_norm,
)
from project.nn.functional import NormalizeAffine
from project.nn.moments import _per_channel, group_sum, pool_moments

TOL = {torch.float64: {"atol": 1e-10, "rtol": 1e-10}, torch.float32: {"atol": 1e-5, "rtol": 1e-5}}
DTYPES = [torch.float64, torch.float32]
FORMATS = [torch.contiguous_format, torch.channels_last]
FORMAT_IDS = ["nchw", "channels_last"]


# ------------------------------------------------------------------------------------- helpers
def _pair(kind: str, c: int, groups: int | None = None) -> tuple[nn.Module, nn.Module]:
    """(ours, torch's reference) for a norm kind with c channels."""
    if kind == "bn":
        return BatchNorm2d(c), nn.BatchNorm2d(c)
    if kind == "in":
        return InstanceNorm2d(c), nn.InstanceNorm2d(c, affine=True)
    if kind == "ln":
        return LayerNorm2d(c), nn.GroupNorm(1, c)
    if kind == "gn":
        ref_groups = default_num_groups(c) if groups is None else groups
        return GroupNorm2d(c, num_groups=groups), nn.GroupNorm(ref_groups, c)
    raise AssertionError(kind)


def _randomise_affine(ours: nn.Module, ref: nn.Module, seed: int) -> None:
    """Give both layers the same random γ, β (copied)."""
    gen = torch.Generator().manual_seed(seed)
    c = ours.weight.numel()
    w = 1.0 + 0.5 * torch.randn(c, generator=gen, dtype=torch.float64)
    b = 0.5 * torch.randn(c, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        for m in (ours, ref):
            m.weight.copy_(w)
            m.bias.copy_(b)


def _input(shape, dtype, fmt, seed: int, scale: float = 2.0, shift: float = 0.7) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale + shift).to(dtype)
    return x.to(memory_format=fmt)


def _run(module: nn.Module, x: torch.Tensor, g: torch.Tensor):
    """Forward + backward with upstream gradient g; returns (y, dx, dγ, dβ)."""
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    y.backward(g)
    return y.detach(), x.grad, module.weight.grad, module.bias.grad


def _assert_close(a, b, dtype, msg=""):
    torch.testing.assert_close(a, b, **TOL[dtype], msg=lambda m: f"{msg}: {m}")


# (kind, channels, groups) cases; shapes are built with the case's channel count.
PAIR_CASES = [
    ("bn", 3, None),
    ("bn", 6, None),
    ("in", 3, None),
    ("ln", 6, None),
    ("gn", 6, 2),
    ("gn", 6, 6),
    ("gn", 6, None),  # default: 3 groups
    ("gn", 16, None),  # default: 8 groups
    ("gn", 16, 4),
]
PAIR_IDS = [f"{k}-C{c}-G{g}" for k, c, g in PAIR_CASES]
# (N, H, W): batch 1 (spatial > 1), batch 8 non-square, a tall thin map.
NHW = [(1, 4, 6), (8, 5, 7), (2, 7, 3)]
NHW_IDS = [f"{n}x{h}x{w}" for n, h, w in NHW]


# ------------------------------------------------------------------ train-mode forward/backward
@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("nhw", NHW, ids=NHW_IDS)
@pytest.mark.parametrize(("kind", "c", "groups"), PAIR_CASES, ids=PAIR_IDS)
def test_train_forward_backward_matches_torch(kind, c, groups, nhw, dtype, fmt):
    n, h, w = nhw
    torch.manual_seed(0)
    ours, ref = _pair(kind, c, groups)
    _randomise_affine(ours, ref, seed=1)
    ours, ref = ours.to(dtype).train(), ref.to(dtype).train()
    x = _input((n, c, h, w), dtype, fmt, seed=2)
    g = _input((n, c, h, w), dtype, fmt, seed=3, scale=1.0, shift=0.0)
    # torch's reference always sees NCHW-contiguous tensors: nn.InstanceNorm2d's backward is
    # wrong for channels_last inputs with batch 1 in torch 2.x (dx off by O(1)), ours is not.
    got, want = _run(ours, x, g), _run(ref, x.contiguous(), g.contiguous())
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), got, want):
        assert a.dtype == dtype
        _assert_close(a, b, dtype, name)
    # the output keeps the input's shape and memory format (and so does dx)
    assert got[0].shape == x.shape
    if fmt is torch.channels_last:
        assert got[0].is_contiguous(memory_format=torch.channels_last)
    # the check is not vacuous: the output is actually normalised, not the input passed through
    assert not torch.allclose(got[0], x)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("kind", "c", "groups"),
    [case for case in PAIR_CASES if case[0] != "bn"],
    ids=[i for i in PAIR_IDS if not i.startswith("bn")],
)
def test_per_sample_norms_same_in_eval(kind, c, groups, dtype):
    """IN/LN/GN have no running statistics: eval mode normalises with the sample's own stats."""
    ours, ref = _pair(kind, c, groups)
    _randomise_affine(ours, ref, seed=4)
    ours, ref = ours.to(dtype).eval(), ref.to(dtype).eval()
    x = _input((4, c, 5, 3), dtype, torch.contiguous_format, seed=5)
    g = _input((4, c, 5, 3), dtype, torch.contiguous_format, seed=6, scale=1.0, shift=0.0)
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), _run(ours, x, g), _run(ref, x, g)):
        _assert_close(a, b, dtype, name)
    assert not any(True for _ in ours.buffers())


@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind", ["bn", "in", "bin", "ln", "gn"])
def test_no_grad_fast_path_equals_autograd_path(kind, training, fmt):
    """Without autograd the forward skips the autograd.Function and writes y into its own
    centred copy of x: same y and running statistics, x untouched, memory format kept."""
    torch.manual_seed(0)
    fast, tracked = make_norm(kind, 8).double(), make_norm(kind, 8).double()
    with torch.no_grad():
        for p_fast, p_tracked in zip(fast.parameters(), tracked.parameters()):
            p_fast.copy_(torch.rand_like(p_fast))
            p_tracked.copy_(p_fast)
        for b_fast, b_tracked in zip(fast.buffers(), tracked.buffers()):
            if b_fast.is_floating_point():
                b_fast.uniform_(0.5, 1.5)
                b_tracked.copy_(b_fast)
    fast.train(training)
    tracked.train(training)
    x = _input((4, 8, 5, 3), torch.float64, fmt, seed=7)
    x_before = x.clone()
    with torch.no_grad():
        y_fast = fast(x)
    y_tracked = tracked(x.clone().requires_grad_(True))
    assert y_tracked.grad_fn is not None and y_fast.grad_fn is None
    torch.testing.assert_close(y_fast, y_tracked.detach(), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(x, x_before, atol=0, rtol=0)
    assert y_fast.is_contiguous(memory_format=fmt)
    for b_fast, b_tracked in zip(fast.buffers(), tracked.buffers()):
        torch.testing.assert_close(b_fast, b_tracked, atol=1e-12, rtol=1e-12)
    if kind in ("in", "ln", "gn"):  # per-sample statistics: check against torch's layer too
        ref = _pair(kind, 8)[1].double()
        ref.load_state_dict(fast.state_dict(), strict=False)
        with torch.no_grad():
            torch.testing.assert_close(y_fast, ref(x), atol=1e-10, rtol=1e-10)


def test_gn_default_groups_differ_from_in_and_ln():
    """Sanity for the GN cases: with C=16 the default (8 groups) is neither IN nor LN."""
    torch.manual_seed(0)
    x = torch.randn(2, 16, 4, 4, dtype=torch.float64)
    gn = GroupNorm2d(16).double()
    assert gn.groups == 8
    assert not torch.allclose(gn(x), InstanceNorm2d(16).double()(x))
    assert not torch.allclose(gn(x), LayerNorm2d(16).double()(x))
    torch.testing.assert_close(gn(x), F.group_norm(x, 8, eps=1e-5), atol=1e-12, rtol=1e-12)


# --------------------------------------------------------- BN running statistics and eval mode
@pytest.mark.parametrize("fmt", FORMATS, ids=FORMAT_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize(
    ("nchw", "momentum"),
    [((1, 3, 4, 6), 0.1), ((8, 3, 5, 7), 0.35), ((16, 5, 1, 1), 0.1)],
    ids=["1x3x4x6", "8x3x5x7-mom0.35", "16x5x1x1"],
)
def test_bn_running_stats_and_eval_match_torch(nchw, momentum, dtype, fmt):
    torch.manual_seed(0)
    ours, ref = BatchNorm2d(nchw[1], momentum=momentum), nn.BatchNorm2d(nchw[1], momentum=momentum)
    _randomise_affine(ours, ref, seed=7)
    ours, ref = ours.to(dtype).train(), ref.to(dtype).train()
    for step in range(5):
        # different mean/scale per step, so the moving average is not trivially constant
        x = _input(nchw, dtype, fmt, seed=10 + step, scale=1.0 + step, shift=step - 2.0)
        g = _input(nchw, dtype, fmt, seed=20 + step, scale=1.0, shift=0.0)
        want = _run(ref, x.contiguous(), g.contiguous())
        for name, a, b in zip(("y", "dx", "dg", "db"), _run(ours, x, g), want):
            _assert_close(a, b, dtype, f"step {step} {name}")
    _assert_close(ours.running_mean, ref.running_mean, dtype, "running_mean")
    _assert_close(ours.running_var, ref.running_var, dtype, "running_var")
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 5
    # moved away from the init (0, 1), so the eval check below uses non-trivial statistics
    assert ours.running_mean.abs().max() > 0.1
    assert (ours.running_var - 1).abs().max() > 0.1

    ours.eval()
    ref.eval()
    x = _input(nchw, dtype, fmt, seed=99, scale=3.0, shift=1.0)
    g = _input(nchw, dtype, fmt, seed=98, scale=1.0, shift=0.0)
    got, want = _run(ours, x, g), _run(ref, x.contiguous(), g.contiguous())
    for name, a, b in zip(("y", "dx", "dg", "db"), got, want):
        _assert_close(a, b, dtype, f"eval {name}")
    # the eval output is the formula with the moving statistics
    rm, rv = (t[None, :, None, None] for t in (ours.running_mean, ours.running_var))
    gamma, beta = (t.detach()[None, :, None, None] for t in (ours.weight, ours.bias))
    _assert_close(got[0], gamma * (x - rm) / torch.sqrt(rv + ours.eps) + beta, dtype, "formula")
    # eval mode does not touch the moving statistics
    assert int(ours.num_batches_tracked) == 5
    _assert_close(ours.running_mean, ref.running_mean, dtype, "running_mean after eval")


def test_bn_running_var_is_unbiased():
    """The moving variance stores the unbiased batch variance (n/(n-1) correction), once."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64) * 3 + 1  # 8 elements per channel
    bn = BatchNorm2d(3, momentum=1.0).double()
    bn(x)
    unbiased = x.transpose(0, 1).reshape(3, -1).var(dim=1, correction=1)
    torch.testing.assert_close(bn.running_var, unbiased, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(bn.running_mean, x.mean(dim=(0, 2, 3)), atol=1e-12, rtol=1e-12)


def test_bn_train_mode_under_no_grad_uses_batch_stats():
    torch.manual_seed(0)
    ours, ref = BatchNorm2d(4).double(), nn.BatchNorm2d(4).double()
    _randomise_affine(ours, ref, seed=0)
    x = torch.randn(6, 4, 3, 5, dtype=torch.float64) * 2 + 3
    with torch.no_grad():
        y = ours.train()(x)
        y_ref = ref.train()(x)
    torch.testing.assert_close(y, y_ref, atol=1e-10, rtol=1e-10)
    # batch statistics, not the (initial) running ones: each channel of x̂ has mean 0
    xhat = (y - ours.bias[None, :, None, None]) / ours.weight[None, :, None, None]
    torch.testing.assert_close(
        xhat.mean(dim=(0, 2, 3)), torch.zeros(4, dtype=torch.float64), atol=1e-10, rtol=0
    )
    assert int(ours.num_batches_tracked) == 1
    torch.testing.assert_close(ours.running_mean, ref.running_mean, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(ours.running_var, ref.running_var, atol=1e-12, rtol=1e-12)
    assert ours.running_mean.abs().min() > 0.1  # it was updated (from 0, towards ~0.3)


def test_bn_eval_mode_with_grad_uses_running_stats():
    torch.manual_seed(0)
    bn = BatchNorm2d(4).double()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0, 9.0]))
    bn.eval()
    x = (torch.randn(5, 4, 3, 3, dtype=torch.float64) * 2 + 1).requires_grad_(True)
    assert torch.is_grad_enabled()
    y = bn(x)
    rm, rv = bn.running_mean[None, :, None, None], bn.running_var[None, :, None, None]
    torch.testing.assert_close(y, (x - rm) / torch.sqrt(rv + bn.eps), atol=1e-12, rtol=1e-12)
    g = torch.randn_like(y)
    y.backward(g)
    # constant statistics: dx = γ·g/sqrt(σ²_run + ε)
    torch.testing.assert_close(x.grad, g / torch.sqrt(rv + bn.eps), atol=1e-12, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 0
    torch.testing.assert_close(
        bn.running_mean, torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    )


# --------------------------------------------------------------------- Batch-Instance norm
def _copy_bn_state(src: nn.Module, dst: nn.Module) -> None:
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).copy_(getattr(src, name))


@pytest.mark.parametrize("nchw", [(1, 3, 4, 6), (8, 3, 5, 7), (4, 6, 3, 3)], ids=str)
def test_bin_rho_one_equals_bn(nchw):
    torch.manual_seed(0)
    dtype = torch.float64
    ours, ref = BatchInstanceNorm2d(nchw[1]).double(), nn.BatchNorm2d(nchw[1]).double()
    assert torch.equal(ours.rho, torch.ones(nchw[1], dtype=dtype))  # init ρ = 1
    _randomise_affine(ours, ref, seed=3)
    for step in range(4):
        x = _input(nchw, dtype, torch.contiguous_format, seed=step, scale=1 + step, shift=step)
        g = _input(nchw, dtype, torch.contiguous_format, seed=50 + step, scale=1, shift=0)
        for name, a, b in zip(("y", "dx", "dg", "db"), _run(ours, x, g), _run(ref, x, g)):
            _assert_close(a, b, dtype, f"train {step} {name}")
    _assert_close(ours.running_mean, ref.running_mean, dtype, "running_mean")
    _assert_close(ours.running_var, ref.running_var, dtype, "running_var")
    assert int(ours.num_batches_tracked) == 4
    ours.eval()
    ref.eval()
    x = _input(nchw, dtype, torch.contiguous_format, seed=77)
    g = _input(nchw, dtype, torch.contiguous_format, seed=78, scale=1, shift=0)
    for name, a, b in zip(("y", "dx", "dg", "db"), _run(ours, x, g), _run(ref, x, g)):
        _assert_close(a, b, dtype, f"eval {name}")


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("nchw", [(1, 3, 4, 6), (8, 3, 5, 7)], ids=str)
def test_bin_rho_zero_equals_in(nchw, mode):
    torch.manual_seed(0)
    dtype = torch.float64
    ours = BatchInstanceNorm2d(nchw[1], rho_init=0.0).double()
    ref = nn.InstanceNorm2d(nchw[1], affine=True).double()
    _randomise_affine(ours, ref, seed=5)
    bn = BatchNorm2d(nchw[1]).double()
    x = _input(nchw, dtype, torch.contiguous_format, seed=1)
    bn(x)
    ours.train()(x)  # one step, so the moving stats are not the init values in eval mode
    # the BN branch still tracks moving statistics, exactly like BatchNorm2d
    _assert_close(ours.running_mean, bn.running_mean, dtype, "running_mean")
    _assert_close(ours.running_var, bn.running_var, dtype, "running_var")
    ours.train(mode == "train")
    ref.train(mode == "train")
    x = _input(nchw, dtype, torch.contiguous_format, seed=2, scale=3.0, shift=-1.0)
    g = _input(nchw, dtype, torch.contiguous_format, seed=3, scale=1, shift=0)
    for name, a, b in zip(("y", "dx", "dg", "db"), _run(ours, x, g), _run(ref, x, g)):
        _assert_close(a, b, dtype, name)


def _bin_reference(x, weight, bias, rho, running_mean, running_var, training, eps=1e-5):
    """y = γ·(ρ·x̂_BN + (1-ρ)·x̂_IN) + β with torch's functional norms (autograd backward)."""
    x_bn = F.batch_norm(
        x, running_mean.clone(), running_var.clone(), training=training, momentum=0.1, eps=eps
    )
    x_in = F.instance_norm(x, eps=eps)
    r = rho[None, :, None, None]
    return weight[None, :, None, None] * (r * x_bn + (1 - r) * x_in) + bias[None, :, None, None]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("nchw", [(2, 4, 3, 5), (8, 3, 5, 7)], ids=str)
def test_bin_intermediate_rho_matches_formula(nchw, training):
    """Random ρ ∈ (0, 1) per channel: forward and all four gradients (incl. ρ) vs autograd."""
    torch.manual_seed(0)
    c = nchw[1]
    layer = BatchInstanceNorm2d(c).double()
    with torch.no_grad():
        layer.rho.copy_(torch.rand(c, dtype=torch.float64) * 0.8 + 0.1)
        layer.weight.copy_(torch.randn(c) * 0.5 + 1)
        layer.bias.copy_(torch.randn(c))
        layer.running_mean.copy_(torch.randn(c))
        layer.running_var.copy_(torch.rand(c) + 0.5)
    layer.train(training)
    rm, rv = layer.running_mean.clone(), layer.running_var.clone()
    x = _input(nchw, torch.float64, torch.contiguous_format, seed=1)
    g = _input(nchw, torch.float64, torch.contiguous_format, seed=2, scale=1, shift=0)

    xa = x.clone().requires_grad_(True)
    y = layer(xa)
    y.backward(g)

    params = [
        p.detach().clone().requires_grad_(True) for p in (layer.weight, layer.bias, layer.rho)
    ]
    xb = x.clone().requires_grad_(True)
    y_ref = _bin_reference(xb, *params, rm, rv, training)
    y_ref.backward(g)
    tol = {"atol": 1e-10, "rtol": 1e-10}
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(xa.grad, xb.grad, **tol)
    for p, q, name in zip((layer.weight, layer.bias, layer.rho), params, ("γ", "β", "ρ")):
        torch.testing.assert_close(p.grad, q.grad, **tol, msg=name)


def test_bin_rho_is_not_swapped():
    """ρ weights the BN branch: a layer with ρ = 1 in channel 0 and ρ = 0 in channel 1."""
    torch.manual_seed(0)
    layer = BatchInstanceNorm2d(2).double()
    with torch.no_grad():
        layer.rho.copy_(torch.tensor([1.0, 0.0]))
    x = torch.randn(4, 2, 3, 3, dtype=torch.float64) + torch.arange(4.0)[:, None, None, None]
    y = layer(x)
    torch.testing.assert_close(y[:, 0], F.batch_norm(x, None, None, training=True)[:, 0])
    torch.testing.assert_close(y[:, 1], F.instance_norm(x)[:, 1])
    assert not torch.allclose(y[:, 0], F.instance_norm(x)[:, 0], atol=1e-3)


@pytest.mark.parametrize("with_model_helper", [False, True], ids=["method", "apply_constraints_"])
def test_bin_rho_stays_in_unit_interval_after_sgd(with_model_helper):
    torch.manual_seed(0)
    c = 6
    model = nn.Sequential(pnn.Conv2d(3, c, 3, padding=1), BatchInstanceNorm2d(c, rho_init=0.5))
    layer = model[1]
    opt = torch.optim.SGD(model.parameters(), lr=100.0)
    x = torch.randn(4, 3, 5, 5)
    push = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])  # ρ gradient in both directions
    loss = model(x).square().mean() + (push * layer.rho).sum()
    loss.backward()
    assert (layer.rho.grad > 0).any() and (layer.rho.grad < 0).any()
    opt.step()
    assert layer.rho.max() > 1 and layer.rho.min() < 0  # the step really left [0, 1]
    before = layer.rho.detach().clone()
    if with_model_helper:
        pnn.apply_constraints_(model)
    else:
        layer.apply_constraints_()
    rho = layer.rho.detach()
    assert rho.min() >= 0 and rho.max() <= 1
    torch.testing.assert_close(rho, before.clamp(0, 1), atol=0, rtol=0)
    assert isinstance(layer.rho, nn.Parameter) and layer.rho.requires_grad


def test_apply_constraints_reaches_every_bin_layer_of_a_resnet():
    from project.models import ResNet
    from project.nn import norm_layer

    model = ResNet(1, norm_layer=norm_layer("bin"))
    layers = [m for m in model.modules() if isinstance(m, BatchInstanceNorm2d)]
    assert len(layers) == 7  # stem + 2 per block × 3 blocks
    with torch.no_grad():
        for i, m in enumerate(layers):
            m.rho.fill_(2.0 if i % 2 else -1.0)
    pnn.apply_constraints_(model)
    for i, m in enumerate(layers):
        assert torch.all(m.rho == (1.0 if i % 2 else 0.0))


def test_apply_constraints_on_a_bare_bin_layer():
    layer = BatchInstanceNorm2d(3)
    with torch.no_grad():
        layer.rho.fill_(1.5)
    pnn.apply_constraints_(layer)
    assert layer.rho.max() <= 1


# ------------------------------------------------------------ gradcheck of the autograd Function
def _gradcheck_inputs(c=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    kw = {"generator": gen, "dtype": torch.float64}
    x = (torch.randn(3, c, 3, 2, **kw) * 2 + 0.5).requires_grad_(True)
    w = (torch.randn(c, **kw) * 0.5 + 1).requires_grad_(True)
    b = torch.randn(c, **kw).requires_grad_(True)
    rho = (torch.rand(c, **kw) * 0.8 + 0.1).requires_grad_(True)
    return x, w, b, rho


MODE_CASES = {
    "bn": ((4, True),),
    "in": ((4, False),),
    "ln": ((1, False),),
    "gn2": ((2, False),),
    "bn-gn2-mix": ((4, True), (2, False)),
    "bin": ((4, True), (4, False)),
}


# fixed statistics only replace an over-batch mode 0 (BN's eval mode)
GRADCHECK_CASES = [(name, False) for name in MODE_CASES] + [
    (name, True) for name, modes in MODE_CASES.items() if modes[0][1]
]


@pytest.mark.parametrize(
    ("name", "fixed"),
    GRADCHECK_CASES,
    ids=[f"{n}-{'fixed' if f else 'batch'}" for n, f in GRADCHECK_CASES],
)
def test_gradcheck_normalize_affine(name, fixed):
    modes = MODE_CASES[name]
    x, w, b, rho = _gradcheck_inputs()
    stats = (torch.randn(4, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5)
    fixed_stats = stats if fixed else None

    if len(modes) == 2:

        def fn(x, w, b, rho):
            return NormalizeAffine.apply(x, w, b, rho, modes, 1e-5, fixed_stats, False)[0]

        inputs = (x, w, b, rho)
    else:

        def fn(x, w, b):
            return NormalizeAffine.apply(x, w, b, None, modes, 1e-5, fixed_stats, False)[0]

        inputs = (x, w, b)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kind", ["bn", "in", "bin", "ln", "gn"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gradcheck_norm_modules(kind, training):
    """gradcheck through the modules (x, γ, β and ρ for BIN) on a tiny float64 input."""
    torch.manual_seed(0)
    layer = make_norm(kind, 4).double().train(training)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.rand_like(p) * 0.3 - 0.15)
        if hasattr(layer, "rho"):
            layer.rho.copy_(torch.tensor([0.2, 0.5, 0.7, 0.9]))
        if hasattr(layer, "running_mean"):
            layer.running_mean.copy_(torch.randn(4))
            layer.running_var.copy_(torch.rand(4) + 0.5)
            layer.momentum = 0.0  # keep the moving statistics fixed across gradcheck's calls
    names = [n for n, _ in layer.named_parameters()]
    x = (torch.randn(2, 4, 3, 3, dtype=torch.float64) * 2).requires_grad_(True)
    params = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]

    def fn(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


# ------------------------------------------------------------------------------ make_norm & co
@pytest.mark.parametrize("kind", NORM_KINDS)
def test_make_norm_builds_every_kind(kind):
    torch.manual_seed(0)
    layer = make_norm(kind, 16)
    x = torch.randn(4, 16, 5, 5)
    y = layer(x)
    assert y.shape == x.shape
    expected = {
        "bn": BatchNorm2d,
        "in": InstanceNorm2d,
        "bin": BatchInstanceNorm2d,
        "ln": LayerNorm2d,
        "gn": GroupNorm2d,
        "none": nn.Identity,
        "torch_bn": nn.BatchNorm2d,
    }[kind]
    assert type(layer) is expected
    if kind == "none":
        assert torch.equal(y, x)
    else:
        # normalised: per-channel spread close to 1 over the batch
        assert torch.allclose(y.std(dim=(0, 2, 3)), torch.ones(16), atol=0.2)


def test_make_norm_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match="foo") as info:
        make_norm("foo", 16)
    for kind in ("bn", "in", "bin", "ln", "gn", "none", "torch_bn"):
        assert kind in str(info.value)


def test_make_norm_passes_options():
    assert make_norm("gn", 16, num_groups=4).groups == 4
    assert make_norm("bn", 16, momentum=0.3).momentum == 0.3
    assert make_norm("torch_bn", 16, momentum=0.3, sync=False).momentum == 0.3
    assert torch.all(make_norm("bin", 8, rho_init=0.25).rho == 0.25)
    assert make_norm("ln", 8, eps=1e-3).eps == 1e-3
    with pytest.raises(ValueError, match="num_groups"):
        make_norm("bn", 16, num_groups=4)  # an option the layer does not take


def test_group_norm_groups_must_divide_channels():
    with pytest.raises(ValueError, match="num_groups"):
        GroupNorm2d(16, num_groups=3)
    with pytest.raises(ValueError, match="num_groups"):
        make_norm("gn", 16, num_groups=3)
    with pytest.raises(ValueError):
        GroupNorm2d(16, num_groups=0)


@pytest.mark.parametrize(("c", "g"), [(16, 8), (32, 16), (64, 32), (128, 32), (2, 1), (1, 1)])
def test_default_num_groups(c, g):
    assert default_num_groups(c) == g
    assert GroupNorm2d(c).groups == g


def test_bn_state_dict_keys():
    assert set(BatchNorm2d(8).state_dict()) == {
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    }
    assert set(BatchInstanceNorm2d(8).state_dict()) == {
        "weight",
        "bias",
        "rho",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    }
    for cls in (InstanceNorm2d, LayerNorm2d, GroupNorm2d):
        assert set(cls(8).state_dict()) == {"weight", "bias"}


def test_bn_state_dict_loads_into_torch_bn():
    """Same names and meaning: a trained state dict loads into nn.BatchNorm2d and agrees."""
    torch.manual_seed(0)
    ours = BatchNorm2d(5).double()
    for _ in range(3):
        ours(torch.randn(4, 5, 3, 3, dtype=torch.float64) * 2 + 1)
    ref = nn.BatchNorm2d(5).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(ours.eval()(x), ref.eval()(x), atol=1e-12, rtol=1e-12)


def test_rejects_non_4d_input():
    with pytest.raises(ValueError):
        BatchNorm2d(4)(torch.randn(8, 4))


# -------------------------------------------------------------------------------- torch.compile
def _compiled_matches(kind: str, backend: str) -> None:
    torch._dynamo.reset()
    torch.manual_seed(0)
    ours, ref = _pair(kind, 8, 4 if kind == "gn" else None)
    _randomise_affine(ours, ref, seed=0)
    try:
        compiled = torch.compile(ours, backend=backend)
        x = torch.randn(4, 8, 5, 6)
        g = torch.randn(4, 8, 5, 6)
        got = _run(compiled, x, g)
    except Exception as e:  # pragma: no cover - depends on the toolchain
        pytest.skip(f"torch.compile({backend}) unavailable here: {type(e).__name__}: {e}")
    want = _run(ref, x, g)
    for name, a, b in zip(("y", "dx", "dg", "db"), got, want):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)
    if kind == "bn":
        torch.testing.assert_close(ours.running_mean, ref.running_mean, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(ours.running_var, ref.running_var, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", ["bn", "gn"])
def test_torch_compile_aot_eager(kind):
    """Dynamo traces the custom autograd Function (graph capture without a C++ toolchain)."""
    _compiled_matches(kind, "aot_eager")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bn", "gn"])
def test_torch_compile_inductor(kind):
    """Full inductor compile (about 45 s per case on a 2-core CPU): run with `-m slow`."""
    _compiled_matches(kind, "inductor")


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_compiled_group_broadcast_is_exactly_the_eager_one(groups):
    """Under torch.compile the (N, G) -> (N, C) broadcast is a product with the 0/1 membership
    matrix (inductor then reads a buffer instead of gathering c // (C/G) per element): it must
    give exactly repeat_interleave's values, and group_sum exactly the eager group sums."""
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(3)
    per_group = torch.randn(5, groups, generator=gen) * 1e3
    per_channel = torch.randn(5, 8, generator=gen)

    def broadcast(t, u):
        return _per_channel(t, 8), group_sum(u, (groups, False)), group_sum(u, (groups, True))

    eager = broadcast(per_group, per_channel)
    compiled = torch.compile(broadcast, backend="aot_eager", fullgraph=True)(per_group, per_channel)
    assert eager[0].shape == (5, 8) and eager[2].shape == (1, 8)
    repeated = per_group.repeat_interleave(8 // groups, 1)
    torch.testing.assert_close(eager[0], repeated, rtol=0, atol=0)
    for got, want in zip(compiled, eager):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("mode", [(8, True), (8, False), (4, False), (2, True), (1, False)])
def test_pooled_cell_moments_are_the_group_moments(mode):
    """pool_moments (law of total variance over the (n, c) cells) gives each group's mean and
    biased variance as taken directly over its elements, on data with a large offset (|mean| /
    std = 50, where an E[x²] - E[x]² form would lose digits); (N, C) per sample, (1, C) over
    the batch, and the cell count."""
    groups, over_batch = mode
    x = torch.randn(6, 8, 5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    x = x * torch.linspace(0.5, 2.0, 8, dtype=torch.float64)[:, None, None] + 50.0
    var, mean = torch.var_mean(x, dim=(2, 3), correction=0)
    gmean, gvar, cells = pool_moments(mean, var, mode)
    grouped = x.reshape(6, groups, -1)  # (N, G, C/G·H·W): each sample's groups
    if over_batch:
        grouped = grouped.transpose(0, 1).reshape(1, groups, -1)
    want_var, want_mean = torch.var_mean(grouped, dim=2, correction=0)
    rows = 1 if over_batch else 6
    assert gmean.shape == gvar.shape == (rows, 8)
    assert cells == 8 // groups * (6 if over_batch else 1)
    torch.testing.assert_close(gmean, want_mean.repeat_interleave(8 // groups, 1))
    torch.testing.assert_close(gvar, want_var.repeat_interleave(8 // groups, 1))


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("kind", ["bn", "in", "bin", "ln", "gn"])
def test_dynamo_captures_each_norm_in_one_graph(kind, channels_last):
    """No graph breaks (torch 2.11 broke at `out=` into channels_last tensors, which made the
    compiled GPU step slower than eager): the whole layer, its autograd.Function included, is
    one graph that inductor can fuse."""
    torch._dynamo.reset()
    layer = make_norm(kind, 8)
    x = torch.randn(4, 8, 5, 6, requires_grad=True)
    if channels_last:
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    explanation = torch._dynamo.explain(layer)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_ln_of_constant_input_is_bias():
    """Degenerate statistics: zero variance gives x̂ = 0 (finite), so y = β."""
    layer = LayerNorm2d(3).double()
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
    y = layer(torch.full((2, 3, 4, 4), 5.0, dtype=torch.float64))
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, layer.bias[None, :, None, None].expand_as(y).detach())
    assert math.isclose(float(y.detach().mean()), 2.0)


@pytest.mark.parametrize("kind", ["bn", "in", "bin", "ln", "gn"])
def test_float32_error_with_a_large_offset_is_torch_like(kind):
    """Statistics of inputs with mean 1000 and std 1 in float32: the two-pass moments keep the
    error at torch's level (within 10x, measured against float64); a one-pass E[x²] - E[x]²
    would be ~1e4x worse (cancellation)."""
    from project.bench.layers import torch_norm

    gen = torch.Generator().manual_seed(0)
    x64 = (torch.randn(16, 16, 8, 8, generator=gen, dtype=torch.float64) + 1000).float().double()
    g64 = torch.randn(16, 16, 8, 8, generator=gen, dtype=torch.float64)
    errors = {}
    for name, build in (
        ("ours", lambda: make_norm(kind, 16)),
        ("torch", lambda: torch_norm(kind, 16)),
    ):
        outs = {}
        for dtype in (torch.float64, torch.float32):
            x = x64.detach().to(dtype).requires_grad_(True)
            y = build().to(dtype)(x)
            y.backward(g64.to(dtype))
            outs[dtype] = (y.detach().double(), x.grad.double())
        errors[name] = [
            (a - b).abs().max() for a, b in zip(outs[torch.float32], outs[torch.float64])
        ]
    for ours, ref in zip(errors["ours"], errors["torch"]):
        assert ours <= 10 * ref + 1e-6, errors
