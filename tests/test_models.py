"""CIFAR ResNet (6n+2) and SimpleNN built from `project.nn` layers."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import project.nn as pnn
from project.models import BasicBlock, PadShortcut, ProjectionShortcut, ResNet, SimpleNN
from project.nn import NORM_KINDS, norm_layer

ALLOWED_TORCH_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.Identity, nn.Flatten)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _images(batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 32, 32, generator=gen)


def _weighted_layers(model: nn.Module) -> list[nn.Module]:
    """Conv2d and Linear modules, excluding option-B projection convs."""
    projection = {id(m[0]) for m in model.modules() if isinstance(m, ProjectionShortcut)}
    return [
        m
        for m in model.modules()
        if isinstance(m, (pnn.Conv2d, pnn.Linear, nn.Conv2d, nn.Linear)) and id(m) not in projection
    ]


# ------------------------------------------------------------------------------ ResNet shape
@pytest.mark.parametrize(("n", "count"), [(3, 269_722), (2, 172_506)])
def test_resnet_parameter_count(n, count):
    assert _n_params(ResNet(n)) == count
    # the conv head has the same parameters as the linear head (64·10 weights + 10 biases)
    assert _n_params(ResNet(n, head="conv")) == count


@pytest.mark.parametrize(("shortcut", "kernel"), [("B", 1), ("B3", 3)])
def test_resnet_option_b_adds_projections(shortcut, kernel):
    """Two stride-2 stage transitions: k×k convs 16→32 and 32→64, each with a BN (γ, β); B3 is
    the COL775 reference code's 3×3 projection."""
    a, b = ResNet(3, shortcut="A"), ResNet(3, shortcut=shortcut)
    extra = (16 * 32 * kernel**2 + 2 * 32) + (32 * 64 * kernel**2 + 2 * 64)
    assert _n_params(b) - _n_params(a) == extra
    projections = [m for m in b.modules() if isinstance(m, ProjectionShortcut)]
    assert len(projections) == 2
    assert not any(isinstance(m, ProjectionShortcut) for m in a.modules())
    assert sum(isinstance(m, PadShortcut) for m in a.modules()) == 2
    for projection in projections:
        assert projection[0].weight.shape[2:] == (kernel, kernel)
        x = torch.randn(2, projection[0].weight.shape[1], 8, 8)
        assert projection(x).shape == (2, projection[0].weight.shape[0], 4, 4)
    out = b(_images(2))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in b.parameters())


@pytest.mark.parametrize("shortcut", ["A", "B", "B3"])
@pytest.mark.parametrize("head", ["linear", "conv"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_resnet_depth_is_6n_plus_2(n, head, shortcut):
    model = ResNet(n, head=head, shortcut=shortcut)
    assert len(_weighted_layers(model)) == 6 * n + 2
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 3 * n


@pytest.mark.parametrize("head", ["linear", "conv"])
@pytest.mark.parametrize("num_classes", [10, 100])
def test_resnet_output_and_features(num_classes, head):
    torch.manual_seed(0)
    model = ResNet(1, num_classes=num_classes, head=head).eval()
    x = _images(3)
    logits = model(x)
    assert logits.shape == (3, num_classes)
    feats = model.features(x)
    assert feats.shape == (3, 64)
    logits2, feats2 = model(x, return_features=True)
    torch.testing.assert_close(feats, feats2, atol=0, rtol=0)
    torch.testing.assert_close(logits, logits2, atol=0, rtol=0)
    assert (feats >= 0).all()  # pooled after a ReLU


def test_resnet_conv_head_has_no_linear_layer():
    model = ResNet(3, head="conv", num_classes=100)
    assert not any(isinstance(m, (pnn.Linear, nn.Linear)) for m in model.modules())
    assert model(_images(2)).shape == (2, 100)


def test_resnet_conv_head_equals_linear_head_math():
    """1×1 conv then average pool = average pool then linear, with the same weights."""
    torch.manual_seed(0)
    conv = ResNet(1, head="conv").eval()
    lin = ResNet(1, head="linear").eval()
    state = {k: v for k, v in conv.state_dict().items() if not k.startswith("classifier")}
    state["fc.weight"] = conv.classifier.weight.detach().flatten(1)
    state["fc.bias"] = conv.classifier.bias.detach() + 0.1
    with torch.no_grad():
        conv.classifier.bias.add_(0.1)
    lin.load_state_dict(state)
    x = _images(2)
    torch.testing.assert_close(conv(x), lin(x), atol=1e-5, rtol=1e-5)


def test_resnet20_conv_head_checkpoint_is_small(tmp_path):
    path = tmp_path / "resnet20_conv.pt"
    torch.save(ResNet(3, head="conv").state_dict(), path)
    assert path.stat().st_size < 6 * 1024 * 1024


@pytest.mark.parametrize("activation", ["relu", "swish"])
def test_resnet_activation(activation):
    torch.manual_seed(0)
    model = ResNet(1, activation=activation)
    acts = [m for m in model.modules() if isinstance(m, (pnn.ReLU, pnn.Swish))]
    assert acts and all(isinstance(m, pnn.make_activation(activation).__class__) for m in acts)
    out = model(_images(2))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    if activation == "swish":
        assert (model.feature_map(_images(2)) < 0).any()  # swish, unlike relu, goes negative
    else:
        assert (model.feature_map(_images(2)) >= 0).all()


@pytest.mark.parametrize("norm", NORM_KINDS)
def test_resnet_every_norm_trains(norm):
    torch.manual_seed(0)
    model = ResNet(1, norm_layer=norm_layer(norm)).train()
    x, y = _images(4), torch.tensor([0, 1, 2, 3])
    loss = F.cross_entropy(model(x), y)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    model.eval()
    assert model(x).shape == (4, 10)


def test_resnet_norm_options_reach_the_layers():
    model = ResNet(1, norm_layer=norm_layer("gn", num_groups=4))
    groups = {m.groups for m in model.modules() if isinstance(m, pnn.GroupNorm2d)}
    assert groups == {4}
    default = ResNet(1, norm_layer=norm_layer("gn"))
    assert {m.groups for m in default.modules() if isinstance(m, pnn.GroupNorm2d)} == {8, 16, 32}


def test_resnet_rejects_bad_arguments():
    with pytest.raises(ValueError):
        ResNet(0)
    with pytest.raises(ValueError, match="head"):
        ResNet(1, head="mlp")
    with pytest.raises(ValueError):
        ResNet(1, shortcut="C")
    with pytest.raises(ValueError):
        ResNet(1, norm_layer=norm_layer("foo"))


# ------------------------------------------------------------- no torch layer classes inside
def _foreign_modules(model: nn.Module) -> list[str]:
    return [
        type(m).__qualname__
        for m in model.modules()
        if not type(m).__module__.startswith("project.")
        and not isinstance(m, ALLOWED_TORCH_CONTAINERS)
    ]


MODEL_VARIANTS = [
    pytest.param(
        lambda norm=norm, head=head, sc=sc: ResNet(
            1, norm_layer=norm_layer(norm), head=head, shortcut=sc
        ),
        norm,
        id=f"resnet-{norm}-{head}-{sc}",
    )
    for norm, head, sc in itertools.product(NORM_KINDS, ["linear", "conv"], ["A", "B"])
] + [
    pytest.param(
        lambda norm=norm: SimpleNN(norm_layer=norm_layer(norm)), norm, id=f"simplenn-{norm}"
    )
    for norm in ("none", "bn", "torch_bn")
]


@pytest.mark.parametrize(("build", "norm"), MODEL_VARIANTS)
def test_models_use_only_project_layers(build, norm):
    model = build()
    foreign = _foreign_modules(model)
    if norm == "torch_bn":
        assert foreign and set(foreign) == {"BatchNorm2d"}
        assert any(type(m) is nn.BatchNorm2d for m in model.modules())
    else:
        assert foreign == []
        assert not any(type(m) is nn.BatchNorm2d for m in model.modules())


# ---------------------------------------------------------------------------------- SimpleNN
def test_simplenn_weight_counts():
    model = SimpleNN()
    weights = [m.weight.numel() for m in model.modules() if isinstance(m, (pnn.Conv2d, pnn.Linear))]
    assert weights == [600, 1_152, 69_120, 10_080, 840]
    assert sum(weights) == 81_792
    # conv biases only without a norm (β makes them redundant)
    assert all(m.bias is not None for m in model.modules() if isinstance(m, pnn.Conv2d))
    bn = SimpleNN(norm_layer=norm_layer("bn"))
    assert all(m.bias is None for m in bn.modules() if isinstance(m, pnn.Conv2d))
    assert sum(isinstance(m, pnn.BatchNorm2d) for m in bn.modules()) == 2


@pytest.mark.parametrize("norm", ["none", "bn"])
def test_simplenn_forward_and_features(norm):
    torch.manual_seed(0)
    model = SimpleNN(norm_layer=norm_layer(norm))
    x = _images(5)
    assert model(x).shape == (5, 10)
    feats = model.features(x)
    assert feats.shape == (5, 84)
    logits, feats2 = model(x, return_features=True)
    torch.testing.assert_close(feats, feats2, atol=0, rtol=0)
    assert SimpleNN(num_classes=100)(x).shape == (5, 100)


# --------------------------------------------------------------------------- initial loss
INIT_CASES = [
    pytest.param(lambda: ResNet(2), id="resnet14-bn"),
    pytest.param(lambda: ResNet(3), id="resnet20-bn"),
    pytest.param(lambda: ResNet(2, norm_layer=norm_layer("gn")), id="resnet14-gn"),
    pytest.param(lambda: SimpleNN(), id="simplenn"),
    pytest.param(lambda: SimpleNN(norm_layer=norm_layer("bn")), id="simplenn-bn"),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("build", INIT_CASES)
def test_initial_loss_is_ln_num_classes(build, seed):
    torch.manual_seed(seed)
    model = build().train()
    gen = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(64, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    with torch.no_grad():
        loss = F.cross_entropy(model(x), y)
    assert abs(loss.item() - math.log(10)) < 0.1
