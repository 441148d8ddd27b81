"""Variants: runs that differ only in their seed, so that their spread measures noise.

A run's **variant key** is every setting it records, except the ones `_ignored` names:

- the flat config summary in results.json (`config`: model, n, head, shortcut, activation, norm,
  batch_size, optimizer, lr, weight_decay, l1, scheduler, data, augment, max_epochs, ...), and
- its command-line overrides (results.json `overrides`, else `.hydra/overrides.yaml`), by key.

Left out: `seed` (what varies within a variant) and the keys that never change what a run
trains (`project.results.NON_RESULT_KEYS`: `resume`, `hydra.*`, the logging cadence and the
progress bar; batch_size_study's batch-8 and batch-128 runs log at different steps), and the
`early_stopping.*` settings of a run that trained all its `max_epochs`: a stop that never fired
changed nothing (norm_comparison's 100-epoch runs differ in `early_stopping.patience`). So
`norm=gn seed=1` and `norm=gn seed=2` are one variant, while `norm=gn` and `norm=gn
norm.num_groups=8` are two even if the second equals the default: the report cannot know that.
A run without results.json (interrupted) records no config; it joins the one variant with the
same overrides, if there is exactly one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from project.errors import UserError
from project.report.runs import Run, finite, natural_key, status_counts, varying_keys
from project.results import affects_result, override_key


def config_names(key: str) -> tuple[str, str]:
    """An override key and its name in the flat config summary, the last part: `optimizer.lr` is
    `lr` there, `regularization.l1` is `l1`."""
    return key, key.rsplit(".", 1)[-1]


def _ignored(key: str) -> bool:
    return key == "seed" or not affects_result(key)


def _never_stopped_early(run: Run) -> bool:
    """Whether the run completed every epoch it was given, so early stopping never fired."""
    epochs, max_epochs = run.results.get("epochs"), run.config.get("max_epochs")
    return run.status == "completed" and epochs is not None and epochs == max_epochs


def run_overrides(run: Run) -> dict[str, str]:
    """{key: "key=value"} of the run's overrides that define its variant."""
    idle_stop = _never_stopped_early(run)
    return {
        k: o
        for k, o in run.result_overrides.items()
        if not _ignored(k) and not (idle_stop and k.startswith("early_stopping."))
    }


def run_config(run: Run) -> dict[str, Any]:
    return {k: v for k, v in run.config.items() if not _ignored(k)}


def run_seed(run: Run) -> Any:
    """The run's seed from its config summary, else from a `seed=` override (None if unknown)."""
    seed = run.config.get("seed")
    if seed is None:
        seed = next((o.split("=", 1)[1] for o in run.overrides if override_key(o) == "seed"), None)
    return seed


def _key(config: dict[str, Any], overrides: dict[str, str]) -> str:
    return json.dumps([config, sorted(overrides.values())], sort_keys=True, default=str)


@dataclass
class Variant:
    """One variant: its label and its runs (one per seed, in table order)."""

    label: str
    runs: list[Run]

    @property
    def seeds(self) -> list[Any]:
        return [run_seed(r) for r in self.runs]

    def values(self, metric: str) -> list[float | None]:
        """The final `metric` of each run (None where the run has none)."""
        return [r.metrics.get(metric) for r in self.runs]

    def by_seed(self, metric: str) -> dict[Any, float] | None:
        """{seed: finite value}, or None when seeds are unknown or repeated (no pairing then)."""
        seeds = self.seeds
        if None in seeds or len(set(map(str, seeds))) != len(seeds):
            return None
        return {str(s): v for s, v in zip(seeds, self.values(metric)) if finite(v)}

    def status(self) -> str:
        """One status if every run shares it, else counts ("2 completed, 1 diverged")."""
        statuses = {r.status for r in self.runs}
        return statuses.pop() if len(statuses) == 1 else status_counts(self.runs)

    def setting(self, key: str) -> Any:
        """The value of `key` in the first run's config (where a dotted key is its last part:
        `optimizer.lr` is `lr`), else its override's value."""
        first = self.runs[0]
        for name in config_names(key):
            if name in first.config:
                return first.config[name]
        override = run_overrides(first).get(key)
        return override.split("=", 1)[1] if override and "=" in override else None


def group_variants(runs: list[Run]) -> list[Variant]:
    """Group `runs` (in their order) into variants, labelled and sorted by label."""
    groups: dict[str, list[Run]] = {}
    orphans = []
    for run in runs:
        if run.config:
            groups.setdefault(_key(run_config(run), run_overrides(run)), []).append(run)
        else:
            orphans.append(run)
    for run in orphans:
        overrides = sorted(run_overrides(run).values())
        same = [k for k, rs in groups.items() if sorted(run_overrides(rs[0]).values()) == overrides]
        key = same[0] if len(same) == 1 else _key({}, run_overrides(run)) + run.path.as_posix()
        groups.setdefault(key, []).append(run)
    variants = [Variant("", rs) for rs in groups.values()]
    _assign_labels(variants)
    variants.sort(key=lambda v: natural_key(v.label))
    return variants


def _assign_labels(variants: list[Variant]) -> None:
    """Label by the overrides that differ between variants, else by the differing config values,
    else by the norm/run name/directory; the first of these that tells all variants apart wins."""
    overrides = [run_overrides(v.runs[0]) for v in variants]
    configs = [run_config(v.runs[0]) for v in variants]
    vary_o, vary_c = varying_keys(overrides), varying_keys(configs)
    getters: list[Callable[[int, Variant], str]] = [
        lambda i, v: " ".join(o for k, o in overrides[i].items() if k in vary_o),
        lambda i, v: " ".join(f"{k}={configs[i][k]}" for k in sorted(vary_c) if k in configs[i]),
        lambda i, v: v.runs[0].variant,
        lambda i, v: str(v.runs[0].results.get("run_name") or ""),
        lambda i, v: v.runs[0].path.name,
    ]
    for getter in getters:
        labels = [getter(i, v) for i, v in enumerate(variants)]
        if all(labels) and len(set(labels)) == len(labels):
            break
    else:  # nothing tells them apart: number the repeats of the first non-empty name
        labels = [
            next((g(i, v) for g in getters if g(i, v)), "run") for i, v in enumerate(variants)
        ]
        seen: dict[str, int] = {}
        for i, label in enumerate(labels):
            seen[label] = seen.get(label, 0) + 1
            labels[i] = label if seen[label] == 1 else f"{label} #{seen[label]}"
    for variant, label in zip(variants, labels):
        variant.label = label


def val_best(variants: list[Variant], metric: str = "val/acc") -> Variant | None:
    """The variant with the highest mean validation accuracy (the first on ties); never test."""
    best, best_mean = None, -math.inf
    for variant in variants:
        values = [v for v in variant.values(metric) if finite(v)]
        if values and sum(values) / len(values) > best_mean:
            best, best_mean = variant, sum(values) / len(values)
    return best


def parse_baseline(text: str) -> list[tuple[str, str]]:
    """`"norm=bn"` -> [("norm", "bn")]; `"batch_size=128,optimizer.lr=0.1"` -> both pairs (the
    baseline has all of them); a UserError for anything else."""
    pairs = []
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(
                f"--baseline {text!r} is not KEY=VALUE[,KEY=VALUE...]. Name the baseline by the "
                "settings its runs share, e.g. --baseline norm=bn, or by several separated by "
                "commas where they change together, e.g. "
                "--baseline batch_size=128,optimizer.lr=0.1."
            )
        pairs.append((key.strip().lstrip("+~"), value.strip()))
    return pairs


def _canonical(value: Any) -> Any:
    """One spelling per value as YAML reads it: Hydra's sweeper writes `data.augment=True` for
    `true`, and `1e-4`, `0.0001` and `1.0e-4` are one weight decay."""
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        return float(text)
    except ValueError:
        return text


def _same(value: Any, text: str) -> bool:
    return value is not None and _canonical(value) == _canonical(text)


def matches(variant: Variant, pairs: list[tuple[str, str]]) -> bool:
    """Whether `variant` has every KEY=VALUE of `pairs` (from `parse_baseline`)."""
    return all(_same(variant.setting(key), value) for key, value in pairs)


def _settings(variant: Variant, keys: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The variant's flat config and overrides with `keys` (and their sub-keys such as
    `norm.num_groups`) left out; config keys are the last part (`regularization.l1` -> `l1`)."""
    dropped = {name for key in keys for name in config_names(key)}

    def keep(k: str) -> bool:
        return k not in dropped and not any(k.startswith(key + ".") for key in keys)

    first = variant.runs[0]
    config = {k: v for k, v in run_config(first).items() if keep(k)}
    overrides = {k: o for k, o in run_overrides(first).items() if keep(k)}
    return config, overrides


def added_settings(variant: Variant, base: Variant, keys: list[str]) -> list[str] | None:
    """The overrides `variant` sets on top of `base` when everything else but `keys` is equal
    ([] when the two differ only in `keys`), else None: none_warmup's
    `scheduler.warmup_epochs=2 model.zero_init_residual=true` are part of its treatment,
    compared with plain BN of the same trainer and epochs."""
    config, overrides = _settings(variant, keys)
    base_config, base_overrides = _settings(base, keys)
    if not base_overrides.items() <= overrides.items():
        return None
    added = {k: o for k, o in overrides.items() if k not in base_overrides}
    # The config summary shows what the added overrides set (`model.shortcut=B3` -> `shortcut`).
    shown = {config_names(k)[1] for k in added}
    if any(config.get(k) != base_config.get(k) for k in {*config, *base_config} - shown):
        return None
    return sorted(added.values())
