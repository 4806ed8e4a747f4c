#!/usr/bin/env bash
# The CPU-scale comparison tables of docs/results.md, run on one GPU machine in parallel processes:
#   1. the mask study on the synthetic demo   (bench/mask_study.py --benchmark synthetic, every row x 3 seeds)
#   2. the real multi-camera benchmark         (bench/real_multicam.py, Base / SBase / DFF literal / default)
#   3. the mask study on the real benchmark    (bench/mask_study.py --benchmark real)
#   4. the two stages at CPU scale             (tools/run_two_stage_table.py: stage 1, then the demo x 3 seeds)
# Every training is one cached run of a sweep (reid_dff/experiments/sweep.py): JOBS processes each train a
# disjoint part (one row and seed at a time), then each table command runs once more over all its rows, finds
# every run cached and prints and writes its table. Interrupted (the call's time limit): run it again, the
# finished runs are reused. The real data: REAL_ARCHIVE (default output/carry/real_multicam.tar.gz, an
# ignored folder a device call can carry; the archive never enters the repository).
# Usage, from the repo root:
#   bash bench/gpu_experiments.sh                 # on a CUDA machine (JOBS=8, WORKERS=2, PARTS="1 2 3 4")
#   bash bench/gpu_experiments.sh --tiny          # CPU smoke run: 2 iterations per run, seed 0, few rows
# Output: the runs and tables under ${OUT:-output/gpu_experiments}; the tables are also printed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT_DIR=${OUT:-output/gpu_experiments}
JOBS=${JOBS:-8}
WORKERS=${WORKERS:-2}
PARTS=${PARTS:-"1 2 3 4"}
REAL_ARCHIVE=${REAL_ARCHIVE:-output/carry/real_multicam.tar.gz}
TINY=0
if [[ "${1:-}" == "--tiny" ]]; then TINY=1; fi

if [[ "$TINY" == 1 ]]; then
  DEVICE=cpu
  SEEDS=(0)
  SCHEDULE=(--epochs 1 --iters 2)
  STUDY_ROWS=(literal init_kaiming)
  REAL_ROWS=(base dff_literal)
  EXTRA=(SOLVER.WARMUP_EPOCHS 0 TEST.MASK_STATS_MAX_IMAGES 16)
  SYNTH_DATA=(DATASETS.ROOT "$OUT_DIR/data" DATASETS.SYNTHETIC.IDS_TRAIN 8 DATASETS.SYNTHETIC.IDS_TEST 4
              DATASETS.SYNTHETIC.IMAGES_PER_CAMERA 2)
  SYNTH_MAKE=(--ids-train 8 --ids-test 4 --images-per-camera 2)
  CLASSES_DATA=(DATASETS.SYNTHETIC_CLASSES.NUM_CLASSES 10 DATASETS.SYNTHETIC_CLASSES.TRAIN_PER_CLASS 8
                DATASETS.SYNTHETIC_CLASSES.VAL_PER_CLASS 2)
  CLASSES_MAKE=(--num-classes 10 --train-per-class 8 --val-per-class 2)
  TWO_STAGE_SCHEDULE=(--stage1-set SOLVER.MAX_EPOCHS=1 --stage1-set SOLVER.ITERS_PER_EPOCH=2
                      --demo-set SOLVER.MAX_EPOCHS=1 --demo-set SOLVER.ITERS_PER_EPOCH=2)
  MODELS=(base dff)
else
  DEVICE=cuda
  SEEDS=(0 1 2)
  SCHEDULE=()
  STUDY_ROWS=($("$PY" -c "import sys; sys.path.insert(0, 'bench'); import mask_study as m; \
print(' '.join(r.key for r in m.STUDY_ROWS if r.key != 'default'))"))
  REAL_ROWS=(base sbase dff_literal dff_default)
  EXTRA=()
  SYNTH_DATA=(DATASETS.ROOT "$OUT_DIR/data")
  SYNTH_MAKE=()
  CLASSES_DATA=()
  CLASSES_MAKE=()
  TWO_STAGE_SCHEDULE=()
  MODELS=(base sbase dff)
  "$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
fi
COMMON=(MODEL.DEVICE "$DEVICE" DATALOADER.NUM_WORKERS "$WORKERS" "${EXTRA[@]}")
mkdir -p "$OUT_DIR"
echo "machine: $(nproc) CPU cores; $JOBS parallel runs x $WORKERS loader workers; device $DEVICE"

# Data, once, before the parallel runs (no two processes generate or unpack the same tree).
"$PY" tools/make_synthetic.py --root "$OUT_DIR/data" "${SYNTH_MAKE[@]}" --workers "$(nproc)" >/dev/null
if [[ " $PARTS " == *" 4 "* ]]; then
  "$PY" tools/make_synthetic.py --root "$OUT_DIR/data" --classes "${CLASSES_MAKE[@]}" >/dev/null
fi
HAVE_REAL=0
if [[ -f "$REAL_ARCHIVE" ]]; then
  "$PY" -c "import sys; sys.path.insert(0, 'bench'); import real_multicam as r; r.unpack(sys.argv[1], sys.argv[2])" \
    "$REAL_ARCHIVE" "$OUT_DIR/real_data"
  HAVE_REAL=1
else
  echo "real benchmark skipped: no archive at $REAL_ARCHIVE (set REAL_ARCHIVE)"
fi

# One line per job, "part|row|seed"; phase 1 (stage 1 of part 4 first, then parts 1-3), then phase 2 (the
# fine-tunes and from-scratch demo runs of part 4, which need their model's stage 1).
JOBLIST=$(mktemp)
JOBLIST2=$(mktemp)
trap 'rm -f "$JOBLIST" "$JOBLIST2"' EXIT
if [[ " $PARTS " == *" 4 "* ]]; then
  for model in "${MODELS[@]}"; do echo "4|$model|stage1"; done >"$JOBLIST"
  for seed in "${SEEDS[@]}"; do for model in "${MODELS[@]}"; do echo "4|$model|$seed"; done; done >"$JOBLIST2"
fi
for part in $PARTS; do
  for seed in "${SEEDS[@]}"; do
    case $part in
      1) for row in "${STUDY_ROWS[@]}"; do echo "1|$row|$seed"; done ;;
      2) if [[ $HAVE_REAL == 1 ]]; then for row in "${REAL_ROWS[@]}"; do echo "2|$row|$seed"; done; fi ;;
      3) if [[ $HAVE_REAL == 1 ]]; then for row in "${STUDY_ROWS[@]}"; do echo "3|$row|$seed"; done; fi ;;
    esac
  done
done >>"$JOBLIST"

# The command of a part over some rows and seeds; the config overrides are identical in every call, so the
# runs of the parallel calls are the cached runs of the final one (the sweep hashes the resolved config).
table_cmd() {  # part, then --rows ... --seeds ... (flags with several values: a flag follows them)
  local part=$1
  shift
  case $part in
    1) echo "$PY" bench/mask_study.py --benchmark synthetic "$@" --out "$OUT_DIR/mask_study_synthetic" \
         "${SCHEDULE[@]}" "${COMMON[@]}" "${SYNTH_DATA[@]}" ;;
    2) echo "$PY" bench/real_multicam.py "$@" --out "$OUT_DIR/real_multicam" --scratch "$OUT_DIR/real_data" \
         --archive "$REAL_ARCHIVE" "${SCHEDULE[@]}" "${COMMON[@]}" ;;
    3) echo "$PY" bench/mask_study.py --benchmark real "$@" --out "$OUT_DIR/mask_study_real" \
         --scratch "$OUT_DIR/real_data" --archive "$REAL_ARCHIVE" "${SCHEDULE[@]}" "${COMMON[@]}" ;;
    4) echo "$PY" tools/run_two_stage_table.py "$@" --out "$OUT_DIR/two_stage" "${TWO_STAGE_SCHEDULE[@]}" \
         "${COMMON[@]}" "${SYNTH_DATA[@]}" "${CLASSES_DATA[@]}" ;;
  esac
}
export -f table_cmd
run_job() {  # "part|row|seed": train that one run (quietly; the run's log.txt keeps everything)
  IFS='|' read -r part row seed <<<"$1"
  local start=$SECONDS selection
  if [[ $part == 4 && $seed == stage1 ]]; then
    selection=(--models "$row" --stage1-only)
  elif [[ $part == 4 ]]; then
    # Only after this model's stage 1 finished: several seed jobs would otherwise each train it, side by
    # side, into the same folder.
    if [[ ! -f "$OUT_DIR/stage1_done_$row" ]]; then
      echo "SKIPPED part 4 $row seed $seed: its stage 1 did not finish"
      return
    fi
    selection=(--models "$row" --seeds "$seed")
  else
    selection=(--rows "$row" --seeds "$seed")
  fi
  if $(table_cmd "$part" "${selection[@]}") >/dev/null 2>"$OUT_DIR/job_${part}_${row}_${seed}.err"; then
    echo "done   part $part $row seed $seed ($((SECONDS - start)) s)"
    if [[ $part == 4 && $seed == stage1 ]]; then touch "$OUT_DIR/stage1_done_$row"; fi
    rm -f "$OUT_DIR/job_${part}_${row}_${seed}.err"
  else
    echo "FAILED part $part $row seed $seed: see $OUT_DIR/job_${part}_${row}_${seed}.err"
  fi
}
export -f run_job
export PY OUT_DIR REAL_ARCHIVE
export SCHEDULE_S="${SCHEDULE[*]}" COMMON_S="${COMMON[*]}" SYNTH_DATA_S="${SYNTH_DATA[*]}"
export CLASSES_DATA_S="${CLASSES_DATA[*]}" TWO_STAGE_SCHEDULE_S="${TWO_STAGE_SCHEDULE[*]}"
# Arrays do not cross into the xargs children: rebuild them there from the exported strings.
run_one() {
  read -r -a SCHEDULE <<<"$SCHEDULE_S"
  read -r -a COMMON <<<"$COMMON_S"
  read -r -a SYNTH_DATA <<<"$SYNTH_DATA_S"
  read -r -a CLASSES_DATA <<<"$CLASSES_DATA_S"
  read -r -a TWO_STAGE_SCHEDULE <<<"$TWO_STAGE_SCHEDULE_S"
  run_job "$1"
}
export -f run_one
rm -f "$OUT_DIR"/stage1_done_*  # written by this call's stage-1 jobs (each reuses a cached stage 1)
echo "$(cat "$JOBLIST" "$JOBLIST2" | wc -l) jobs"
START=$SECONDS
xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {} <"$JOBLIST"
xargs -P "$JOBS" -I{} bash -c 'run_one "$@"' _ {} <"$JOBLIST2"
echo "all runs: $((SECONDS - START)) s"

# The tables: every run is cached now, so these only read and write.
for part in $PARTS; do
  if [[ ($part == 2 || $part == 3) && $HAVE_REAL == 0 ]]; then continue; fi
  case $part in
    1 | 3) rows=("${STUDY_ROWS[@]}" default) ;;
    2) rows=("${REAL_ROWS[@]}") ;;
  esac
  echo
  if [[ $part == 4 ]]; then
    $(table_cmd 4 --models "${MODELS[@]}" --seeds "${SEEDS[@]}") 2>&1 | grep -v "^\[" || true
  else
    $(table_cmd "$part" --rows "${rows[@]}" --seeds "${SEEDS[@]}") 2>&1 | grep -v "^\[" || true
  fi
done
