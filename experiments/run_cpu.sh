#!/usr/bin/env bash
# Every study at CPU scale on ../shared/data/cifar10-mini (4,068 train -> 3,254 train / 814 val,
# 1,017 test; lossless CIFAR-10 images), then its report into experiments/<study>/. One run,
# resnet_cifar_jpeg, uses the full CIFAR-10 (../shared/data/cifar10-jpeg) instead.
#   bash experiments/run_cpu.sh STUDY...     e.g.  bash experiments/run_cpu.sh labs norm_comparison
# Studies: labs resnet_cifar resnet_cifar_jpeg norm_comparison bn_sanity batch_size_study hw2_fcn resnet20
# REPORT_ONLY=1 skips the training and rebuilds the reports from the runs already in multirun/cpu/.
# Epochs are cut from the configs' full-scale values so that each study takes minutes on 2 cores;
# each README states the epochs used. Runs go to multirun/cpu/<experiment>/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
# One thread per process: two studies run side by side on the 2 cores. (Two processes with 2 OpenMP
# threads each on 2 cores spin against each other: measured 8x slower steps.)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=${PY:-.venv/bin/python}
MINI="data=folder data.root=../shared/data/cifar10-mini logger=csv trainer=cpu"

sweep() {  # sweep DIR_NAME EXPERIMENT [overrides...]: one Hydra multirun into multirun/cpu/DIR_NAME
    local dir=$1 name=$2
    shift 2
    [ -n "${REPORT_ONLY:-}" ] && return 0
    rm -rf "multirun/cpu/$dir"
    $PY -m project.train --multirun "experiment=$name" $MINI "$@" \
        "hydra.sweep.dir=multirun/cpu/$dir" || echo "[run_cpu] $name: some runs failed (see table)"
}

report() {  # report OUT TITLE [run dirs...]: into experiments/OUT (runs: multirun/cpu/OUT)
    local study=$1 title=$2
    shift 2
    $PY -m project.report "${@:-multirun/cpu/$study}" --out "experiments/$study" --title "$title"
}

keep_records() {  # keep_records STUDY: each job's record -> experiments/STUDY/runs/<job> (committed)
    $PY - "$1" <<'PYEOF'
import sys
from pathlib import Path
from project.studies.queue import save_record
study = sys.argv[1]
for job in sorted(Path(f"multirun/cpu/{study}").glob("*/results.json")):
    save_record(job.parent, Path(f"experiments/{study}/runs/{job.parent.name}"))
PYEOF
}

# Each lab's baseline for the report's comparisons (the lab's default setting).
declare -A LAB_BASELINE=(
    [lab_lr_decay]=scheduler.decay=1.0 [lab_augment]=data.augment=true [lab_bn]=norm=none
    [lab_swish]=model.activation=relu [lab_lr_sweep]=optimizer.lr=0.01
    [lab_l2_sweep]=optimizer.weight_decay=1e-4 [lab_l1_vs_l2]=regularization.l1=0
)
LAB_EPOCHS=${LAB_EPOCHS:-10}
# Labs whose schedule is tied to the epoch count keep its shape when cut: lab_lr_decay decays
# every 10 of 30 epochs in the lab, so every 5 of 15 here (with 10 epochs and decay every 10 the
# lr would never decay).
declare -A LAB_EPOCHS_OF=([lab_lr_decay]=15)
declare -A LAB_EXTRA=([lab_lr_decay]=scheduler.decay_epochs=5)
LAB_SEEDS=${LAB_SEEDS:-0,1,2}
LABS=${LABS:-"lab_baseline lab_lr_decay lab_augment lab_bn lab_swish lab_lr_sweep lab_l2_sweep lab_l1_vs_l2"}

labs() {  # every lab with 3 seeds (LAB_SEEDS) and LAB_EPOCHS epochs; LABS picks a subset
    for lab in $LABS; do
        local epochs=${LAB_EPOCHS_OF[$lab]:-$LAB_EPOCHS} extra=${LAB_EXTRA[$lab]:-}
        sweep "$lab" "$lab" "trainer.max_epochs=$epochs" "seed=$LAB_SEEDS" $extra
        keep_records "$lab"
        local baseline=${LAB_BASELINE[$lab]:-}
        report "$lab" "ECE661 lab: $lab (SimpleNN, cifar10-mini, $epochs epochs, seeds $LAB_SEEDS)" \
            "multirun/cpu/$lab" ${baseline:+--baseline "$baseline"}
    done
}

resnet_cifar() {  # the same run as norm_comparison's bn job: reported on its own here
    report resnet_cifar "COL775 1.1: ResNet-14 + scratch BN (cifar10-mini, 6 epochs)" \
        multirun/cpu/norm_comparison/0
}

resnet_cifar_jpeg() {  # full CIFAR-10 (JPEG copy): 40,000 / 10,000 / 10,000 images, 10 epochs, ~40 min
    if [ -z "${REPORT_ONLY:-}" ]; then
        rm -rf multirun/cpu/resnet_cifar_jpeg
        $PY -m project.train experiment=resnet_cifar data=folder \
            data.root=../shared/data/cifar10-jpeg logger=csv trainer=cpu trainer.max_epochs=10 \
            hydra.run.dir=multirun/cpu/resnet_cifar_jpeg
    fi
    report resnet_cifar/cifar10_jpeg \
        "COL775 1.1: ResNet-14 + scratch BN on CIFAR-10 (JPEG), 10 epochs, CPU" \
        multirun/cpu/resnet_cifar_jpeg
}

norm_comparison() {  # its runs also log the feature quantiles: the feature_quantiles study
    sweep norm_comparison norm_comparison trainer.max_epochs=6
    report norm_comparison "COL775 1.2: six normalisations (ResNet-14, cifar10-mini, 6 epochs)"
    report feature_quantiles "COL775 1.2.7: penultimate feature quantiles (cifar10-mini, 6 epochs)" \
        multirun/cpu/norm_comparison
}

bn_sanity() {
    sweep bn_sanity bn_sanity trainer.max_epochs=4
    report bn_sanity "COL775 1.2.4: scratch BN vs torch BN (cifar10-mini, 4 epochs)"
    # The same comparison in float64: rounding differences no longer grow into visible ones.
    sweep bn_sanity_fp64 bn_sanity trainer.max_epochs=2 trainer.precision=64-true
    report bn_sanity/fp64 "COL775 1.2.4 in float64 (cifar10-mini, 2 epochs)" \
        multirun/cpu/bn_sanity_fp64
}

batch_size_study() {
    sweep batch_size_study batch_size_study trainer.max_epochs=4
    report batch_size_study "COL775 1.2.6: BN vs GN at batch 8 and 128 (cifar10-mini, 4 epochs)"
}

hw2_fcn() {
    sweep hw2_fcn hw2_fcn trainer.max_epochs=5
    report hw2_fcn "HW2: fully convolutional ResNet-20 (cifar10-mini, 5 epochs)"
    [ -n "${REPORT_ONLY:-}" ] && return 0
    local run=multirun/cpu/hw2_fcn
    $PY -m project.export "ckpt=$run/0/checkpoints/best.ckpt" "out=$run/export/model.pt"
    for ckpt in "$run/0/checkpoints/best.ckpt" "$run/export/model.pt"; do  # same predictions?
        $PY -m project.evaluate "ckpt=$ckpt" data=folder data.root=../shared/data/cifar10-mini \
            split=test "out=$run/evaluate_$(basename "$ckpt" | cut -d. -f1)"
    done
}

resnet20() {
    sweep resnet20 resnet20 trainer.max_epochs=5
    report resnet20 "ECE661: ResNet-20 (cifar10-mini, 5 epochs)"
}

for study in "$@"; do
    echo "=== $study $(date +%T)"
    "$study"
done
echo "=== done $(date +%T)"
