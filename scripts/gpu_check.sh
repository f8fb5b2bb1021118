#!/usr/bin/env bash
# The prepared GPU check (issue 12): the paper's Gaussian variant end to end on one GPU, in under 10 minutes.
#
#   bash scripts/gpu_check.sh                         # one H100/H200-class GPU, full CIFAR-10
#   TINY=1 bash scripts/gpu_check.sh                  # the same commands on the CPU in about a minute (the test)
#
# Steps: build the paper's variant (eps 0.1, budget 1.5%: 750 poisons) from full CIFAR-10; train the poisoned
# model and Retrain with the paper preset (ResNet-18 width 64, batch 256, lr 0.1, flip+crop) SHORTENED to
# EPOCHS epochs instead of the paper's 100, so the numbers are not the paper's; score both; unlearn with GD, NGD
# and SCRUB at budget 0.1; run the training and scoring benchmarks on the GPU. Writes one JSON line per model
# (a result record: poisoned, retrain, gd, ngd, scrub) to $OUT/gpu_check.jsonl, the benchmarks' lines to
# $OUT/bench.jsonl, each step's seconds to $OUT/timings.tsv and logs to $OUT/logs/, then prints a summary.
# A rerun keeps the built variant and finished models (delete $OUT to start over) and redoes the rest.
#
# Knobs (environment):
#   SOURCE   clean CIFAR-10: a folder of train/test parquet, or a Hub id. Default: ../shared/data/cifar10 beside
#            the repo when it exists (offline copy), else uoft-cs/cifar10.
#   OUT      output folder (default runs/gpu_check)
#   EPOCHS   training epochs of both models (default 25; TINY: 1). How 25 was chosen (an estimate: no GPU was
#            lent while writing this): a width-64 ResNet-18 step costs ~1.7 GFLOP per image (forward and
#            backward); at ~15k images/s (bf16, NHWC, data on the device; A100 runs of this network with AMP
#            are commonly reported at 5-7 s per epoch: recalled, not checked) an epoch of 50,000 images takes
#            ~3.3 s, the two models ~2 x 25 x 3.3 = 165 s, the three unlearning runs at budget 0.1 (a tenth of
#            a training each, counted at half the training speed) ~50 s, and building, six loads of the
#            variant, scoring, the benchmarks and ten process start-ups ~200 s (measured on a 2-core CPU:
#            build 8 s, a load 4-8 s): ~420 s of the 600, and it still fits at 5.5 s per epoch. The summary
#            prints the measured seconds per epoch and the EPOCHS that would fill 8 minutes, so the first GPU
#            run replaces this estimate.
#   MIXED_PRECISION  bf16 (default, TINY too: the same commands as the GPU run) or no; training and unlearning
#   NULL_DRAWS       null draws per poison when scoring (default 20, the paper preset's; TINY: 5)
#   DEVICE   cuda (default) or cpu (TINY's default); WIDTH: ResNet width (64; TINY: 4); MAX_TRAIN_ROWS: build on a
#            subset (empty: all 50,000; TINY: 400, 6 poisons); UNLEARN_BATCH: the methods' batch_size (empty: their
#            presets'; TINY: 16)
#   PYTHON   the interpreter with hf_unlearn installed (default: python)
#   TINY=1   the shipped samples, tiny model and benchmarks, on the CPU: about a minute (tests/test_gpu_check.py)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
TINY="${TINY:-0}"
OUT="${OUT:-runs/gpu_check}"
HFU=("$PYTHON" -m hf_unlearn.cli)

# TINY only changes defaults: the commands below are the GPU run's, so the CPU test checks them
if [[ "$TINY" == 1 ]]; then
    SOURCE="${SOURCE:-samples}"
    EPOCHS="${EPOCHS:-1}"
    WIDTH="${WIDTH:-4}"
    MAX_TRAIN_ROWS="${MAX_TRAIN_ROWS:-400}"  # 6 poisons
    DEVICE="${DEVICE:-cpu}"
    NULL_DRAWS="${NULL_DRAWS:-5}"
    UNLEARN_BATCH="${UNLEARN_BATCH:-16}"  # a default batch costs more than 10% of a 400-row epoch: no step at all
    BENCH_TRAIN=(--rows 64 --epochs 1 --width 4 --batch-size 32 --repeats 1)
    BENCH_SCORE=(--poisons 16 --null-draws 5 --width 4 --naive-rows 4 --repeats 1)
else
    if [[ -z "${SOURCE:-}" ]]; then
        SOURCE=uoft-cs/cifar10
        [[ -d "$ROOT/../shared/data/cifar10" ]] && SOURCE="$ROOT/../shared/data/cifar10"
    fi
    EPOCHS="${EPOCHS:-25}"
    WIDTH="${WIDTH:-64}"  # the paper's (and the preset's)
    MAX_TRAIN_ROWS="${MAX_TRAIN_ROWS:-}"  # empty: all 50,000
    DEVICE="${DEVICE:-cuda}"
    NULL_DRAWS="${NULL_DRAWS:-20}"
    UNLEARN_BATCH="${UNLEARN_BATCH:-}"  # empty: each method's preset
    BENCH_TRAIN=(--rows 50000 --epochs 1 --width "$WIDTH" --batch-size 256 --repeats 1)
    BENCH_SCORE=(--poisons 750 --null-draws 20 --width "$WIDTH" --naive-rows 64 --repeats 3)
fi
MIXED_PRECISION="${MIXED_PRECISION:-bf16}"
CONFIG="eps0.1-b1.5-s0${MAX_TRAIN_ROWS:+-n$MAX_TRAIN_ROWS}"
BUILD_EXTRA=(); [[ -n "$MAX_TRAIN_ROWS" ]] && BUILD_EXTRA=(--max-train-rows "$MAX_TRAIN_ROWS")
CPU_FLAG=(); [[ "$DEVICE" == cpu ]] && CPU_FLAG=(--cpu)
METHOD_EXTRA=(); [[ -n "$UNLEARN_BATCH" ]] && METHOD_EXTRA=(--set "batch_size=$UNLEARN_BATCH")
if [[ "$DEVICE" == cuda ]]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device is visible: \
run on a GPU machine, or TINY=1 (or DEVICE=cpu) for the CPU dry run')"
fi
BENCH_TRAIN+=(--mixed-precision "$MIXED_PRECISION")

mkdir -p "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"
DATA="$OUT/poisoned-cifar10-gaussian"  # the name tells the CLI the task and attack
RESULTS="$OUT/gpu_check.jsonl"
rm -f "$RESULTS" "$OUT/bench.jsonl" "$OUT/timings.tsv"
CURRENT_LOG=""
on_exit() {
    local status=$?
    if [[ $status -ne 0 && -n "$CURRENT_LOG" ]]; then
        echo "[gpu_check] FAILED (exit $status), last lines of $CURRENT_LOG:" >&2
        tail -n 30 "$CURRENT_LOG" >&2
    fi
}
trap on_exit EXIT

# step NAME COMMAND...: run it with its output in $OUT/logs/NAME.log and its wall seconds in timings.tsv
step() {
    local name="$1"; shift
    CURRENT_LOG="$OUT/logs/$name.log"
    local t0; t0=$(date +%s.%N)
    "$@" >"$CURRENT_LOG" 2>&1
    local secs; secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    printf '%s\t%s\n' "$name" "$secs" >>"$OUT/timings.tsv"
    echo "[gpu_check] $name: ${secs} s"
}

echo "[gpu_check] source $SOURCE, $EPOCHS epochs (the paper: 100), mixed precision $MIXED_PRECISION, out $OUT"
COMMON=(--dataset "$DATA" --config "$CONFIG")
if [[ ! -f "$DATA/README.md" ]]; then
    step build "${HFU[@]}" build --source "$SOURCE" --out "$DATA" --eps 0.1 --budget 1.5 --seed 0 "${BUILD_EXTRA[@]}"
fi
for role in poisoned retrain; do
    flag=(); [[ "$role" == retrain ]] && flag=(--retrain)
    if [[ ! -f "$OUT/$role/model.safetensors" ]]; then
        step "train-$role" "${HFU[@]}" train "${COMMON[@]}" "${flag[@]}" --preset paper --set "train.epochs=$EPOCHS" \
            --set "train.width=$WIDTH" --mixed-precision "$MIXED_PRECISION" --output-dir "$OUT/$role" --no-progress \
            "${CPU_FLAG[@]}"
    fi
done
step score-poisoned "${HFU[@]}" score --checkpoint "$OUT/poisoned" "${COMMON[@]}" --method none \
    --null-draws "$NULL_DRAWS" --output "$RESULTS" "${CPU_FLAG[@]}"
step score-retrain "${HFU[@]}" score --checkpoint "$OUT/retrain" "${COMMON[@]}" --method retrain \
    --null-draws "$NULL_DRAWS" --output "$RESULTS" "${CPU_FLAG[@]}"
for method in gd ngd scrub; do
    # unlearn takes its mixed precision from Accelerate's environment (it has no flag of its own)
    step "unlearn-$method" env ACCELERATE_MIXED_PRECISION="$MIXED_PRECISION" "${HFU[@]}" unlearn \
        --checkpoint "$OUT/poisoned" "${COMMON[@]}" --method "$method" --budget 0.1 --seed 0 \
        --null-draws "$NULL_DRAWS" --output "$RESULTS" --output-dir "$OUT/unlearn-$method" --no-progress \
        "${CPU_FLAG[@]}" "${METHOD_EXTRA[@]}"
done
cd "$ROOT/benchmarks"
step bench-train "$PYTHON" bench_train.py --device "$DEVICE" "${BENCH_TRAIN[@]}" --json "$OUT/bench.jsonl"
step bench-scoring "$PYTHON" bench_scoring.py --device "$DEVICE" "${BENCH_SCORE[@]}" --json "$OUT/bench.jsonl"
CURRENT_LOG=""
"$PYTHON" "$ROOT/scripts/gpu_check_summary.py" "$OUT" --epochs "$EPOCHS"
