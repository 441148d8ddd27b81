"""The one check of a composed training config, run once before anything is built or trained.

Every rule lives here, once: each problem a user can type gets one paragraph naming the key, the
value, the valid range and an example fix (raised as `UserError`). Hydra itself reports unknown
group options (`norm=foo`). Layers and models keep only their own invariants as plain ValueErrors
(they are also built from Python, without a config).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from hydra.utils import get_class
from omegaconf import DictConfig

from project.errors import UserError, warn
from project.training.compiling import COMPILE_SETTINGS, TORCH_COMPILE_MODES

SEED_MAX = 2**32 - 1  # numpy's seed range
BATCH_MAX = 2**20  # beyond any dataset here; larger values only overflow later
DEPTH_N_MAX = 200  # ResNet-1202, the deepest CIFAR net of He et al. (2016)
WIDTH_MAX = 2048


def _fail(key: str, value, rule: str, fix: str) -> None:
    raise UserError(f"Invalid config: `{key}={value}`. {rule} Fix: {fix}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_range(key: str, value, lo: float, hi: float, *, hi_open: bool, fix: str) -> None:
    """lo <= value <= hi (or < hi when hi_open), finite."""
    ok = _is_number(value) and math.isfinite(value) and lo <= value
    ok = ok and (value < hi if hi_open else value <= hi)
    if not ok:
        bracket = ")" if hi_open else "]"
        _fail(key, value, f"It must be a number in [{lo:g}, {hi:g}{bracket}.", fix)


def _check_positive(key: str, value, fix: str, *, allow_zero: bool = False) -> None:
    ok = _is_number(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        rule = ">= 0" if allow_zero else "> 0"
        _fail(key, value, f"It must be a finite number {rule}.", fix)


def validate_config(cfg: DictConfig) -> None:
    """Raise UserError for the first invalid setting (before data is loaded or a model built)."""
    _validate_run(cfg)
    widths = _validate_model(cfg.model)
    _validate_norm(cfg.norm, widths)
    _validate_optimization(cfg)
    _validate_data(cfg)


def _validate_run(cfg: DictConfig) -> None:
    batch = cfg.batch_size
    if not _is_int(batch) or not 1 <= batch <= BATCH_MAX:
        _fail(
            "batch_size",
            batch,
            f"The batch size must be a whole number >= 1 (at most {BATCH_MAX:,}).",
            "e.g. `batch_size=128` (or 8 for the small-batch study).",
        )
    if not _is_int(cfg.seed) or not 0 <= cfg.seed <= SEED_MAX:
        _fail(
            "seed",
            cfg.seed,
            f"Seeds are whole numbers in numpy's range 0 to {SEED_MAX:,} (2^32 - 1).",
            "e.g. `seed=0`, or `--multirun seed=0,1,2` for several seeds.",
        )
    epochs = cfg.trainer.get("max_epochs")
    if not _is_int(epochs) or epochs < 1:
        _fail("trainer.max_epochs", epochs, "Train for at least one epoch.", "e.g. `100`.")
    threads = cfg.get("threads")
    if threads is not None and (not _is_int(threads) or threads < 1):
        _fail("threads", threads, "Torch threads per job: a whole number >= 1, or null.", "`1`.")
    compile_setting = cfg.get("compile", False)
    if compile_setting not in COMPILE_SETTINGS:
        _fail(
            "compile",
            compile_setting,
            "It is false, true (inductor's default mode) or one of torch.compile's modes: "
            + ", ".join(TORCH_COMPILE_MODES)
            + ".",
            "`compile=true`, or `compile=reduce-overhead` on a GPU (CUDA graphs).",
        )
    patience = cfg.early_stopping.patience
    if patience is not None and (not _is_int(patience) or patience < 0):
        _fail(
            "early_stopping.patience",
            patience,
            "Patience counts epochs and must be a whole number >= 0.",
            "e.g. `early_stopping.patience=20`.",
        )
    quantiles = list(cfg.feature_quantiles)
    if not all(_is_number(q) and 0 <= q <= 1 for q in quantiles):
        _fail(
            "feature_quantiles",
            quantiles,
            "Each quantile is a fraction in [0, 1].",
            "e.g. `feature_quantiles=[0.01,0.2,0.8,0.99]`.",
        )


def _resnet_cost(n: int, widths: Iterable[int]) -> str:
    """'ResNet-<6n+2> with about <p> parameters' for messages about too-large models."""
    widths = list(widths)
    params, c_in = 27 * widths[0], widths[0]
    for w in widths:
        params += 9 * (c_in * w + (2 * n - 1) * w * w)
        c_in = w
    return f"ResNet-{6 * n + 2} with about {params / 1e6:,.1f}M parameters"


def _validate_model(model: DictConfig) -> tuple[int, ...]:
    """Check the model options; return the channel counts its norm layers will see."""
    from project.models.blocks import SHORTCUTS
    from project.models.init import INITS
    from project.models.resnet import HEADS
    from project.nn import ACTIVATIONS

    target = model.get("_target_")
    try:
        model_cls = get_class(str(target))
    except Exception:
        _fail("model._target_", target, "It is not an importable class.", "use `model=resnet`.")
    choices = {
        "head": HEADS,
        "shortcut": SHORTCUTS,
        "activation": tuple(ACTIVATIONS),
        "init": INITS,
        "zero_init_residual": (False, True),
    }
    for key, valid in choices.items():
        if key in model and model[key] not in valid:
            _fail(
                f"model.{key}",
                model[key],
                f"Valid values: {', '.join(valid)}.",
                f"e.g. `model.{key}={valid[0]}`.",
            )
    if "widths" in model:
        widths = list(model.widths)
        if not widths or not all(_is_int(w) and 1 <= w <= WIDTH_MAX for w in widths):
            _fail(
                "model.widths",
                widths,
                f"Each stage width is a number of channels, a whole number from 1 to {WIDTH_MAX}.",
                "e.g. `model.widths=[16,32,64]` (the paper's CIFAR widths).",
            )
    if "n" in model:
        n = model.n
        if not _is_int(n) or not 1 <= n <= DEPTH_N_MAX:
            cost = f" n={n} would build a {_resnet_cost(n, model.widths)}." if _is_int(n) else ""
            _fail(
                "model.n",
                n,
                f"A CIFAR ResNet has 6n+2 layers with n >= 1 residual blocks per stage, at "
                f"most n={DEPTH_N_MAX} (the paper's deepest, ResNet-1202).{cost}",
                "e.g. `model.n=2` (ResNet-14) or `model.n=3` (ResNet-20).",
            )
    options = {k: v for k, v in model.items() if k != "_target_"}
    return tuple(model_cls.norm_widths(**options))


def _validate_norm(norm: DictConfig, widths: tuple[int, ...]) -> None:
    from project.nn import GroupNorm2d, default_num_groups

    if "momentum" in norm:
        _check_range(
            "norm.momentum",
            norm.momentum,
            0,
            1,
            hi_open=True,
            fix="the weight of the new batch in the running statistics, e.g. "
            "`norm.momentum=0.1` (torch's default).",
        )
    if "eps" in norm:
        _check_positive("norm.eps", norm.eps, "e.g. `norm.eps=1e-5`.")
    if "rho_init" in norm:
        _check_range("norm.rho_init", norm.rho_init, 0, 1, hi_open=False, fix="e.g. `1.0`.")
    target = norm.get("_target_")
    try:
        norm_cls = get_class(str(target))
    except Exception:
        _fail(
            "norm._target_",
            target,
            "It is not an importable class or function.",
            "pick a norm with `norm=bn|in|bin|ln|gn|none|torch_bn`, or point "
            "`norm._target_` at a class taking `num_channels` first.",
        )
    groups = norm.get("num_groups")
    if not (isinstance(norm_cls, type) and issubclass(norm_cls, GroupNorm2d)) or groups is None:
        return
    bad = [w for w in widths if not _is_int(groups) or groups < 1 or w % groups]
    if bad:
        divisors = sorted({g for g in range(1, min(widths) + 1) if all(w % g == 0 for w in widths)})
        _fail(
            "norm.num_groups",
            groups,
            f"Group norm needs the number of groups to divide every layer width "
            f"({', '.join(map(str, widths))}); it does not divide {bad}. Valid values: "
            f"{', '.join(map(str, divisors))}.",
            f"e.g. `norm.num_groups={divisors[-1]}`, or `norm.num_groups=null` for the default "
            f"min(32, C/2) per layer ({default_num_groups(widths[0])} groups at width "
            f"{widths[0]}).",
        )


def _validate_optimization(cfg: DictConfig) -> None:
    opt = cfg.optimizer
    lr = opt.get("lr")
    if not (_is_number(lr) and math.isfinite(lr) and lr > 0):
        _fail(
            "optimizer.lr",
            lr,
            "The learning rate must be a finite number > 0.",
            "e.g. `optimizer.lr=0.1` for SGD or `optimizer.lr=0.001` for AdamW.",
        )
    _check_positive(
        "optimizer.weight_decay", opt.get("weight_decay", 0.0), "e.g. `5e-4`.", allow_zero=True
    )
    if "momentum" in opt:
        _check_range(
            "optimizer.momentum", opt.momentum, 0, 1, hi_open=True, fix="e.g. `0.9` (SGD)."
        )
    for i, beta in enumerate(opt.get("betas") or []):
        _check_range(f"optimizer.betas[{i}]", beta, 0, 1, hi_open=True, fix="e.g. `[0.9,0.999]`.")
    gate = cfg.get("gate_group")
    if gate is not None:
        _check_positive("gate_group.lr_scale", gate.get("lr_scale", 1.0), "e.g. `10` (BIN's).")
        _check_positive(
            "gate_group.weight_decay", gate.get("weight_decay", 0.0), "e.g. `0`.", allow_zero=True
        )
    _check_positive("regularization.l1", cfg.regularization.l1, "e.g. `1e-5`.", allow_zero=True)
    _check_range(
        "regularization.label_smoothing",
        cfg.regularization.label_smoothing,
        0,
        1,
        hi_open=True,
        fix="e.g. `regularization.label_smoothing=0.1` (0 = off).",
    )
    epochs = cfg.trainer.max_epochs
    warmup = cfg.scheduler.get("warmup_epochs", 0)
    if not (_is_number(warmup) and 0 <= warmup < epochs):
        _fail(
            "scheduler.warmup_epochs",
            warmup,
            f"The warm-up lasts from 0 (off) to less than trainer.max_epochs={epochs} epochs.",
            "e.g. `scheduler.warmup_epochs=5` (Goyal et al.) or `0`.",
        )
    late = [m for m in cfg.scheduler.get("milestones") or [] if _is_number(m) and m >= epochs]
    if late:
        warn(
            f"scheduler.milestones {late} are at or after the last epoch (trainer.max_epochs="
            f"{epochs}), so the lr never decays there. Milestones below 1 are fractions of "
            f"max_epochs (e.g. [0.5,0.75]); larger ones are epoch numbers."
        )
    every = cfg.scheduler.get("decay_epochs")
    if _is_number(every) and every >= epochs:
        warn(
            f"scheduler.decay_epochs={every} is at or after the last epoch (trainer.max_epochs="
            f"{epochs}), so the step schedule never decays the lr: this run trains at a constant "
            f"lr. Scale it with the epochs, e.g. scheduler.decay_epochs={max(1, epochs // 3)}."
        )


def _validate_data(cfg: DictConfig) -> None:
    from project.data import validate_data_config

    validate_data_config(cfg.data)
