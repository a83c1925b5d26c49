#!/usr/bin/env bash
# One GPU run of at most ~5 minutes that records everything the trainer's GPU path depends on, as
# JSON under OUT (default gpu_check_out/):
#   env.json        torch / CUDA / cuDNN / transformers versions, device name, flash-attn / FA3 present
#   tests.json      the CUDA tests: attention against the reference (plain, the model's strided
#                   q/k/v views, compiled over changing geometry)   (pytest junit summary)
#   attention.json  a global layer on fresh geometries: cuDNN allowed (varlen_cudnn) vs blocked (varlen)
#   memory.json     peak memory of one eager and one compiled step at 32k and 64k tokens (+ checkpointing)
#   bench.json      benchmarks/bench_encoder_gpu.py: twbert vs HF ModernBERT, tokens/s, MFU, peak memory
#
#   scripts/gpu_check.sh [OUT]             on the GPU machine (docs/training.md, "GPU check")
#   scripts/gpu_check.sh --dry-run [OUT]   on any CPU: the same steps at toy sizes (tests skip)
#
# On the lent GPU machine (../shared/GPU.md) missing packages come as wheels in .whl/ (download them
# as GPU.md shows; this script needs only pytest, pluggy and iniconfig there): carry .whl, and this
# script installs them into /tmp/site first. The repository needs no install.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=""
if [[ "${1:-}" == "--dry-run" ]]; then DRY="--dry-run"; shift; fi
OUT="${1:-gpu_check_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if [[ -d .whl ]] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
if ! "$PY" -c "import twbert.training" 2>/dev/null; then
  # not installed: lay out the package as pyproject.toml maps it (training/ is twbert.training ...)
  PKG="$(mktemp -d)"
  mkdir "$PKG/twbert"
  for f in twbert/*; do ln -s "$PWD/$f" "$PKG/twbert/"; done
  for d in training pipeline shards; do ln -s "$PWD/$d" "$PKG/twbert/$d"; done
  export PYTHONPATH="$PKG:$PYTHONPATH"
fi
"$PY" -m pytest --version >/dev/null 2>&1 || echo "gpu_check: no pytest here: add its wheels to .whl (pytest pluggy iniconfig)"
status=0
step() {  # name, timeout seconds, command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  if [[ -n "$DRY" ]]; then limit=$((limit * 4)); fi
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0))}" >>"$OUT/steps.jsonl"
  echo "gpu_check: $name rc=$rc ($((SECONDS - t0)) s)"
  [[ $rc -eq 0 ]] || status=1
}

"$PY" - "$OUT/env.json" <<'PYEOF'
import importlib.util, json, sys
import torch
info = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "capability": list(torch.cuda.get_device_capability()) if torch.cuda.is_available() else None,
        "flash_attn": importlib.util.find_spec("flash_attn") is not None,
        "flash_attn_interface": importlib.util.find_spec("flash_attn_interface") is not None}
try:
    import transformers
    info["transformers"] = transformers.__version__
except ImportError:
    info["transformers"] = None
open(sys.argv[1], "w").write(json.dumps(info, indent=1))
print(json.dumps(info))
PYEOF

step tests 70 "$PY" -m pytest -q -p no:cacheprovider tests/test_attention.py tests/test_head_loss.py \
  --junitxml="$OUT/tests.xml"
"$PY" - "$OUT" <<'PYEOF'
import json, sys, xml.etree.ElementTree as ET
out = sys.argv[1]
try:
    s = ET.parse(f"{out}/tests.xml").getroot()
    s = s if s.tag == "testsuite" else s[0]
    summary = {k: int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
except (OSError, ET.ParseError) as e:
    summary = {"error": str(e)}
open(f"{out}/tests.json", "w").write(json.dumps(summary))
PYEOF
step attention 45 "$PY" scripts/gpu_check.py "$OUT" attention $DRY
step memory 110 "$PY" scripts/gpu_check.py "$OUT" memory $DRY
if [[ -n "$DRY" ]]; then
  step bench 120 "$PY" benchmarks/bench_encoder_gpu.py --tiny --device cpu --steps 1 --warmup 1 \
    --backends sdpa --hf-attn sdpa --no-bf16 --json "$OUT/bench.json"
else
  step bench 75 "$PY" benchmarks/bench_encoder_gpu.py --steps 8 --warmup 2 --json "$OUT/bench.json"
fi
echo "gpu_check: results in $OUT/ (status $status)"
exit $status
