"""BN sanity check: our from-scratch BatchNorm (`bn`) against `torch.nn.BatchNorm2d` (`torch_bn`).

With the same seed and config the two should train (nearly) identically, so the largest
per-epoch gap in val accuracy and train/val loss is a direct measure of implementation error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from project.report.runs import Run
from project.report.tables import markdown_table
from project.results import override_key

# (metric name shown, how to get its per-epoch series from a run)
_CURVES = (
    ("val/acc", lambda r: r.history.series("val/acc")),
    ("val/loss", lambda r: r.history.series("val/loss")),
    ("train/loss", lambda r: r.history.train_loss()),
)


_VARIANTS = {"bn", "torch_bn"}


@dataclass
class SanityPair:
    bn: Run
    torch_bn: Run
    common_epochs: int
    max_abs_diff: dict[str, float | None]  # None when the pair shares no epoch for that metric


def _pair_key(run: Run) -> str:
    # Everything but the norm choice (config and sweep overrides) must match for the comparison
    # to mean anything.
    config = {k: v for k, v in run.config.items() if k != "norm"}
    overrides = sorted(
        o
        for o in run.overrides
        if override_key(o) != "norm" and o.split("=", 1)[-1] not in _VARIANTS
    )
    return json.dumps([config, overrides], sort_keys=True, default=str)


def pair_runs(runs: list[Run]) -> list[tuple[Run, Run]]:
    """Match each `bn` run with a `torch_bn` run of the same config (else in label order)."""
    bns = [r for r in runs if r.variant == "bn"]
    torch_bns = [r for r in runs if r.variant == "torch_bn"]
    pairs = []
    for bn in list(bns):
        match = next((t for t in torch_bns if _pair_key(t) == _pair_key(bn)), None)
        if match is not None:
            pairs.append((bn, match))
            bns.remove(bn)
            torch_bns.remove(match)
    # Leftovers (configs recorded differently) are still compared, in the runs' sorted order.
    pairs.extend(zip(bns, torch_bns))
    return pairs


def max_abs_diff(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> float | None:
    """Largest |a - b| over the epochs where both series have a finite value."""
    (ea, va), (eb, vb) = a, b
    common, ia, ib = np.intersect1d(ea, eb, return_indices=True)
    if common.size == 0:
        return None
    return float(np.max(np.abs(va[ia] - vb[ib])))


def bn_sanity(runs: list[Run]) -> list[SanityPair]:
    result = []
    for bn, tbn in pair_runs(runs):
        diffs = {name: max_abs_diff(get(bn), get(tbn)) for name, get in _CURVES}
        common = np.intersect1d(bn.history.epochs, tbn.history.epochs).size
        result.append(SanityPair(bn, tbn, int(common), diffs))
    return result


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3e}"


def sanity_table(pairs: list[SanityPair]) -> tuple[list[str], list[list[str]]]:
    headers = ["bn run", "torch_bn run", "common epochs"]
    headers += [f"max abs diff {name}" for name, _ in _CURVES]
    body = [
        [p.bn.label, p.torch_bn.label, str(p.common_epochs)]
        + [_fmt(p.max_abs_diff[name]) for name, _ in _CURVES]
        for p in pairs
    ]
    return headers, body


SANITY_INTRO = (
    "Our BatchNorm (`bn`) against `torch.nn.BatchNorm2d` (`torch_bn`): the largest per-epoch "
    "absolute difference over the epochs both runs logged (accuracy as a fraction). Near-zero "
    "values mean the from-scratch layer matches PyTorch's."
)


def sanity_markdown(pairs: list[SanityPair], heading: str = "##") -> str:
    """Markdown section (empty string when there is no bn/torch_bn pair)."""
    if not pairs:
        return ""
    headers, body = sanity_table(pairs)
    return f"{heading} BN sanity check\n\n{SANITY_INTRO}\n\n{markdown_table(headers, body)}"
