"""Load and validate checkpoints: a Lightning `.ckpt` of a training run or an exported `.pt`.

Both kinds carry everything needed to rebuild the network without any training config: the model
and norm configs, the number and names of the classes and the input normalisation statistics.

    model, meta = load_model("outputs/<date>/<time>/checkpoints/best.ckpt")
    model, meta = load_model("outputs/<date>/<time>/export/model.pt")   # no Lightning needed

Every way a file can fail to be a usable checkpoint (missing, not a checkpoint, no
hyperparameters, weights of another architecture) raises a `UserError` saying how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from project.checkpoints.paths import HOW_TO_GET_ONE
from project.errors import UserError

FORMAT = "normres-weights-v1"
LIGHTNING_PREFIX = "model."  # ImageClassifier keeps the network as `self.model`
MAX_LISTED = 5  # mismatched keys named in an error message; the rest are counted


def lightning_network_weights(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The bare network's weights inside a LightningModule state_dict. Loading goes through
    `ImageClassifier.load_from_checkpoint`; this view is for checks and error messages (which
    keys are missing or of another shape) and for exported files."""
    n = len(LIGHTNING_PREFIX)
    return {k[n:]: v for k, v in state_dict.items() if k.startswith(LIGHTNING_PREFIX)}


def plain(value: Any) -> Any:
    """Plain dicts/lists/scalars (no OmegaConf, AttributeDict or tuples), so the exported file
    loads with `torch.load(..., weights_only=True)`."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Tensor):
        return value.tolist()
    return value


def _torch_load(path: Path) -> Any:
    """Load `path`, trying the safe weights-only unpickler first (enough for exported files);
    Lightning checkpoints hold other objects and need the full one."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        raise UserError(
            f"{path} is not a checkpoint: torch.load cannot read it ({reason.strip()[:200]}). "
            f"It may be truncated, or another kind of file. {HOW_TO_GET_ONE}"
        ) from None


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, Tensor]]:
    """`(meta, state_dict of the bare network)` of a Lightning `.ckpt` or an exported `.pt`.

    meta: `model`, `norm`, `num_classes`, `class_names`, `data_stats`, `path`, `kind`
    ("lightning" or "export") and, for Lightning checkpoints, `epoch`.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(
            f"Checkpoint {path} does not exist (absolute path {path.resolve()}). Check the path; "
            f"a relative path is relative to the directory you run the command from. "
            f"{HOW_TO_GET_ONE}"
        )
    if path.is_dir():
        hint = sorted(str(p) for p in path.glob("**/*.ckpt"))[:3]
        found = f" It contains {', '.join(hint)}." if hint else ""
        raise UserError(
            f"Checkpoint {path} is a directory, not a file.{found} Pass the checkpoint file "
            f"itself. {HOW_TO_GET_ONE}"
        )
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path} is not a checkpoint of this project: it holds a {type(obj).__name__}, not a "
            f"dict of weights and hyperparameters. {HOW_TO_GET_ONE}"
        )
    if obj.get("format") == FORMAT:
        hparams, state_dict, kind = obj, dict(obj.get("state_dict") or {}), "export"
    elif "hyper_parameters" in obj and "state_dict" in obj:
        hparams, kind = obj["hyper_parameters"], "lightning"
        state_dict = lightning_network_weights(obj["state_dict"])
    else:
        what = (
            "a bare state_dict (weights only)"
            if obj and all(isinstance(v, Tensor) for v in obj.values())
            else f"a dict with keys {', '.join(map(str, list(obj)[:6]))}"
        )
        raise UserError(
            f"{path} has no hyperparameters: it is {what}, without the model/norm configs and "
            f"classes needed to rebuild the network (a state_dict saved elsewhere, or a "
            f"checkpoint of another program). {HOW_TO_GET_ONE}"
        )
    missing = [k for k in ("model", "norm", "num_classes") if not hparams.get(k)]
    if missing:
        raise UserError(
            f"{path} is missing the hyperparameters {', '.join(missing)} needed to rebuild the "
            f"network (it was saved by another version or program). {HOW_TO_GET_ONE}"
        )
    if not state_dict:
        raise UserError(f"{path} holds no network weights (`model.*` keys). {HOW_TO_GET_ONE}")
    num_classes = int(hparams["num_classes"])
    class_names = plain(hparams.get("class_names")) or [str(i) for i in range(num_classes)]
    meta = {
        "path": str(path),
        "kind": kind,
        "model": plain(hparams["model"]),
        "norm": plain(hparams["norm"]),
        "norm_name": hparams.get("norm_name") or plain(hparams["norm"]).get("kind"),
        "num_classes": num_classes,
        "class_names": [str(c) for c in class_names],
        "data_stats": plain(hparams.get("data_stats")),
    }
    if kind == "lightning":
        meta["epoch"] = obj.get("epoch")
    return meta, state_dict


def describe_mismatch(model: nn.Module, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Human-readable differences between a network's parameters and a state_dict."""
    expected = model.state_dict()
    lines = []
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    for label, items in (
        ("shape mismatch", shapes),
        ("missing from the checkpoint", missing),
        ("not in the model", unexpected),
    ):
        if items:
            more = f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
            lines.append(f"{len(items)} {label}: {'; '.join(items[:MAX_LISTED])}{more}")
    return lines


def build_network(meta: Mapping, state_dict: Mapping[str, Tensor]) -> nn.Module:
    """The network `meta` describes, with `state_dict` loaded, in eval mode on the CPU."""
    from project.models.factory import build_model

    arch = ", ".join(f"{k}={v}" for k, v in meta["model"].items())
    try:
        model = build_model(meta["model"], meta["norm"], meta["num_classes"])
    except Exception as err:
        raise UserError(
            f"Cannot build the network described by {meta['path']} ({arch}; norm "
            f"{meta['norm_name']}): {type(err).__name__}: {str(err).splitlines()[0]}. "
            f"If you overrode the architecture (model=...), check its options; otherwise the "
            f"checkpoint comes from an incompatible version of project.models."
        ) from None
    problems = describe_mismatch(model, state_dict)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        problems = problems or [str(err).splitlines()[0]]
    if problems:
        raise UserError(
            f"{meta['path']} is a checkpoint of another architecture: its weights do not fit the "
            f"network its hyperparameters (or your model= override) describe ({arch}; norm "
            f"{meta['norm_name']}). {' | '.join(problems)}. Evaluate it without a model= "
            f"override, or with the model options it was trained with."
        )
    return model.eval()


def _open(path: str | Path, model_cfg: Mapping | None, **execution: Any):
    """`(meta, bare network weights, ImageClassifier or None)`: the module (eval mode, CPU) when
    Lightning can load the file, else None (an exported file, or weights that do not fit: then
    `build_network` rebuilds the network or says why in one paragraph). `execution`: the
    module's `compile` and `channels_last` (both off unless given)."""
    meta, state_dict = read_checkpoint(path)
    if model_cfg:
        meta["model"] = plain(model_cfg)
    if meta["kind"] != "lightning":
        return meta, state_dict, None
    from project.training.module import ImageClassifier

    try:  # the LightningModule rebuilds its network from the saved hyperparameters
        module = ImageClassifier.load_from_checkpoint(
            path,
            map_location="cpu",
            model=meta["model"],
            **{"compile": False, "channels_last": False, **execution},
        )
        return meta, state_dict, module.eval()
    except Exception:
        return meta, state_dict, None


def load_model(
    path: str | Path, model_cfg: Mapping | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """`(network in eval mode on the CPU, meta)` from a Lightning `.ckpt` or an exported `.pt`.

    `model_cfg` replaces the checkpoint's model config (evaluating as another architecture);
    a state_dict that does not fit it raises a UserError naming the mismatched keys.
    """
    meta, state_dict, module = _open(path, model_cfg)
    if module is not None:
        return module.model, meta
    return build_network(meta, state_dict), meta


def load_classifier(
    path: str | Path,
    model_cfg: Mapping | None = None,
    compile: bool | str = False,
    channels_last: bool = False,
) -> tuple[Any, dict]:
    """`(ImageClassifier in eval mode on the CPU, meta)`, for `trainer.test`/`trainer.predict`:
    Lightning's own loading for a `.ckpt`, a module rebuilt around the weights of an exported
    `.pt`. `model_cfg` and the errors are those of `load_model`.

    `compile` and `channels_last` run the network as a training run with those settings did:
    inductor's fused kernels round differently from eager ones, so only the same execution
    reproduces a compiled run's recorded predictions image for image."""
    execution = {"compile": compile, "channels_last": channels_last}
    meta, state_dict, module = _open(path, model_cfg, **execution)
    if module is not None:
        return module, meta
    from project.training.module import ImageClassifier

    network = build_network(meta, state_dict)  # checks the weights fit, with a clear message
    module = ImageClassifier(
        model=meta["model"],
        norm=meta["norm"],
        optimizer={},  # inference only: nothing is trained
        scheduler={},
        num_classes=meta["num_classes"],
        class_names=meta["class_names"],
        data_stats=meta["data_stats"],
        norm_name=meta["norm_name"],
        **execution,
    )
    module.model.load_state_dict(network.state_dict())
    return module.eval(), meta
