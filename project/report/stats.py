"""Confidence intervals: a variant's mean over seeds, and differences between variants.

Three ways to put a 95% interval on "variant − baseline", chosen by what the runs allow:

- `paired_difference`: both variants ran the same seeds, so seed s of one is compared with seed s
  of the other (same data order and initialisation stream): a t-interval on the per-seed
  differences, which removes the seed-to-seed spread the two share.
- `welch_difference`: different seeds (or counts): the difference of the means with the
  Welch–Satterthwaite degrees of freedom (no equal-variance assumption).
- `bootstrap_accuracy_difference`: one run each, so no seed spread is available; the uncertainty
  left is which test images happened to be drawn. A paired bootstrap over the test images (both
  runs scored on the same resampled images) gives a percentile interval for the accuracy gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (ddof=1) and 95% t-interval of n values.

    With n = 1 there is no spread to estimate: std and the interval are None."""

    n: int
    mean: float | None
    std: float | None
    lo: float | None
    hi: float | None


@dataclass(frozen=True)
class Difference:
    """A difference (variant − baseline) with its 95% interval and how it was obtained."""

    test: str  # "paired_t", "welch_t", "bootstrap" or "none"
    diff: float | None
    lo: float | None = None
    hi: float | None = None
    df: float | None = None  # degrees of freedom of a t-interval
    note: str = ""

    @property
    def distinguishable(self) -> bool | None:
        """True when the interval excludes 0; None without an interval."""
        if self.lo is None or self.hi is None:
            return None
        return self.lo > 0 or self.hi < 0


def t_half_width(std, n, df=None):
    """Half-width of the 95% t-interval of a mean: t(0.975, df) · std / √n, with df = n − 1
    unless given. Works elementwise on numpy arrays and pandas Series (NaN where n < 2)."""
    n = np.asarray(n, dtype=float)
    df = n - 1 if df is None else np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.5 + CONFIDENCE / 2, np.where(df >= 1, df, np.nan))
        return t * np.asarray(std, dtype=float) / np.sqrt(n)


def summarize(values: list[float] | np.ndarray) -> Summary:
    """Summary of the finite `values` (NaN from a diverged run is left out, and not counted)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, None, None, None)
    std = float(x.std(ddof=1))
    half = float(t_half_width(std, n))
    return Summary(n, mean, std, mean - half, mean + half)


def paired_difference(variant: list[float], baseline: list[float]) -> Difference:
    """t-interval on the differences variant[i] − baseline[i] (same seed at the same index)."""
    d = np.asarray(variant, dtype=float) - np.asarray(baseline, dtype=float)
    s = summarize(d)
    if s.n < 2:
        return Difference("none", s.mean, note="fewer than 2 paired seeds")
    return Difference("paired_t", s.mean, s.lo, s.hi, df=float(s.n - 1))


def welch_difference(variant: list[float], baseline: list[float]) -> Difference:
    """Welch's interval for mean(variant) − mean(baseline); needs at least 2 runs on each side."""
    a, b = summarize(variant), summarize(baseline)
    diff = None if a.mean is None or b.mean is None else a.mean - b.mean
    if a.std is None or b.std is None:
        return Difference("none", diff, note="Welch needs at least 2 runs of each variant")
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se = math.sqrt(va + vb)
    if se == 0:  # both sides constant: no spread, so the difference is exact
        return Difference("welch_t", diff, diff, diff, df=float(a.n + b.n - 2))
    # Welch–Satterthwaite: the df of the t distribution that best matches the unequal variances.
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = float(t_half_width(se, 1, df))  # se is already the standard error: n = 1
    return Difference("welch_t", diff, diff - half, diff + half, df=float(df))


def bootstrap_accuracy_difference(
    pred: np.ndarray,
    pred_baseline: np.ndarray,
    target: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Difference:
    """Paired bootstrap of accuracy(pred) − accuracy(pred_baseline) over the test images.

    Each image contributes d = correct − correct_baseline ∈ {−1, 0, +1}. Resampling the N images
    with replacement only changes how many of each kind are drawn, and those counts are
    Multinomial(N, (p₊, p₀, p₋)); drawing the counts directly is the same bootstrap in O(resamples)
    memory instead of an N × resamples index matrix (10⁸ entries for CIFAR's test set).
    The interval is the percentile interval; `seed` fixes it so reports are reproducible.
    """
    pred, pred_baseline, target = (np.asarray(a).ravel() for a in (pred, pred_baseline, target))
    n = target.size
    if n == 0 or pred.size != n or pred_baseline.size != n:
        return Difference(
            "none", None, note="predictions and targets differ in length or are empty"
        )
    d = (pred == target).astype(int) - (pred_baseline == target).astype(int)
    counts = np.array([(d == 1).sum(), (d == 0).sum(), (d == -1).sum()])
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=resamples)
    diffs = (draws[:, 0] - draws[:, 2]) / n
    alpha = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(diffs, [alpha, 1 - alpha])
    return Difference("bootstrap", float(d.mean()), float(lo), float(hi))
