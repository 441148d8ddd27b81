"""From-scratch conv / linear / activation / pooling layers (`project.nn.layers`) vs torch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from project.nn import (
    AvgPool2d,
    Conv2d,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    ReLU,
    Swish,
    make_activation,
)

TOL = {"atol": 1e-12, "rtol": 1e-12}


def _x(shape, seed=0, requires_grad=True):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).requires_grad_(requires_grad)


def _fwd_bwd(fn, x, g):
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    y.backward(g)
    return y.detach(), x.grad


# ---------------------------------------------------------------------------------- pooling
# (kernel, stride, padding, input shape): square/non-square, stride != kernel, padding 1,
# and input sizes that do not tile evenly (floor mode).
POOL_CASES = [
    (2, None, 0, (2, 3, 8, 8)),
    (2, None, 0, (2, 3, 7, 9)),
    (3, 2, 1, (2, 3, 8, 8)),
    (3, 2, 1, (1, 4, 7, 10)),
    (3, 1, 1, (2, 2, 5, 6)),
    (3, 2, 0, (2, 2, 9, 6)),
    (2, 1, 0, (1, 3, 4, 5)),
    (4, 3, 2, (2, 2, 11, 8)),
]
POOL_IDS = [f"k{k}-s{s}-p{p}-{'x'.join(map(str, sh))}" for k, s, p, sh in POOL_CASES]


@pytest.mark.parametrize(("k", "s", "p", "shape"), POOL_CASES, ids=POOL_IDS)
def test_max_pool_matches_torch(k, s, p, shape):
    x = _x(shape)
    ours = MaxPool2d(k, stride=s, padding=p)
    g = _x(ours(x).shape, seed=1, requires_grad=False)
    y, dx = _fwd_bwd(ours, x, g)
    y_ref, dx_ref = _fwd_bwd(lambda t: F.max_pool2d(t, k, s, p), x, g)
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(dx, dx_ref, **TOL)


@pytest.mark.parametrize(("k", "s", "p", "shape"), POOL_CASES, ids=POOL_IDS)
def test_avg_pool_matches_torch(k, s, p, shape):
    x = _x(shape)
    ours = AvgPool2d(k, stride=s, padding=p)
    g = _x(ours(x).shape, seed=1, requires_grad=False)
    y, dx = _fwd_bwd(ours, x, g)
    y_ref, dx_ref = _fwd_bwd(lambda t: F.avg_pool2d(t, k, s, p, count_include_pad=True), x, g)
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(dx, dx_ref, **TOL)


def test_max_pool_padding_is_minus_infinity():
    """An all-negative input: zero padding would leak 0 into the max; -inf padding does not."""
    x = -1.0 - torch.rand(1, 1, 4, 4, dtype=torch.float64)
    y = MaxPool2d(3, stride=2, padding=1)(x)
    assert (y < 0).all()
    torch.testing.assert_close(y, F.max_pool2d(x, 3, 2, 1), **TOL)


def test_avg_pool_counts_padding():
    x = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    y = AvgPool2d(3, stride=2, padding=1)(x)
    assert y[0, 0, 0, 0].item() == pytest.approx(4 / 9)  # corner window: 4 ones, 5 pads


def test_default_stride_is_kernel():
    assert MaxPool2d(3).stride == 3
    assert AvgPool2d(2).stride == 2
    assert MaxPool2d(3, stride=1).stride == 1


def test_global_avg_pool():
    x = _x((3, 5, 4, 7))
    g = _x((3, 5), seed=2, requires_grad=False)
    y, dx = _fwd_bwd(GlobalAvgPool2d(), x, g)
    y_ref, dx_ref = _fwd_bwd(lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1), x, g)
    assert y.shape == (3, 5)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(dx, dx_ref, **TOL)


# ------------------------------------------------------------------------------ activations
@pytest.mark.parametrize(
    ("module", "ref"),
    [(Swish(), F.silu), (ReLU(), torch.relu)],
    ids=["swish", "relu"],
)
def test_activation_matches_torch(module, ref):
    x = _x((4, 3, 5, 6)) * 4
    x = x.detach()
    x[0, 0, 0, :3] = torch.tensor([0.0, -30.0, 30.0], dtype=torch.float64)  # edge values
    g = _x(x.shape, seed=3, requires_grad=False)
    y, dx = _fwd_bwd(module, x, g)
    y_ref, dx_ref = _fwd_bwd(ref, x, g)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(dx, dx_ref, **TOL)
    assert torch.isfinite(dx).all()


def test_make_activation():
    assert isinstance(make_activation("relu"), ReLU)
    assert isinstance(make_activation("swish"), Swish)
    assert make_activation("relu") is not make_activation("relu")
    with pytest.raises(ValueError, match="relu"):
        make_activation("gelu")


# ------------------------------------------------------------------------------ conv / linear
CONV_CASES = [
    # (in, out, k, stride, padding, bias, input HxW)
    (3, 8, 3, 1, 1, False, (8, 8)),
    (3, 8, 3, 2, 1, True, (9, 7)),
    (4, 6, 1, 2, 0, False, (8, 8)),
    (2, 5, 5, 1, 0, True, (10, 12)),
    (4, 4, 3, 3, 2, False, (11, 6)),
]


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "pad", "bias", "hw"),
    CONV_CASES,
    ids=[f"{a}-{b}-k{k}-s{s}-p{p}-b{int(bb)}" for a, b, k, s, p, bb, _ in CONV_CASES],
)
def test_conv_matches_torch(cin, cout, k, stride, pad, bias, hw):
    torch.manual_seed(0)
    conv = Conv2d(cin, cout, k, stride=stride, padding=pad, bias=bias).double()
    assert conv.weight.shape == (cout, cin, k, k)
    assert (conv.bias is not None) == bias
    if bias:
        assert torch.all(conv.bias == 0)  # init 0
        with torch.no_grad():
            conv.bias.normal_()
    x = _x((2, cin, *hw), seed=4)
    y = conv(x)
    w = conv.weight.detach().clone().requires_grad_(True)
    b = conv.bias.detach().clone().requires_grad_(True) if bias else None
    x_ref = x.detach().clone().requires_grad_(True)
    y_ref = F.conv2d(x_ref, w, b, stride=stride, padding=pad)
    assert y.shape == y_ref.shape
    torch.testing.assert_close(y, y_ref, **TOL)
    g = _x(y.shape, seed=5, requires_grad=False)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad, **TOL)
    torch.testing.assert_close(conv.weight.grad, w.grad, **TOL)
    if bias:
        torch.testing.assert_close(conv.bias.grad, b.grad, **TOL)


@pytest.mark.parametrize(("cin", "k"), [(64, 3), (16, 5), (256, 1)])
def test_conv_kaiming_init_std(cin, k):
    """std = sqrt(2 / (k²·C_in)) (He et al. 2015), mean 0; checked on ≥ 36k weights."""
    torch.manual_seed(0)
    cout = max(64, 40_000 // (cin * k * k))
    w = Conv2d(cin, cout, k).weight.detach()
    expected = math.sqrt(2.0 / (k * k * cin))
    assert w.numel() >= 36_000
    # relative standard error of a sample std is ~1/sqrt(2n) < 0.4 %; 3 % leaves a wide margin
    assert w.std().item() == pytest.approx(expected, rel=0.03)
    assert abs(w.mean().item()) < 5 * expected / math.sqrt(w.numel())
    # a normal, not a uniform: kurtosis ≈ 3 (uniform: 1.8)
    kurt = ((w - w.mean()) ** 4).mean() / w.var() ** 2
    assert 2.8 < kurt.item() < 3.2


def test_conv_init_std_override():
    torch.manual_seed(0)
    w = Conv2d(64, 100, 1, init_std=0.01).weight.detach()
    assert w.std().item() == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize(("fin", "fout", "bias"), [(7, 5, True), (576, 120, True), (84, 10, False)])
def test_linear_matches_torch(fin, fout, bias):
    torch.manual_seed(0)
    lin = Linear(fin, fout, bias=bias).double()
    assert lin.weight.shape == (fout, fin)
    bound = 1 / math.sqrt(fin)
    assert lin.weight.abs().max() <= bound
    x = _x((6, fin), seed=6)
    y = lin(x)
    w = lin.weight.detach().clone().requires_grad_(True)
    b = lin.bias.detach().clone().requires_grad_(True) if bias else None
    x_ref = x.detach().clone().requires_grad_(True)
    y_ref = F.linear(x_ref, w, b)
    torch.testing.assert_close(y, y_ref, **TOL)
    g = _x(y.shape, seed=7, requires_grad=False)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad, **TOL)
    torch.testing.assert_close(lin.weight.grad, w.grad, **TOL)
    if bias:
        torch.testing.assert_close(lin.bias.grad, b.grad, **TOL)


def test_linear_init_std_override():
    torch.manual_seed(0)
    lin = Linear(200, 300, init_std=0.01)
    assert lin.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.all(lin.bias == 0)


def test_linear_default_init_is_uniform():
    torch.manual_seed(0)
    lin = Linear(100, 400)
    bound = 1 / math.sqrt(100)
    w = lin.weight.detach()
    assert w.abs().max() <= bound
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # U(-b, b) std
