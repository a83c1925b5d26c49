#!/usr/bin/env bash
# DRCD fine-tuning on the lent GPU machine: a twbert export vs a BERT-style baseline, dev EM/F1.
#
#   scripts/gpu_finetune.sh EXPORT_DIR BASELINE_DIR DRCD_TRAIN.json DRCD_DEV.json [OUT] [SEEDS]
#
# The GPU machine has torch and transformers but not twbert's other dependencies (../shared/GPU.md).
# Before the run, on the machine with the network, in the repository root:
#   echo /.whl/ >> .git/info/exclude
#   for p in opencc==1.4.2 nltk==3.10.4 click joblib; do
#     python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl $p
#   done
# and carry `.whl` (and the model directories) to the run. Not run yet: no GPU has been lent to this work.
set -euo pipefail
if [ $# -lt 4 ]; then sed -n '2,13p' "$0"; exit 2; fi
EXPORT=$1 BASELINE=$2 TRAIN=$3 DEV=$4 OUT=${5:-runs/drcd} SEEDS=${6:-1}

python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda,
  "transformers", transformers.__version__, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
if ! python3 -c 'import twbert.finetune.run, opencc, nltk' 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site .
  export PYTHONPATH=/tmp/site
fi
python3 benchmarks/bench_finetune_gpu.py --export "$EXPORT" --baseline "$BASELINE" --train "$TRAIN" --dev "$DEV" \
  --out "$OUT" --seeds "$SEEDS"
