"""The scratch norms under mixed precision (autocast) and channels_last.

Each layer sees a bfloat16 input, as it does after a convolution under
`torch.autocast("cpu", dtype=torch.bfloat16)`, in NCHW or channels_last, at batch 1, 2 and 8.
The references are torch's own layers (`nn.BatchNorm2d`, `nn.InstanceNorm2d`, `nn.GroupNorm`,
`nn.GroupNorm(1, C)` for LN, BIN composed from non-affine BN and IN) run in float64 on the same
bfloat16-rounded input and upstream gradient, in NCHW: the exact answer, which torch's own bf16
layers only approximate. (NCHW because torch's `nn.InstanceNorm2d` backward is wrong for a
channels_last input at batch 1, by more than the gradient itself, even in float64: torch
2.14.1, see `test_torch_instance_norm_channels_last_batch_1`.) Tolerances are bf16's: the
output is rounded to 8 significant bits.

No timing assertions: speed is measured by `python -m project.bench` (experiments/benchmarks).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from project.hardware import bf16_message, bf16_path, cpu_flags, precision_note
from project.models import ResNet, SimpleNN
from project.nn import (
    BatchInstanceNorm2d,
    BatchNorm2d,
    GroupNorm2d,
    InstanceNorm2d,
    LayerNorm2d,
    norm_layer,
)
from project.nn.moments import expand_like, is_channels_last

KINDS = ("bn", "in", "bin", "ln", "gn")
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
C, H, W = 16, 6, 5
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# ------------------------------------------------------------------------------------- helpers
class _BinReference(nn.Module):
    """γ·(ρ·x̂_BN + (1-ρ)·x̂_IN) + β from torch's non-affine BatchNorm2d and InstanceNorm2d."""

    def __init__(self, c: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(c, affine=False)
        self.inorm = nn.InstanceNorm2d(c)
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.rho = nn.Parameter(torch.ones(c))

    def forward(self, x):
        r = self.rho[:, None, None]
        mixed = r * self.bn(x) + (1 - r) * self.inorm(x)
        return self.weight[:, None, None] * mixed + self.bias[:, None, None]


def _pair(kind: str, c: int = C) -> tuple[nn.Module, nn.Module]:
    """(ours, torch's reference), same random γ, β (and ρ, running statistics)."""
    ours, ref = {
        "bn": (BatchNorm2d(c), nn.BatchNorm2d(c)),
        "in": (InstanceNorm2d(c), nn.InstanceNorm2d(c, affine=True)),
        "ln": (LayerNorm2d(c), nn.GroupNorm(1, c)),
        "gn": (GroupNorm2d(c, num_groups=4), nn.GroupNorm(4, c)),
        "bin": (BatchInstanceNorm2d(c), _BinReference(c)),
    }[kind]
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, value in [
            ("weight", 1 + 0.5 * torch.randn(c, generator=gen)),
            ("bias", 0.5 * torch.randn(c, generator=gen)),
            ("rho", 0.1 + 0.8 * torch.rand(c, generator=gen)),
        ]:
            if hasattr(ours, name):
                getattr(ours, name).copy_(value)
                getattr(ref, name).copy_(value)
        if hasattr(ours, "running_mean"):
            rm, rv = 0.3 * torch.randn(c, generator=gen), 0.5 + torch.rand(c, generator=gen)
            bn_ref = ref.bn if kind == "bin" else ref
            for m in (ours, bn_ref):
                m.running_mean.copy_(rm)
                m.running_var.copy_(rv)
    return ours, ref.double()


def _bf16(shape, fmt, seed: int, scale: float = 2.0, shift: float = 0.7) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen) * scale + shift
    return x.to(torch.bfloat16).contiguous(memory_format=fmt)


def _reference(module, x, g):
    """torch's layer in float64 on NCHW copies of x and g: (y, dx, parameter gradients)."""
    return _run(module, x.double().contiguous(), g.double().contiguous(), autocast=False)


def _run(module, x, g, device_type="cpu", dtype=torch.bfloat16, autocast=True):
    """Forward (under autocast) + backward; returns y, dx, dγ, dβ (dρ for BIN)."""
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    with torch.autocast(device_type, dtype=dtype, enabled=autocast):
        y = module(x)
    y.backward(g)
    grads = [module.weight.grad, module.bias.grad]
    if getattr(module, "rho", None) is not None:
        grads.append(module.rho.grad)
    return y, x.grad, grads


def _close_scaled(actual, expected, rel: float, what: str, scale=None) -> None:
    """|actual - expected| <= rel · scale elementwise, scale = max|expected| unless given (bf16
    sums of many terms)."""
    actual, expected = actual.double().cpu(), expected.double().cpu()
    scale = expected.abs().max().clamp(min=1e-3) if scale is None else scale
    err = (actual - expected).abs().max()
    assert err <= rel * scale, f"{what}: max error {err:.3g} > {rel} x scale {scale:.3g}"


def _rho_term_scale(ref: _BinReference, x, g) -> torch.Tensor:
    """dρ = Σ γ·g·(x̂_BN - x̂_IN) per channel is a difference of two sums that mostly cancel
    (terms ~10x the result here): bf16 rounding errs relative to the terms, so they set the
    scale: max over channels of |Σ γ·g·x̂_BN| and |Σ γ·g·x̂_IN|, in float64."""
    x, g = x.double().contiguous(), g.double().contiguous()
    gamma = ref.weight.detach().double()[:, None, None]
    with torch.no_grad():
        terms = [F.batch_norm(x, None, None, training=True), F.instance_norm(x)]
        return max((gamma * g * t).sum((0, 2, 3)).abs().max() for t in terms)


def _assert_matches_reference(got, ref, x, g, fmt, dtype=torch.bfloat16, fused=False) -> None:
    """`_run`'s (y, dx, parameter gradients) against the float64 `_reference`, within bf16
    tolerance: y and dx in x's dtype and memory format, parameter gradients float32.

    `fused`: the values come from inductor's fused kernels, which round bf16 intermediates in
    another order than our eager ops; BIN's dρ, a difference of two sums ~10x its size, is then
    judged against those sums (`_rho_term_scale`) instead of against itself."""
    (y, dx, grads), (y_ref, dx_ref, grads_ref) = got, _reference(ref, x, g)
    assert y.dtype == dtype and dx.dtype == dtype
    assert y.is_contiguous(memory_format=FORMATS[fmt]), "output changed memory format"
    assert dx.is_contiguous(memory_format=FORMATS[fmt]), "input gradient changed memory format"
    torch.testing.assert_close(y.double().cpu(), y_ref, atol=2e-2, rtol=1.6e-2)
    _close_scaled(dx, dx_ref, 2e-2, "dx")
    rho_fused = fused and isinstance(ref, _BinReference)
    for name, grad, grad_ref in zip(("weight", "bias", "rho"), grads, grads_ref):
        assert grad.dtype == torch.float32, f"d{name} is {grad.dtype}"
        if name == "rho" and rho_fused:  # two bf16 roundings (2^-8) of the terms' size
            _close_scaled(grad, grad_ref, 2**-8, "drho", _rho_term_scale(ref, x, g))
        else:
            _close_scaled(grad, grad_ref, 1.5e-2, f"d{name}")


# ----------------------------------------------------------------- layers: values and formats
@pytest.mark.parametrize("n", [1, 2, 8])
@pytest.mark.parametrize("fmt", FORMATS, ids=list(FORMATS))
@pytest.mark.parametrize("kind", KINDS)
def test_train_mode_matches_torch_in_bf16(kind, fmt, n):
    """Forward, input and parameter gradients and running statistics in train mode."""
    ours, ref = _pair(kind)
    x = _bf16((n, C, H, W), FORMATS[fmt], seed=n)
    g = _bf16((n, C, H, W), FORMATS[fmt], seed=100 + n, scale=1.0, shift=0.0)
    _assert_matches_reference(_run(ours, x, g), ref, x, g, fmt)
    if hasattr(ours, "running_mean"):
        bn_ref = ref.bn if kind == "bin" else ref
        for name in ("running_mean", "running_var"):
            got, want = getattr(ours, name), getattr(bn_ref, name)
            assert got.dtype == torch.float32, f"{name} is {got.dtype}"
            torch.testing.assert_close(got.double(), want, atol=2e-3, rtol=5e-3)


@pytest.mark.parametrize("fmt", FORMATS, ids=list(FORMATS))
@pytest.mark.parametrize("kind", ["bn", "bin"])
def test_eval_mode_matches_torch_in_bf16(kind, fmt):
    """Eval mode (moving statistics), with gradients and under no_grad (validation)."""
    ours, ref = _pair(kind)
    ours.eval(), ref.eval()
    x = _bf16((4, C, H, W), FORMATS[fmt], seed=3)
    g = _bf16((4, C, H, W), FORMATS[fmt], seed=4, scale=1.0, shift=0.0)
    y, dx, grads = _run(ours, x, g)
    y_ref, dx_ref, grads_ref = _reference(ref, x, g)
    torch.testing.assert_close(y.double(), y_ref, atol=2e-2, rtol=1.6e-2)
    _close_scaled(dx, dx_ref, 2e-2, "dx")
    for got, want in zip(grads, grads_ref):
        _close_scaled(got, want, 1.5e-2, "parameter gradient")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y_val = ours(x)
    assert y_val.dtype == torch.bfloat16 and y_val.is_contiguous(memory_format=FORMATS[fmt])
    torch.testing.assert_close(y_val.double(), y_ref, atol=2e-2, rtol=1.6e-2)


@pytest.mark.parametrize("fmt", FORMATS, ids=list(FORMATS))
@pytest.mark.parametrize("kind", KINDS)
def test_no_grad_forward_keeps_dtype_and_format(kind, fmt):
    ours, ref = _pair(kind)
    x = _bf16((2, C, H, W), FORMATS[fmt], seed=5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = ours(x)
    assert y.dtype == torch.bfloat16 and y.is_contiguous(memory_format=FORMATS[fmt])
    with torch.no_grad():
        torch.testing.assert_close(y.double(), ref(x.double()), atol=2e-2, rtol=1.6e-2)


@pytest.mark.parametrize("kind", KINDS)
def test_large_mean_is_centred_before_the_variance(kind):
    """|μ|/σ = 8 in bf16: the statistics come from centred values, not E[x²] - E[x]²."""
    ours, ref = _pair(kind)
    x = _bf16((4, C, H, W), torch.channels_last, seed=6, scale=0.5, shift=4.0)
    g = _bf16((4, C, H, W), torch.channels_last, seed=7, scale=1.0, shift=0.0)
    y, dx, _ = _run(ours, x, g)
    y_ref, dx_ref, _ = _reference(ref, x, g)
    torch.testing.assert_close(y.double(), y_ref, atol=3e-2, rtol=1.6e-2)
    _close_scaled(dx, dx_ref, 3e-2, "dx")


@pytest.mark.parametrize("kind", KINDS)
def test_torch_autocast_forward_agrees(kind):
    """Forward under autocast: the same output as torch's own layer under autocast."""
    ours, ref = _pair(kind)
    ref = ref.float()
    x = _bf16((2, C, H, W), torch.channels_last, seed=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, y_torch = ours(x), ref(x)
    torch.testing.assert_close(y.double(), y_torch.double(), atol=3e-2, rtol=1.6e-2)


def test_torch_instance_norm_channels_last_batch_1():
    """Why the references run in NCHW: torch's own InstanceNorm2d backward disagrees with
    itself between NCHW and channels_last at batch 1 (float64). Ours agrees with NCHW. If this
    starts failing, torch fixed it and this test can go."""
    x = _bf16((1, C, H, W), torch.contiguous_format, seed=12).double()
    g = _bf16((1, C, H, W), torch.contiguous_format, seed=13, shift=0.0).double()
    cl = torch.channels_last
    ref = nn.InstanceNorm2d(C, affine=True).double()
    dx_nchw = _run(ref, x, g, autocast=False)[1]
    dx_cl = _run(
        ref, x.contiguous(memory_format=cl), g.contiguous(memory_format=cl), autocast=False
    )[1]
    assert (dx_nchw - dx_cl).abs().max() > 0.1 * dx_nchw.abs().max()
    ours = InstanceNorm2d(C).double()
    dx_ours = _run(
        ours, x.contiguous(memory_format=cl), g.contiguous(memory_format=cl), autocast=False
    )[1]
    torch.testing.assert_close(dx_ours, dx_nchw)


@pytest.mark.parametrize("kind", KINDS)
def test_no_full_size_copies_in_bf16_channels_last(kind):
    """No silent float32 upcast and no layout conversion of the activation: no full-size
    dtype cast, copy or clone in the forward and backward pass."""
    ours, _ = _pair(kind)
    shape = (4, C, H, W)
    x = _bf16(shape, torch.channels_last, seed=9).requires_grad_(True)
    g = _bf16(shape, torch.channels_last, seed=10)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = ours(x)
        y.backward(g)
    copies = [
        e.name
        for e in prof.events()
        if e.name in ("aten::_to_copy", "aten::copy_", "aten::clone", "aten::contiguous")
        and any(list(s) == list(shape) for s in e.input_shapes)
    ]
    assert copies == [], f"full-size copies: {copies}"


# ------------------------------------------------------------------------ torch.compile
def _compiled_matches_in_bf16(kind: str, fmt: str, backend: str) -> None:
    """`compile=true` with `trainer=cpu_bf16`: the compiled layer (the custom autograd Function
    traced by dynamo) under CPU bf16 autocast gives what the eager one does, within bf16
    tolerance of the float64 reference, keeping dtype and memory format."""
    torch._dynamo.reset()
    ours, ref = _pair(kind)
    x = _bf16((8, C, H, W), FORMATS[fmt], seed=21)
    g = _bf16((8, C, H, W), FORMATS[fmt], seed=22, scale=1.0, shift=0.0)
    try:
        got = _run(torch.compile(ours, backend=backend, fullgraph=True), x, g)
    except Exception as e:  # pragma: no cover - depends on the toolchain
        if backend == "aot_eager":
            raise  # no C++ toolchain involved: a failure here is a graph break or a bug
        pytest.skip(f"torch.compile({backend}) unavailable here: {type(e).__name__}: {e}")
    _assert_matches_reference(got, ref, x, g, fmt, fused=backend == "inductor")


@pytest.mark.parametrize("fmt", FORMATS, ids=list(FORMATS))
@pytest.mark.parametrize("kind", KINDS)
def test_compiled_layer_matches_torch_in_bf16(kind, fmt):
    """Graph capture (aot_eager: no C++ toolchain needed), fullgraph: no graph breaks."""
    _compiled_matches_in_bf16(kind, fmt, "aot_eager")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS, ids=list(FORMATS))
@pytest.mark.parametrize("kind", KINDS)
def test_inductor_compiled_layer_matches_torch_in_bf16(kind, fmt):
    """inductor's fused bf16 kernels (the CPU setting the benchmarks recommend): `-m slow`."""
    _compiled_matches_in_bf16(kind, fmt, "inductor")


# --------------------------------------------------------------------------- whole models
@pytest.mark.parametrize("fmt", FORMATS, ids=list(FORMATS))
@pytest.mark.parametrize(
    "build",
    [
        lambda: ResNet(1, norm_layer=norm_layer("bn"), head="linear"),
        lambda: ResNet(1, norm_layer=norm_layer("gn"), head="conv"),
        lambda: ResNet(1, norm_layer=norm_layer("bin"), head="linear", widths=(8, 16, 16)),
        lambda: SimpleNN(norm_layer=norm_layer("bn")),
        lambda: SimpleNN(norm_layer=norm_layer("ln")),
    ],
    ids=["resnet-bn", "resnet_fcn-gn", "resnet-bin", "simplenn-bn", "simplenn-ln"],
)
def test_bf16_training_step_of_every_model(build, fmt):
    torch.manual_seed(0)
    model = build().to(memory_format=FORMATS[fmt]).train()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=FORMATS[fmt])
    y = torch.randint(0, 10, (4,))
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        for p in model.parameters():
            assert p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
        opt.step()
        opt.zero_grad(set_to_none=True)
    assert torch.isfinite(loss)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before))
    for name, buf in model.named_buffers():
        if "running" in name:
            assert buf.dtype == torch.float32 and torch.isfinite(buf).all(), name


# ---------------------------------------------------------------------------------- CUDA
@CUDA
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("fmt", FORMATS, ids=list(FORMATS))
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_autocast_matches_torch(kind, fmt, dtype):
    ours, ref = _pair(kind)
    ours = ours.cuda()
    x = _bf16((8, C, H, W), FORMATS[fmt], seed=11).to(dtype)
    g = _bf16((8, C, H, W), FORMATS[fmt], seed=12, scale=1.0, shift=0.0).to(dtype)
    got = _run(ours, x.cuda(), g.cuda(), device_type="cuda", dtype=dtype)
    _assert_matches_reference(got, ref, x, g, fmt, dtype)
    if hasattr(ours, "running_mean"):
        assert ours.running_mean.dtype == ours.running_var.dtype == torch.float32


# ------------------------------------------------------------------------------ hardware
def test_bf16_path_from_cpu_flags():
    assert bf16_path({"avx512f", "amx_tile", "amx_bf16", "avx512_bf16"}) == "amx"
    assert bf16_path({"avx512f", "avx512_bf16"}) == "avx512_bf16"
    assert bf16_path({"avx2", "fma"}) == "none"
    assert bf16_path() in ("amx", "avx512_bf16", "none")
    assert cpu_flags("processor : 0\nflags : fpu avx2 amx_bf16\n") == {"fpu", "avx2", "amx_bf16"}
    assert cpu_flags("no flags line") == set()


def test_bf16_message_says_when_bf16_does_not_pay_off():
    assert "will not pay off" in bf16_message("none")
    assert "AMX" in bf16_message("amx") and "avx512_bf16" in bf16_message("avx512_bf16")
    assert precision_note({"precision": "32-true", "accelerator": "cpu"}) is None
    assert precision_note({"precision": "bf16-mixed", "accelerator": "cpu"}) == bf16_message(
        bf16_path()
    )


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_channels_last_coefficients_are_materialised_on_the_cpu_only(device):
    """The (N, C) scale/shift coefficients become a W·C-contiguous operand only where the CPU's
    short inner loop needs it; on other devices (CUDA; `meta` stands in for it here) they stay a
    broadcast view, because there the extra copy is one more kernel launch per use."""
    x = torch.empty(2, C, H, W, dtype=torch.bfloat16, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    coef = torch.ones(2, C, device=device)
    operand = expand_like(coef, x)
    assert operand.dtype == torch.bfloat16
    assert operand.shape[3] == (W if device == "cpu" else 1)
    # The operand broadcasts against x without changing its memory format.
    assert is_channels_last(torch.addcmul(x, x, operand))
