#!/usr/bin/env bash
# Cross-evaluation of the jpeg_effect runs: each run's validation-best checkpoint on the *other*
# encoding's test images (the same 1,017 images), in bf16 as trained. Needs the run dirs the queue
# left in outputs/full/jpeg_effect/ (checkpoints are not committed). Writes cross_eval.csv here.
#   bash experiments/jpeg_effect/cross_eval.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
declare -A OTHER=([lossless]=data/cifar10-mini-jpeg [jpeg]=../shared/data/cifar10-mini)
for run in outputs/full/jpeg_effect/*_s*; do
    name=$(basename "$run")
    [ -f "outputs/eval/jpeg_effect/$name/metrics.json" ] && continue  # done before
    $PY -m project.evaluate ckpt="$run/checkpoints/best.ckpt" data=folder \
        data.root="${OTHER[${name%_s*}]}" precision=bf16-mixed out="outputs/eval/jpeg_effect/$name" \
        > /dev/null
done
$PY - <<'PYEOF'
"""Accuracy of every (training encoding, test encoding) pair, and the differences between them
paired over seeds (same seed = same split, initialisation and batch order) with 95% t intervals."""
import json
from pathlib import Path

import numpy as np
from scipy import stats

here, runs = Path("experiments/jpeg_effect"), Path("experiments/jpeg_effect/runs")
acc = {}  # (trained on, tested on) -> {seed: test accuracy %}
rows = ["run,trained_on,seed,test_acc_own_encoding,test_acc_other_encoding"]
for ev in sorted(Path("outputs/eval/jpeg_effect").iterdir()):
    own = json.loads((runs / ev.name / "results.json").read_text())["metrics"]["test/acc"]
    other = json.loads((ev / "metrics.json").read_text())
    enc, seed = ev.name.rsplit("_s", 1)
    assert ("jpeg" in other["data_root"]) != (enc == "jpeg"), (ev.name, other["data_root"])
    flip = {"jpeg": "lossless", "lossless": "jpeg"}[enc]
    acc.setdefault((enc, enc), {})[int(seed)] = 100 * own
    acc.setdefault((enc, flip), {})[int(seed)] = 100 * other["accuracy"]
    rows.append(f"{ev.name},{enc},{seed},{own:.4f},{other['accuracy']:.4f}")
(here / "cross_eval.csv").write_text("\n".join(rows) + "\n")


def diff(a, b):
    seeds = sorted(set(acc[a]) & set(acc[b]))
    d = np.array([acc[a][s] - acc[b][s] for s in seeds])
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    neg = int((d < 0).sum())
    return f"{d.mean():+.2f} [{d.mean() - half:+.2f}, {d.mean() + half:+.2f}] | {neg} of {len(d)}"


def mean(key):
    v = np.array(list(acc[key].values()))
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


L, J = "lossless", "jpeg"
md = [
    "| trained on → tested on | test acc % (mean ± std over seeds) |",
    "|---|---:|",
    *(f"| {a} → {b} | {mean((a, b))} |" for a in (L, J) for b in (L, J)),
    "",
    "| difference (points) | mean [95% t interval, paired over seeds] | seeds below 0 |",
    "|---|---|---:|",
    f"| JPEG copy as used (jpeg → jpeg) − lossless (lossless → lossless) | {diff((J, J), (L, L))} |",
    f"| test on JPEG − on lossless, model trained on lossless | {diff((L, J), (L, L))} |",
    f"| test on JPEG − on lossless, model trained on JPEG | {diff((J, J), (J, L))} |",
    f"| train on JPEG − on lossless, tested on lossless | {diff((J, L), (L, L))} |",
    f"| train on JPEG − on lossless, tested on JPEG | {diff((J, J), (L, J))} |",
]
(here / "cross_eval.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
PYEOF
