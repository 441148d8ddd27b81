#!/usr/bin/env bash
# The second H100 lease (2026-11-25), run from the repo root on the device machine:
#   bash experiments/benchmarks/gpu_h100/lease2.sh setup    # environment, data cache, CUDA tests
#   bash experiments/benchmarks/gpu_h100/lease2.sh bench    # ResNet-14 step ratios, eager + compiled
#   bash experiments/benchmarks/gpu_h100/lease2.sh train NAME "OVERRIDES" ...  # detached runs
#   bash experiments/benchmarks/gpu_h100/lease2.sh wait SECONDS   # progress; collect the runs
# The image lacks hydra-core/omegaconf/antlr4: they travel as .devsite/devsite.tgz (copied from
# the venv). The data travels packed in one file, data/gpu/cifar10-jpeg.npz (the JPEG bytes and
# their paths: 60,000 small files would exceed the 64 MiB of a call in disk blocks), is unpacked
# to ../shared/data/cifar10-jpeg, so the run records name the same data.root as the CPU runs.
# Everything comes back as $OUT/*.tgz.
set -u
export PYTHONPATH=/tmp/devsite:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
WORK=/tmp/lease2 && mkdir -p $WORK
DATA=../shared/data/cifar10-jpeg

setup() {
  mkdir -p /tmp/devsite && tar xzf .devsite/devsite.tgz -C /tmp/devsite
  python3 -c "
import numpy as np, os
z = np.load('data/gpu/cifar10-jpeg.npz'); blob, off = z['blob'], z['offsets']
for i, rel in enumerate(str(z['paths']).split(chr(10))):
    path = os.path.join('$DATA', rel); os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'wb').write(blob[off[i]:off[i + 1]].tobytes())
print(i + 1, 'files unpacked')"
  { nvidia-smi -L; lscpu | grep "Model name"; nproc
    python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
  } > $WORK/env.txt 2>&1
  # Decode the JPEGs once (cached beside the data), so the training runs only load tensors.
  python3 -c "
from pathlib import Path
from project.data.folder import folder_class_names, load_folder_split
root = Path('$DATA'); classes = folder_class_names(root)
for split in ('train', 'test'): print(split, load_folder_split(root, split, classes)[0].shape)
" > $WORK/decode.log 2>&1 &
  python3 -m pytest -q -p no:cacheprovider -n 0 tests/test_autocast.py tests/test_norms.py \
    -k "cuda or dynamo" > $WORK/cuda_tests.log 2>&1
  wait
  tail -n 3 $WORK/cuda_tests.log $WORK/decode.log; cat $WORK/env.txt
}

bench() {
  python3 -m project.bench --parts model --device cuda --batch-size 128 --precision fp32,bf16 \
    --layouts nchw,channels_last --repeats 10 --out $WORK/bench_eager > $WORK/bench_eager.log 2>&1
  python3 -m project.bench --parts model --device cuda --batch-size 128 --precision bf16 \
    --layouts channels_last --repeats 10 --compile --out $WORK/bench_compile \
    > $WORK/bench_compile.log 2>&1
  tail -n 12 $WORK/bench_eager/bench.md $WORK/bench_compile/bench.md
}

train() {  # NAME "OVERRIDES" pairs; each run detached (setsid) so it outlives this call
  while [ $# -ge 2 ]; do
    mkdir -p outputs/gpu/$1
    setsid nohup python3 -m project.train data=folder data.root=$DATA data.val_size=10000 \
      logger=csv trainer.enable_progress_bar=false trainer=gpu channels_last=true \
      scheduler=cosine trainer.max_epochs=100 $2 hydra.run.dir=outputs/gpu/$1 \
      > outputs/gpu/$1/stdout.log 2>&1 < /dev/null &
    shift 2
  done
}

wait_runs() {  # up to $1 seconds or until no run is left; then pack what there is
  local end=$((SECONDS + $1))
  while [ $SECONDS -lt $end ] && pgrep -f project.train > /dev/null; do sleep 10; done
  for d in outputs/gpu/*/; do
    echo "$d epochs=$(($(grep -c '^[0-9]' $d/csv/metrics.csv 2>/dev/null || echo 0))) $(ls $d | tr '\n' ' ')"
    tail -n 2 $d/stdout.log
  done
  tar czf $OUT/runs.tgz --exclude=last.ckpt outputs/gpu 2>/dev/null
}

case "${1:-}" in
  setup) setup ;;
  bench) bench ;;
  train) shift; train "$@" ;;
  wait) wait_runs "${2:-0}" ;;
esac
tar czf $OUT/lease2.tgz -C $WORK . 2>/dev/null
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null | tail -n 1
