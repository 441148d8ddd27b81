"""Check a composed config before anything is built or trained.

Each problem a user can type gets one paragraph naming the key, the value, the valid range and
an example fix (raised as `UserError`); Hydra itself reports unknown group options (`norm=foo`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from project.data import validate_data_config
from project.errors import UserError
from project.nn import NORM_KINDS, default_num_groups


def _fail(key: str, value, rule: str, fix: str) -> None:
    raise UserError(f"Invalid config: `{key}={value}`. {rule} Fix: {fix}")


def validate_config(cfg: DictConfig) -> None:
    """Raise UserError for the first invalid setting (before data is loaded or a model built)."""
    if not isinstance(cfg.batch_size, int) or cfg.batch_size < 1:
        _fail(
            "batch_size",
            cfg.batch_size,
            "The batch size must be a whole number >= 1.",
            "e.g. `batch_size=128` (or 8 for the small-batch study).",
        )
    model_target = str(cfg.model.get("_target_", ""))
    if model_target.endswith("ResNet"):
        n = cfg.model.n
        if not isinstance(n, int) or n < 1:
            _fail(
                "model.n",
                n,
                "A CIFAR ResNet has 6n+2 layers with n >= 1 residual blocks per stage.",
                "e.g. `model.n=2` (ResNet-14) or `model.n=3` (ResNet-20).",
            )
    kind = cfg.norm.get("kind")
    if kind not in NORM_KINDS:
        _fail("norm.kind", kind, f"Valid norms: {', '.join(NORM_KINDS)}.", "use `norm=gn` etc.")
    if kind == "gn" and cfg.norm.get("num_groups") is not None:
        groups = cfg.norm.num_groups
        widths = list(cfg.model.get("widths", [8, 16])) if model_target.endswith("ResNet") else []
        if model_target.endswith("SimpleNN"):
            widths = [8, 16]
        bad = [w for w in widths if not isinstance(groups, int) or groups < 1 or w % groups]
        if bad:
            divisors = sorted(
                {g for g in range(1, min(widths) + 1) if all(w % g == 0 for w in widths)}
            )
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
    lr = cfg.optimizer.get("lr")
    if not isinstance(lr, (int, float)) or lr <= 0:
        _fail(
            "optimizer.lr",
            lr,
            "The learning rate must be a number > 0.",
            "e.g. `optimizer.lr=0.1` for SGD or `optimizer.lr=0.001` for AdamW.",
        )
    wd = cfg.optimizer.get("weight_decay", 0.0)
    if not isinstance(wd, (int, float)) or wd < 0:
        _fail("optimizer.weight_decay", wd, "Weight decay must be >= 0.", "e.g. `5e-4` or `0`.")
    l1 = cfg.regularization.l1
    if not isinstance(l1, (int, float)) or l1 < 0:
        _fail("regularization.l1", l1, "The L1 coefficient must be >= 0.", "e.g. `1e-5` or `0`.")
    epochs = cfg.trainer.get("max_epochs")
    if not isinstance(epochs, int) or epochs < 1:
        _fail("trainer.max_epochs", epochs, "Train for at least one epoch.", "e.g. `100`.")
    if cfg.early_stopping.patience is not None and cfg.early_stopping.patience < 0:
        _fail(
            "early_stopping.patience",
            cfg.early_stopping.patience,
            "Patience counts epochs and must be >= 0.",
            "e.g. `early_stopping.patience=20`.",
        )
    validate_data_config(cfg.data)
