#!/usr/bin/env bash
# GPU benchmark of the prototype engine on a bare box: only torch, torchvision and Pillow
# (numpy comes with torchvision). No Django, no database: bench/prototypes.py imports
# prototypes/engine.py alone and asserts Django was never imported (--standalone).
#
#   bash bench/prototypes_gpu.sh            # 50,000 images, ResNet-50, one GPU
#   N=10000 SWEEP=5000 bash bench/prototypes_gpu.sh
#
# Writes the JSON to ${OUT:-bench/results}/prototypes_gpu.json and prints it.
# Goal (issue 3): end_to_end >= 8,000 images/s for ResNet-50 on one H100/H200 with real JPEG decoding.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
N=${N:-50000}
SWEEP=${SWEEP:-10000}
OUT_DIR=${OUT:-bench/results}
DATA=${DATA:-/tmp/prototypes-bench-jpegs}
mkdir -p "$OUT_DIR"

"$PY" - <<'PY'
import importlib, sys
for mod in ("torch", "torchvision", "PIL"):
    importlib.import_module(mod)
try:
    import django  # noqa: F401
    print("note: Django is installed here, but the benchmark does not import it", file=sys.stderr)
except ImportError:
    pass
import torch
assert torch.cuda.is_available(), "no CUDA device visible"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}", file=sys.stderr)
PY
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true

# Main figures: service defaults on CUDA (bf16 autocast, channels_last, batch 256, nvjpeg
# decode on the device, pinned memory + non_blocking copies, cores-1 reader workers). The
# sweep then measures each choice against its alternative (CPU decode, batch 512, fp16, fp32,
# no channels_last) so the default can be checked, not assumed. RSS at N/5 and N.
"$PY" bench/prototypes.py --standalone --device cuda --n "$N" --rss-n "$((N / 5))" "$N" \
  --naive-n 2000 --sweep "$SWEEP" --data-dir "$DATA" --out "$OUT_DIR/prototypes_gpu.json"
