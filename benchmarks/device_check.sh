#!/usr/bin/env bash
# The GPU path in one run: the tests marked `gpu` (placement, bf16, QLoRA when bitsandbytes' CUDA build is
# carried, Unsloth when it is carried), then a random Qwen2.5-VL-7B (real shapes, bf16, no download) trained
# STEPS steps in each of the official sequential mode, the batched mode and the batched mode with B = 4 images
# per step, printed as one table (s/step, steps/s, samples/s, generated tokens/s, peak GPU memory beside the
# kit's estimate). Its duration on a GPU has not been measured yet; LIMIT caps the benchmark stage.
#
#   bash benchmarks/device_check.sh                     # on the GPU machine, from the repository root
#   DEVICE_CHECK_CPU=1 bash benchmarks/device_check.sh  # rehearsal of the same script on a CPU (small shape)
#
# Needs torch, transformers, peft and accelerate installed; anything else the kit imports (pytest, pillow,
# pyyaml, ...) is installed from ./wheels when missing, and every wheel in ./wheels is installed without its
# dependencies (bitsandbytes, unsloth + unsloth_zoo: the optional stages). Fill that folder on a machine with
# the network: bash benchmarks/device_wheels.sh (it prints each wheel's size).
# Output also goes to runs/device_check/ (log.txt, table.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${DEVICE_CHECK_OUT:-runs/device_check}
WHEELS=${DEVICE_CHECK_WHEELS:-wheels}
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
  $PY -m pip install -q --no-index --find-links "$WHEELS" $missing || { echo "missing packages ($missing) and no usable ./wheels"; exit 1; }
fi

extra=$(ls "$WHEELS"/*.whl 2>/dev/null | grep -iE "bitsandbytes|unsloth" || true)
if [ -n "$extra" ]; then
  echo "installing the optional stages' wheels: $(echo $extra | xargs -n1 basename | tr '\n' ' ')"
  $PY -m pip install -q --no-index --no-deps $extra || echo "optional wheels: install FAILED (their tests will skip)"
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

echo "== $MODEL, $DTYPE: $STEPS steps each of sequential, batched and batched with B = 4 =="
set +e
timeout "$LIMIT" $PY benchmarks/bench_speed.py --models "$MODEL" --modes sequential batched batched-b4 --dtype "$DTYPE" \
  --steps "$STEPS" --tokens "$TOKENS" --n "$N" --side "$SIDE" --threads "$(nproc --all)" | tee "$OUT/table.txt"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 124 ]; then echo "benchmark: stopped at the ${LIMIT} s limit (DEVICE_CHECK_LIMIT); rows above are complete"; fi
exit "$rc"
