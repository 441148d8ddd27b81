"""`--baseline KEY=VALUE[,KEY=VALUE...]`, once or more: each variant's difference to its
baseline on the test metrics.

Which interval (see `project.report.stats`), decided per metric from the runs' finite values:

1. `paired_t`  – both variants have the same seeds (at least 2, each seed once): the t-interval of
   the per-seed differences.
2. `welch_t`   – otherwise, with at least 2 runs on each side: Welch's t-interval.
3. `bootstrap` – one run on each side (test accuracy only): a paired bootstrap over the test
   images of the two runs' saved `test_predictions.npz`.
4. `none`      – anything else (e.g. 1 run against 3, or no saved predictions): the difference of
   the means without an interval, and a note saying why.

When several variants match the baseline (e.g. `norm=bn` at two batch sizes), each variant is
compared with the baseline whose other settings equal its own, else with the baseline whose
overrides its own include with the fewest left over (none_warmup adds warm-up and zero-init to
BN's settings; the note names what the baseline lacks); a tie pairs with none. Each `--baseline`
gives its own set of comparisons (`Comparison.spec`), e.g. `norm=bn` and
`batch_size=128,optimizer.lr=0.1`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from project.errors import UserError
from project.report.predictions import read_predictions
from project.report.runs import Run, finite, natural_key
from project.report.stats import (
    BOOTSTRAP_RESAMPLES,
    Difference,
    bootstrap_accuracy_difference,
    paired_difference,
    welch_difference,
)
from project.report.tables import to_csv
from project.report.variants import (
    Variant,
    added_settings,
    matches,
    parse_baseline,
    run_seed,
)

#: The metrics compared; test micro F1 is left out because it equals test accuracy.
COMPARED_METRICS = ("test/acc", "test/f1_macro")
METRIC_WORDS = {"test/acc": "Test accuracy", "test/f1_macro": "Test macro F1"}
COMPARISON_INTRO = (
    "Each variant minus its baseline, in percentage points, with a 95% interval; "
    "\u201cdistinguishable from noise\u201d means the interval excludes 0. "
    "Full precision and the test used are in comparison.csv."
)


@dataclass
class Comparison:
    variant: Variant
    baseline: Variant | None
    metric: str
    result: Difference
    n: int = 0
    n_baseline: int = 0
    spec: str = ""  # the --baseline that chose `baseline`


def _finite(variant: Variant, metric: str) -> list[float]:
    return [v for v in variant.values(metric) if finite(v)]


def _bootstrap(run: Run, baseline_run: Run) -> Difference:
    preds = [read_predictions(r.path) for r in (run, baseline_run)]
    if any(p is None for p in preds):
        return Difference("none", None, note="single runs without test_predictions.npz")
    a, b = preds
    if not np.array_equal(a.target, b.target):
        return Difference("none", None, note="the runs' test predictions cover different images")
    result = bootstrap_accuracy_difference(a.pred, b.pred, a.target)
    note = f"{a.target.size} test images, {BOOTSTRAP_RESAMPLES} resamples"
    return Difference(result.test, result.diff, result.lo, result.hi, note=note)


def _finite_value(run: Run, metric: str) -> float | None:
    value = run.metrics.get(metric)
    return value if finite(value) else None


def _single_pair(variant: Variant, baseline: Variant, n_a: int, n_b: int) -> tuple[Run, Run] | None:
    """The two runs to bootstrap: both variants' only runs, or the single run of one side and the
    other side's run of the same seed; None when neither applies."""
    if n_a == n_b == 1 == len(variant.runs) == len(baseline.runs):
        return variant.runs[0], baseline.runs[0]
    if min(n_a, n_b) != 1:
        return None
    single, other = (variant, baseline) if len(variant.runs) == 1 else (baseline, variant)
    if len(single.runs) != 1:
        return None
    seed = run_seed(single.runs[0])
    match = [r for r in other.runs if seed is not None and run_seed(r) == seed]
    if len(match) != 1:
        return None
    return (single.runs[0], match[0]) if single is variant else (match[0], single.runs[0])


def difference(variant: Variant, baseline: Variant, metric: str) -> Comparison:
    """`variant` − `baseline` on `metric`, with the interval the runs allow (module docstring)."""
    a, b = _finite(variant, metric), _finite(baseline, metric)
    by_a, by_b = variant.by_seed(metric), baseline.by_seed(metric)
    if by_a is not None and by_b is not None and len(by_a) >= 2 and set(by_a) == set(by_b):
        seeds = sorted(by_a, key=natural_key)
        result = paired_difference([by_a[s] for s in seeds], [by_b[s] for s in seeds])
    elif len(a) >= 2 and len(b) >= 2:
        result = welch_difference(a, b)
    elif pair := _single_pair(variant, baseline, len(a), len(b)):
        # One run each, or (a study still in progress) one run against the baseline's run of the
        # same seed: the interval can only come from resampling that pair's test images.
        run, base_run = pair
        if metric == "test/acc":
            result = _bootstrap(run, base_run)
        else:
            result = Difference("none", None, note="the bootstrap covers test accuracy only")
        values = (_finite_value(run, metric), _finite_value(base_run, metric))
        point = None if None in values else values[0] - values[1]
        if result.diff is None:  # no predictions: still show the point difference
            result = Difference("none", point, note=result.note)
        elif len(b) > 1 or len(a) > 1:
            more = max(len(a), len(b))
            note = f"{result.note}; seed {run_seed(run)} only (the other side has {more} runs)"
            result = dataclasses.replace(result, note=note)
    else:
        diff = float(np.mean(a) - np.mean(b)) if a and b else None
        result = Difference(
            "none", diff, note=f"too few runs for an interval ({len(a)} vs {len(b)})"
        )
    return Comparison(variant, baseline, metric, result, len(a), len(b))


def _closest_baseline(
    variant: Variant, bases: list[Variant], keys: list[str]
) -> tuple[Variant | None, list[str]]:
    """The baseline whose other settings equal the variant's (it adds nothing), else the one it
    adds fewest overrides to (its treatment), with those overrides; (None, []) for none or a tie."""
    nested = [(b, a) for b in bases if (a := added_settings(variant, b, keys)) is not None]
    nested.sort(key=lambda pair: len(pair[1]))
    if len(nested) == 1 or (nested and len(nested[0][1]) < len(nested[1][1])):
        return nested[0]
    return None, []


def compare_to_baseline(variants: list[Variant], spec: str) -> list[Comparison]:
    """Every non-baseline variant against its baseline, for each metric in COMPARED_METRICS.

    `spec` is `KEY=VALUE[,KEY=VALUE...]`: the baselines are the variants with all of those
    settings, and a variant is paired with the baseline whose *other* settings equal its own. Name
    several keys where they change together: batch_size_study scales the lr with the batch, so
    `batch_size=128,optimizer.lr=0.1` pairs the batch-8 run (lr 0.00625) with the batch-128 run.
    """
    pairs = parse_baseline(spec)
    keys = [key for key, _ in pairs]
    bases = [v for v in variants if matches(v, pairs)]
    if not bases:
        seen = {
            key: sorted({str(v.setting(key)) for v in variants}, key=natural_key) for key in keys
        }
        raise UserError(
            f"--baseline {spec}: no variant has {' and '.join(f'{k}={v}' for k, v in pairs)}. "
            "Values in these runs: "
            + "; ".join(f"{key}: {', '.join(values)}" for key, values in seen.items())
            + ". Pass values that one variant has, e.g. --baseline "
            + ",".join(f"{key}={values[0]}" for key, values in seen.items())
            + "."
        )
    out = []
    for variant in variants:
        if variant in bases:
            continue
        base, added = (bases[0], []) if len(bases) == 1 else _closest_baseline(variant, bases, keys)
        for metric in COMPARED_METRICS:
            if base is None:
                note = f"several variants have {spec}; none matches the other settings"
                found = Comparison(variant, None, metric, Difference("none", None, note=note))
            else:
                found = difference(variant, base, metric)
                if added:
                    note = "; ".join(
                        filter(None, [found.result.note, "baseline without " + " ".join(added)])
                    )
                    found = dataclasses.replace(
                        found, result=dataclasses.replace(found.result, note=note)
                    )
            out.append(dataclasses.replace(found, spec=spec))
    return out


COMPARISON_COLUMNS = (
    "variant", "baseline", "metric", "test", "n", "n_baseline", "diff", "ci95_lo", "ci95_hi",
    "df", "distinguishable", "note",
)  # fmt: skip


def comparison_csv(comparisons: list[Comparison]) -> str:
    """comparison.csv: one row per variant and metric, differences as fractions (not points)."""
    rows = [
        {
            "variant": c.variant.label,
            "baseline": c.baseline.label if c.baseline else "",
            "metric": c.metric,
            "test": c.result.test,
            "n": c.n,
            "n_baseline": c.n_baseline,
            "diff": c.result.diff,
            "ci95_lo": c.result.lo,
            "ci95_hi": c.result.hi,
            "df": c.result.df,
            "distinguishable": c.result.distinguishable,
            "note": c.result.note,
        }
        for c in comparisons
    ]
    return to_csv(rows, COMPARISON_COLUMNS)


def _points(x: float) -> str:
    return f"{100 * x:+.2f}".replace("-", "\u2212")  # a real minus sign, as in print


def _how(c: Comparison) -> str:
    r = c.result
    if r.test == "paired_t":
        return f"paired over {c.n} seeds"
    if r.test == "welch_t":
        return f"Welch over {c.n} and {c.n_baseline} seeds"
    if r.test == "bootstrap":
        return f"paired bootstrap over the test images of single runs ({r.note})"
    return f"no interval: {r.note}"


def sentence(c: Comparison) -> str:
    """'GN − BN: −1.20 points [−2.90, +0.50], paired over 3 seeds: not distinguishable ...'"""
    base = c.baseline.label if c.baseline else "baseline"
    head = f"{c.variant.label} \u2212 {base}: "
    if c.result.diff is None:
        return head + f"no difference available ({c.result.note})."
    head += f"{_points(c.result.diff)} points"
    verdict = c.result.distinguishable
    if verdict is None:
        return head + f", {_how(c)}."
    interval = f" [{_points(c.result.lo)}, {_points(c.result.hi)}]"
    word = "distinguishable" if verdict else "not distinguishable"
    if c.result.test == "bootstrap":  # one run each: only the test images are resampled
        noise = "test-set sampling noise (one run each: seed-to-seed variation is not in it)"
        return head + interval + f", {_how(c)}: {word} from {noise}."
    return head + interval + f", {_how(c)}: {word} from noise."


def by_spec(comparisons: list[Comparison]) -> dict[str, dict[str, list[Comparison]]]:
    """{--baseline spec: {metric: its comparisons}}, in the order given (Markdown and HTML)."""
    out: dict[str, dict[str, list[Comparison]]] = {}
    for c in comparisons:
        out.setdefault(c.spec, {m: [] for m in COMPARED_METRICS})[c.metric].append(c)
    return out


def comparison_markdown(comparisons: list[Comparison]) -> str:
    """One section per --baseline, with one sentence per variant and metric."""
    lines = []
    for spec, metrics in by_spec(comparisons).items():
        lines += [f"## Differences to the baseline ({spec})\n", COMPARISON_INTRO + "\n"]
        for metric, chosen in metrics.items():
            if chosen:
                lines.append(f"{METRIC_WORDS[metric]}:\n")
                lines += [f"- {sentence(c)}" for c in chosen]
                lines.append("")
    return "\n".join(lines)
