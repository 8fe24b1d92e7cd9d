#!/usr/bin/env bash
# The GPU path in one run (under 8 minutes on one H100): the tests marked `gpu`, then a random
# Qwen2.5-VL-7B (real shapes, bf16, no download) trained 5 steps in the official sequential mode and
# 5 in the batched mode, printed as one table (s/step, steps/s, samples/s, generated tokens/s, peak GPU memory).
#
#   bash benchmarks/device_check.sh                     # on the GPU machine, from the repository root
#   DEVICE_CHECK_CPU=1 bash benchmarks/device_check.sh  # dry run of the same script on a CPU (small shape)
#
# Needs only torch, transformers, peft and accelerate installed; anything else the kit imports
# (pytest, pillow, pyyaml, ...) is installed from ./wheels when missing. Fill that folder on a
# machine with the network:  pip download -d wheels pytest pillow pyyaml
# Output also goes to runs/device_check/ (log.txt, table.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${DEVICE_CHECK_OUT:-runs/device_check}
mkdir -p "$OUT"
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export EVOLMM_CACHE=${EVOLMM_CACHE:-$PWD/.cache/evolmm}
exec > >(tee "$OUT/log.txt") 2>&1

# module -> package of what the kit and its tests import beyond the four preinstalled packages
missing=$($PY - <<'EOF'
import importlib.util
need = {"pytest": "pytest", "PIL": "pillow", "yaml": "pyyaml", "tqdm": "tqdm", "numpy": "numpy",
        "tokenizers": "tokenizers", "safetensors": "safetensors", "peft": "peft", "accelerate": "accelerate"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
EOF
)
if [ -n "$missing" ]; then
  echo "installing from ./wheels: $missing"
  $PY -m pip install -q --no-index --find-links wheels $missing || { echo "missing packages ($missing) and no usable ./wheels"; exit 1; }
fi

$PY - <<'EOF'
import torch, transformers, peft
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)"
print(f"device: {gpu}; torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
EOF

if [ "${DEVICE_CHECK_CPU:-0}" = "1" ]; then
  # the CPU dry run: the same stages on a small real shape, a short budget
  MODEL=${DEVICE_CHECK_MODEL:-random:qwen2.5-vl-3b@1}; DTYPE=float32; STEPS=${DEVICE_CHECK_STEPS:-1}
  TOKENS=${DEVICE_CHECK_TOKENS:-4}; N=${DEVICE_CHECK_N:-2}; SIDE=112; LIMIT=${DEVICE_CHECK_LIMIT:-1800}
else
  MODEL=${DEVICE_CHECK_MODEL:-random:qwen2.5-vl-7b}; DTYPE=bfloat16; STEPS=${DEVICE_CHECK_STEPS:-5}
  TOKENS=${DEVICE_CHECK_TOKENS:-128}; N=${DEVICE_CHECK_N:-5}; SIDE=448; LIMIT=${DEVICE_CHECK_LIMIT:-320}
fi

echo "== tests marked gpu =="
timeout 150 $PY -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider || echo "gpu tests: FAILED (rc $?)"

echo "== $MODEL, $DTYPE: $STEPS steps each of sequential and batched =="
set +e
timeout "$LIMIT" $PY benchmarks/bench_speed.py --models "$MODEL" --modes sequential batched --dtype "$DTYPE" \
  --steps "$STEPS" --tokens "$TOKENS" --n "$N" --side "$SIDE" --threads "$(nproc --all)" | tee "$OUT/table.txt"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 124 ]; then echo "benchmark: stopped at the ${LIMIT} s limit (DEVICE_CHECK_LIMIT); rows above are complete"; fi
exit "$rc"
