#!/usr/bin/env bash
# Stage-1 speed on one GPU, in well under 10 minutes on an H200-class GPU:
#   1. training steps of resnet50 and dff_resnet50 at 224 with AMP (bf16 where supported) and
#      channels_last on generated tensors: images/s of each and their ratio (bench/gpu_stage1.py);
#   2. the input side: decoded + augmented images/s of one loader worker per decoder, the machine's
#      cores, and the workers the measured DFF training speed needs (bench/classification_loader.py).
# Usage, from the repo root:
#   bash bench/gpu_stage1.sh            # the GPU run (BATCH, ITERS, WARMUP, LOADER_IMAGES override)
#   bash bench/gpu_stage1.sh --tiny     # CPU smoke test (or GPU_STAGE1_TINY=1)
# Output: the tables on stdout, and the rows in ${OUT:-output/bench}/gpu_stage1.json.
set -euo pipefail
cd "$(dirname "$0")/.."
TINY=${GPU_STAGE1_TINY:-0}
if [[ "${1:-}" == "--tiny" ]]; then TINY=1; fi
OUT_DIR=${OUT:-output/bench}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python}
CORES=$(nproc)
echo "machine: ${CORES} CPU cores"
if [[ "$TINY" == 1 ]]; then
  "$PY" bench/gpu_stage1.py --tiny --json "$OUT_DIR/gpu_stage1.json"
  LOADER_ARGS=(--images 4 --size 64x48 --repeats 1)
else
  "$PY" bench/gpu_stage1.py --batch "${BATCH:-128}" --iters "${ITERS:-300}" --warmup "${WARMUP:-30}" \
    --size 224 --json "$OUT_DIR/gpu_stage1.json"
  LOADER_ARGS=(--images "${LOADER_IMAGES:-200}" --size 500x375 --repeats 3)
fi
# The slower model's training speed sets how many workers the loader needs.
SPEED=$("$PY" -c "import json,sys; print(min(r['images_per_s'] for r in json.load(open(sys.argv[1]))))" \
  "$OUT_DIR/gpu_stage1.json")
echo
echo "loader (one worker per decoder; ${CORES} cores give at most ${CORES} workers):"
"$PY" bench/classification_loader.py "${LOADER_ARGS[@]}" --train-speed "$SPEED"
