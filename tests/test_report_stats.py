"""The report as a statistical instrument: variants over seeds, baseline differences with known
answers (paired t, Welch, bootstrap) and selection on validation only.

Runs are written by hand (results.json, csv/metrics.csv, test_predictions.npz) in tmp dirs, so
no test trains anything. Figures: tests/test_report_figures.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from project.errors import UserError
from project.report import make_report
from project.report.__main__ import main
from project.report.compare import compare_to_baseline, difference
from project.report.runs import load_runs
from project.report.stats import bootstrap_accuracy_difference, summarize
from project.report.variants import group_variants, val_best
from tests.report_runs import EPOCHS, read_csv, write_run


def t_interval(x: np.ndarray) -> tuple[float, float, float]:
    """(mean, lo, hi): the 95% t-interval, computed here independently of the report."""
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return x.mean(), x.mean() - half, x.mean() + half


BN_ACC = {1: 0.70, 2: 0.74, 3: 0.69}
GN_ACC = {1: 0.66, 2: 0.71, 3: 0.64}


@pytest.fixture()
def seeds_sweep(tmp_path) -> Path:
    """3 seeds x 2 norms, as `--multirun seed=1,2,3 norm=bn,gn` leaves them."""
    for i, (norm, accs) in enumerate((("bn", BN_ACC), ("gn", GN_ACC))):
        for j, (seed, acc) in enumerate(accs.items()):
            write_run(tmp_path / "sweep" / str(3 * i + j), norm, seed, acc)
    return tmp_path / "sweep"


def test_summary_has_one_row_per_variant_with_numpy_mean_std(seeds_sweep, tmp_path):
    make_report([seeds_sweep], tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "summary.csv")
    assert [r["variant"] for r in rows] == ["norm=bn", "norm=gn"]
    for row, accs in zip(rows, (BN_ACC, GN_ACC)):
        x = np.array(list(accs.values()))
        mean, lo, hi = t_interval(x)
        assert row["n"] == "3" and row["test/acc_n"] == "3"
        assert row["seeds"] == "1 2 3"
        assert float(row["test/acc_mean"]) == pytest.approx(np.mean(x), rel=1e-12)
        assert float(row["test/acc_std"]) == pytest.approx(np.std(x, ddof=1), rel=1e-12)
        assert float(row["test/acc_ci95_lo"]) == pytest.approx(lo, rel=1e-12)
        assert float(row["test/acc_ci95_hi"]) == pytest.approx(hi, rel=1e-12)
        assert "test/f1_micro_mean" in row  # the CSV keeps micro F1 ...
    assert len(read_csv(tmp_path / "out" / "runs.csv")) == 6  # ... and the per-run table stays
    md = (tmp_path / "out" / "summary.md").read_text()
    x = np.array(list(BN_ACC.values()))
    assert f"{100 * x.mean():.2f} \u00b1 {100 * x.std(ddof=1):.2f} (3)" in md
    assert "test f1 micro" not in md and "Micro F1 equals accuracy" in md  # ... tables do not


def test_single_run_has_no_spread(tmp_path):
    write_run(tmp_path / "r", "bn", 1, 0.7)
    make_report([tmp_path / "r"], tmp_path / "out")
    (row,) = read_csv(tmp_path / "out" / "summary.csv")
    assert row["n"] == "1" and row["test/acc_mean"] == "0.7"
    assert row["test/acc_std"] == row["test/acc_ci95_lo"] == row["test/acc_ci95_hi"] == ""
    assert "70.00 (1)" in (tmp_path / "out" / "summary.md").read_text()


def test_diverged_seed_is_counted_but_not_averaged(tmp_path):
    for seed, acc in BN_ACC.items():
        status = "diverged" if seed == 3 else "completed"
        write_run(tmp_path / f"bn{seed}", "bn", seed, acc, status=status)
    (variant,) = group_variants(load_runs([tmp_path]))
    assert len(variant.runs) == 3 and variant.status() == "2 completed, 1 diverged"
    assert summarize(variant.values("test/acc")).n == 2


def test_paired_difference_known_answer(seeds_sweep, tmp_path):
    make_report([seeds_sweep], tmp_path / "out", baseline="norm=bn")
    rows = {r["metric"]: r for r in read_csv(tmp_path / "out" / "comparison.csv")}
    acc = rows["test/acc"]
    d = np.array([GN_ACC[s] - BN_ACC[s] for s in (1, 2, 3)])
    mean, lo, hi = t_interval(d)
    assert (acc["variant"], acc["baseline"], acc["test"]) == ("norm=gn", "norm=bn", "paired_t")
    assert float(acc["diff"]) == pytest.approx(mean, rel=1e-12)
    assert float(acc["ci95_lo"]) == pytest.approx(lo, rel=1e-12)
    assert float(acc["ci95_hi"]) == pytest.approx(hi, rel=1e-12)
    assert acc["df"] == "2.0" and acc["distinguishable"] == str(hi < 0 or lo > 0).lower()
    assert rows["test/f1_macro"]["test"] == "paired_t"
    md = (tmp_path / "out" / "summary.md").read_text()
    verdict = "distinguishable" if hi < 0 else "not distinguishable"
    expected = (
        f"norm=gn \u2212 norm=bn: {100 * mean:+.2f} points [{100 * lo:+.2f}, {100 * hi:+.2f}], "
        f"paired over 3 seeds: {verdict} from noise."
    ).replace("-", "\u2212")
    assert expected in md


def test_paired_interval_excluding_zero_is_distinguishable(tmp_path):
    for seed in (1, 2, 3):
        write_run(tmp_path / f"bn{seed}", "bn", seed, 0.70 + 0.01 * seed)
        write_run(tmp_path / f"gn{seed}", "gn", seed, 0.60 + 0.01 * seed + 0.001 * (seed == 2))
    variants = group_variants(load_runs([tmp_path]))
    (acc, _) = compare_to_baseline(variants, "norm=bn")
    assert acc.result.test == "paired_t" and acc.result.distinguishable is True
    assert acc.result.hi < 0


def test_welch_on_unequal_seeds(tmp_path):
    bn = {1: 0.70, 2: 0.74, 3: 0.69}
    gn = {4: 0.66, 5: 0.72}
    for seed, acc in bn.items():
        write_run(tmp_path / f"bn{seed}", "bn", seed, acc)
    for seed, acc in gn.items():
        write_run(tmp_path / f"gn{seed}", "gn", seed, acc)
    base, other = group_variants(load_runs([tmp_path]))
    result = difference(other, base, "test/acc").result
    a, b = np.array(list(gn.values())), np.array(list(bn.values()))
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    assert result.test == "welch_t"
    assert result.diff == pytest.approx(a.mean() - b.mean(), rel=1e-12)
    assert result.df == pytest.approx(df, rel=1e-12)
    assert (result.lo, result.hi) == pytest.approx(
        (a.mean() - b.mean() - half, a.mean() - b.mean() + half)
    )
    scipy_ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (result.lo, result.hi) == pytest.approx((scipy_ci.low, scipy_ci.high), rel=1e-9)


def test_bootstrap_identical_predictions_give_zero():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 10, 500)
    pred = np.where(rng.random(500) < 0.6, target, (target + 1) % 10)
    result = bootstrap_accuracy_difference(pred, pred.copy(), target)
    assert (result.diff, result.lo, result.hi) == (0.0, 0.0, 0.0)
    assert result.distinguishable is False


@pytest.mark.parametrize("k", [1, 30, 250])
def test_bootstrap_known_difference(k):
    n = 1000
    target = np.arange(n) % 10
    wrong = target.copy()
    wrong[:k] = (target[:k] + 1) % 10  # wrong on exactly k images, right on the rest
    result = bootstrap_accuracy_difference(target.copy(), wrong, target)
    assert result.test == "bootstrap" and result.diff == k / n
    # Resampling images makes the number of "right vs wrong" images Binomial(n, k/n): the
    # percentile interval is that distribution's 2.5% and 97.5% quantiles, over n.
    lo, hi = stats.binom.ppf([0.025, 0.975], n, k / n) / n
    assert result.lo == pytest.approx(lo, abs=2 / n) and result.hi == pytest.approx(hi, abs=2 / n)
    assert result.lo <= k / n <= result.hi
    assert bootstrap_accuracy_difference(target, wrong, target) == result  # fixed seed


def wrong_on_first(k: int, n: int, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(target, pred) over n test images: pred is wrong on exactly the first k."""
    target = np.arange(n) % classes
    wrong = target.copy()
    wrong[:k] = (target[:k] + 1) % classes
    return target, wrong


def test_bootstrap_in_report_from_saved_predictions(tmp_path):
    n, k = 400, 40
    target, wrong = wrong_on_first(k, n)
    write_run(tmp_path / "bn", "bn", 1, 1 - k / n, pred=wrong, target=target)
    write_run(tmp_path / "gn", "gn", 1, 1.0, pred=target.copy(), target=target)
    write_run(tmp_path / "ln", "ln", 1, 0.5)  # no predictions saved: no interval, said so
    make_report([tmp_path], tmp_path / "out", baseline="norm=bn")
    rows = [r for r in read_csv(tmp_path / "out" / "comparison.csv") if r["metric"] == "test/acc"]
    by = {r["variant"].removeprefix("norm="): r for r in rows}
    assert by["gn"]["test"] == "bootstrap" and float(by["gn"]["diff"]) == pytest.approx(k / n)
    assert float(by["gn"]["ci95_lo"]) > 0 and by["gn"]["distinguishable"] == "true"
    assert by["ln"]["test"] == "none" and by["ln"]["ci95_lo"] == ""
    assert "test_predictions.npz" in by["ln"]["note"]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "norm=gn \u2212 norm=bn: +10.00 points [" in md and "paired bootstrap" in md
    assert "seed-to-seed variation is not in it" in md  # single runs: say what the interval omits


def test_study_in_progress_bootstraps_against_the_baselines_run_of_the_same_seed(tmp_path):
    """gn has seed 1 only, bn seeds 1 and 2: gn is compared with bn's seed-1 run."""
    n, k = 400, 40
    target, wrong = wrong_on_first(k, n)
    write_run(tmp_path / "bn1", "bn", 1, 1 - k / n, pred=wrong, target=target)
    write_run(tmp_path / "bn2", "bn", 2, 0.2, pred=(target + 1) % 3, target=target)
    write_run(tmp_path / "gn1", "gn", 1, 1.0, pred=target.copy(), target=target)
    make_report([tmp_path], tmp_path / "out", baseline="norm=bn")
    rows = [r for r in read_csv(tmp_path / "out" / "comparison.csv") if r["metric"] == "test/acc"]
    (gn,) = rows
    assert gn["test"] == "bootstrap"
    assert float(gn["diff"]) == pytest.approx(k / n)  # against bn's seed-1 run, not bn's mean
    assert "seed 1 only (the other side has 2 runs)" in gn["note"]


def test_baseline_matched_on_other_settings(tmp_path):
    for bs in (8, 128):
        for norm, acc in (("bn", 0.7), ("gn", 0.6)):
            for seed in (1, 2):
                write_run(
                    tmp_path / f"{norm}{bs}_{seed}", norm, seed, acc + seed / 100, batch_size=bs
                )
    comparisons = compare_to_baseline(group_variants(load_runs([tmp_path])), "norm=bn")
    pairs = {(c.variant.label, c.baseline.label) for c in comparisons}
    assert pairs == {("norm=gn batch_size=8", "norm=bn batch_size=8"),
                     ("norm=gn batch_size=128", "norm=bn batch_size=128")}  # fmt: skip


def test_logging_cadence_is_not_a_setting(tmp_path):
    """batch_size_study logs every 1,280 images: every 160 steps at batch 8, 10 at 128. That
    changes no result, so it must neither split a variant, label it or its runs, nor block the
    pairing; nor must a `resume=true` (resnet20's seed 0 was labelled by it)."""
    for bs, every in ((8, 160), (128, 10)):
        for seed in (1, 2):
            run = write_run(
                tmp_path / f"{bs}_{seed}", "bn", seed, 0.6 + bs / 1000 + seed / 100, batch_size=bs
            )
            results = json.loads((run / "results.json").read_text())
            results["overrides"] += [f"trainer.log_every_n_steps={every * seed}"]
            results["overrides"] += [f"trainer.enable_progress_bar={seed == 1}"]
            results["overrides"] += ["resume=true"] if seed == 1 else []  # finished after a resume
            (run / "results.json").write_text(json.dumps(results))
    runs = load_runs([tmp_path])
    hidden = ("resume", "log_every_n_steps", "enable_progress_bar")
    assert not [r.label for r in runs if any(key in r.label for key in hidden)]
    variants = group_variants(runs)
    assert sorted(v.label for v in variants) == ["batch_size=128", "batch_size=8"]
    (comparison, _) = compare_to_baseline(variants, "batch_size=128")
    assert comparison.result.test == "paired_t" and comparison.n == 2


def test_baseline_by_a_dotted_key_matched_on_other_settings(tmp_path):
    """`optimizer.lr` is `lr` in the flat config: the pairing must drop both (lab_l1_vs_l2)."""
    for bs in (8, 128):
        for lr in (0.1, 0.01):
            run = write_run(tmp_path / f"{bs}_{lr}", "bn", 1, 0.5 + lr, batch_size=bs)
            results = json.loads((run / "results.json").read_text())
            results["overrides"].append(f"optimizer.lr={lr}")
            results["config"]["lr"] = lr
            (run / "results.json").write_text(json.dumps(results))
    comparisons = compare_to_baseline(group_variants(load_runs([tmp_path])), "optimizer.lr=0.1")
    pairs = {(c.variant.label, c.baseline.label) for c in comparisons}
    assert pairs == {
        (f"batch_size={bs} optimizer.lr=0.01", f"batch_size={bs} optimizer.lr=0.1")
        for bs in (8, 128)
    }


def batch_size_study_runs(root: Path) -> None:
    """bn and gn at batch 8 and 128, seeds 1 and 2, with the lr scaled with the batch by the
    experiment config (so it is in the flat config, not in the overrides), as batch_size_study."""
    for norm, acc in (("bn", 0.80), ("gn", 0.75)):
        for bs in (8, 128):
            for seed in (1, 2):
                test_acc = acc - (0.01 if bs == 8 and norm == "bn" else 0.0) + seed / 100
                run = write_run(root / f"{norm}{bs}_{seed}", norm, seed, test_acc, batch_size=bs)
                results = json.loads((run / "results.json").read_text())
                results["config"]["lr"] = 0.1 * bs / 128
                (run / "results.json").write_text(json.dumps(results))


def test_baseline_of_settings_that_change_together(tmp_path):
    """The lr follows the batch: `batch_size=128` alone has no baseline for a batch-8 run (its
    lr differs too); `batch_size=128,optimizer.lr=0.1` pairs it with the same norm at 128."""
    batch_size_study_runs(tmp_path)
    variants = group_variants(load_runs([tmp_path]))
    alone = compare_to_baseline(variants, "batch_size=128")
    assert {c.baseline for c in alone} == {None}
    assert "none matches the other settings" in alone[0].result.note
    comparisons = compare_to_baseline(variants, "batch_size=128,optimizer.lr=0.1")
    acc = {c.variant.label: c for c in comparisons if c.metric == "test/acc"}
    assert {k: c.baseline.label for k, c in acc.items()} == {
        "norm=bn batch_size=8": "norm=bn batch_size=128",
        "norm=gn batch_size=8": "norm=gn batch_size=128",
    }
    assert acc["norm=bn batch_size=8"].result.test == "paired_t"
    assert acc["norm=bn batch_size=8"].result.diff == pytest.approx(-0.01)
    assert acc["norm=gn batch_size=8"].result.diff == pytest.approx(0.0, abs=1e-12)


def test_several_baselines_in_one_report(tmp_path):
    """`--baseline norm=bn --baseline batch_size=128,optimizer.lr=0.1`: both sections, and
    comparison.csv holds the rows of both (gn at batch 8 appears once against each baseline)."""
    batch_size_study_runs(tmp_path / "runs")
    specs = ["norm=bn", "batch_size=128,optimizer.lr=0.1"]
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"),
                 *(a for spec in specs for a in ("--baseline", spec))]) == 0  # fmt: skip
    rows = [r for r in read_csv(tmp_path / "out" / "comparison.csv") if r["metric"] == "test/acc"]
    gn8 = [r["baseline"] for r in rows if r["variant"] == "norm=gn batch_size=8"]
    assert gn8 == ["norm=bn batch_size=8", "norm=gn batch_size=128"]
    assert len(rows) == 4  # gn−bn at 8 and 128; batch 8 − 128 for bn and gn
    for page in ("summary.md", "report.html"):
        text = (tmp_path / "out" / page).read_text()
        for spec in specs:
            assert text.count(f"Differences to the baseline ({spec})") == 1
        assert "norm=bn batch_size=8 \u2212 norm=bn batch_size=128: \u22121.00 points [" in text


def test_baseline_spelled_as_yaml_matches_the_sweepers_spelling(tmp_path):
    """Hydra's sweeper records `data.augment=true` as `data.augment=True`; 1e-4 is 0.0001."""
    for augment, acc in ((True, 0.7), (False, 0.6)):
        run = write_run(tmp_path / str(augment), "bn", 1, acc)
        results = json.loads((run / "results.json").read_text())
        results["overrides"] += [f"data.augment={augment}", "optimizer.weight_decay=0.0001"]
        (run / "results.json").write_text(json.dumps(results))
    variants = group_variants(load_runs([tmp_path]))
    for spec in ("data.augment=true", "data.augment=True"):
        (only,) = compare_to_baseline(variants, spec)[:1]
        assert only.baseline.label.startswith("data.augment=True")
    assert compare_to_baseline(variants, "optimizer.weight_decay=1e-4") == []  # all are baseline


def test_bad_baseline_is_a_user_error(seeds_sweep, tmp_path):
    with pytest.raises(UserError, match="Values in these runs: norm: bn, gn"):
        make_report([seeds_sweep], tmp_path / "out", baseline="norm=ln")
    with pytest.raises(UserError, match="norm: bn, gn; batch_size: 128. .*norm=bn,batch_size=128"):
        make_report([seeds_sweep], tmp_path / "out", baseline="norm=bn,batch_size=8")
    for spec in ("norm", "norm=bn,", "norm=bn,batch_size"):
        with pytest.raises(UserError, match="KEY=VALUE"):
            make_report([seeds_sweep], tmp_path / "out", baseline=spec)


def test_validation_best_chosen_by_val_even_when_test_disagrees(tmp_path):
    write_run(tmp_path / "a", "bn", 1, test_acc=0.90, val_acc=0.60)
    write_run(tmp_path / "b", "gn", 1, test_acc=0.50, val_acc=0.70)
    variants = group_variants(load_runs([tmp_path]))
    assert val_best(variants).label == "norm=gn"
    make_report([tmp_path], tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "summary.csv")
    assert [(r["variant"], r["val_best"]) for r in rows] == [
        ("norm=bn", "false"),
        ("norm=gn", "true"),
    ]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Val best here: norm=gn." in md and "never ranked" in md


def test_early_stopping_that_never_fired_does_not_split_a_variant(tmp_path):
    """bn's seed 0 ran with patience 20, seed 1 with none: both trained every epoch, so they are
    one variant. A run that did stop early keeps its patience apart."""
    runs = {"p20": (0, 20, EPOCHS), "none": (1, "null", EPOCHS), "stopped": (2, 3, EPOCHS - 1)}
    for name, (seed, patience, epochs) in runs.items():
        run = write_run(tmp_path / name, "bn", seed, 0.7)
        results = json.loads((run / "results.json").read_text())
        results["overrides"] += [f"early_stopping.patience={patience}"]
        results["config"]["max_epochs"], results["epochs"] = EPOCHS, epochs
        (run / "results.json").write_text(json.dumps(results))
    variants = group_variants(load_runs([tmp_path]))
    assert sorted(sorted(map(str, v.seeds)) for v in variants) == [["0", "1"], ["2"]]


def test_variant_that_adds_settings_is_compared_with_the_baseline_it_extends(tmp_path):
    """none_warmup = none + warm-up + zero-init, on the CPU trainer; BN ran on the CPU, on a GPU
    and with the default trainer. No BN has exactly its other settings; the CPU one has the most
    of them (the default one has fewer, the GPU one a different trainer)."""
    for trainer, base_acc in (("cpu_bf16", 0.70), ("gpu", 0.80), ("", 0.75)):
        for seed in (1, 2):
            run = write_run(tmp_path / f"bn_{trainer}_{seed}", "bn", seed, base_acc + seed / 100)
            _add_overrides(run, [f"trainer={trainer}"] if trainer else [])
    for seed in (1, 2):
        run = write_run(tmp_path / f"none_{seed}", "none", seed, 0.65 + seed / 50)
        _add_overrides(run, ["trainer=cpu_bf16", "scheduler.warmup_epochs=2"])
    for seed in (1, 2):  # an added setting the config summary shows (`model.n` -> `n`)
        run = write_run(tmp_path / f"deep_{seed}", "gn", seed, 0.6)
        _add_overrides(run, ["trainer=gpu", "model.n=3"], n=3)
    comparisons = compare_to_baseline(group_variants(load_runs([tmp_path])), "norm=bn")
    none = next(c for c in comparisons if "none" in c.variant.label and c.metric == "test/acc")
    assert none.baseline is not None and "trainer=cpu_bf16" in none.baseline.label
    assert none.result.test == "paired_t"
    assert none.result.diff == pytest.approx((0.67 + 0.69) / 2 - (0.71 + 0.72) / 2)
    assert "baseline without scheduler.warmup_epochs=2" in none.result.note
    deep = next(c for c in comparisons if "model.n=3" in c.variant.label)
    assert "trainer=gpu" in deep.baseline.label and "without model.n=3" in deep.result.note
    # A trainer no baseline used extends only the default-trainer BN: no pairing across trainers.
    for seed in (1, 2):
        run = write_run(tmp_path / f"ln_{seed}", "ln", seed, 0.6)
        _add_overrides(run, ["trainer=cpu"])
    comparisons = compare_to_baseline(group_variants(load_runs([tmp_path])), "norm=bn")
    ln = next(c for c in comparisons if "ln" in c.variant.label)
    assert ln.baseline is not None and "trainer" not in ln.baseline.label
    assert "baseline without trainer=cpu" in ln.result.note


def _add_overrides(run: Path, overrides: list[str], **config) -> None:
    results = json.loads((run / "results.json").read_text())
    results["overrides"] += overrides
    results["config"].update(config)
    (run / "results.json").write_text(json.dumps(results))
