#!/usr/bin/env bash
# Wheels for benchmarks/device_check.sh's optional stages, fetched on a machine with the network into ./wheels
# (Linux x86-64, CPython 3.11 by default). Prints each wheel's size: a device call carries about 64 MiB with the
# repository, so carry bitsandbytes and unsloth in separate runs.
#   bash benchmarks/device_wheels.sh            # PY_VERSION=3.12 for another interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mkdir -p wheels
$PY -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_24_x86_64 \
  --python-version "${PY_VERSION:-3.11}" -d wheels bitsandbytes==0.50.2 unsloth==2026.10.7 unsloth_zoo==2026.10.7
ls -l wheels/*.whl | awk '{printf "%6.1f MB  %s\n", $5 / 1e6, $9}'
