#!/usr/bin/env bash
# Issue 6 copy-detection measurements on ../shared/datasets (CPU): a copy set from TLL's test images, scored with
# phash, dlib and a self-supervised copy detector trained on TLL's *train* images (disjoint from the copy set).
# Usage: bash benchmarks/copies_offline.sh   (outputs: runs/bench/tll-test-copies, runs/finetune/*, runs/eval/*)
set -euo pipefail
# Outputs are cut with `sed -n 1,2p`, not `head -2`: sed reads to the end, where head would close the pipe early
# and the CLI (click) would exit 1 on the broken pipe, ending the script under pipefail.
cd "$(dirname "$0")/.."
L=".venv/bin/lookalike"
DATA="${LOOKALIKE_DATA:-../shared/datasets}"
BENCH=runs/bench/tll-test-copies
t() { /usr/bin/time -f "   wall %e s" "$@"; }
[ -f "$BENCH/ground_truth.csv" ] || t $L bench copies "$DATA/tll/test" --out "$BENCH"
for enc in phash dlib; do
  echo "== $enc"
  t $L eval copies "$BENCH" -e "$enc" --no-face center --no-progress --out "runs/eval/tll-test-copies-$enc" | sed -n 1,2p
done
echo "== self-supervised copy detector (supcon), trained on $DATA/tll/train"
t $L finetune --data "copies:$DATA/tll/train" --mode cnn --loss supcon --input-size 64 --width 24 --blocks 1,1,1,1 \
  --copies-per-image 6 --steps-per-epoch 50 --epochs 14 --patience 4 --no-progress \
  --out runs/finetune/tll-copies-supcon | tail -3
t $L eval copies "$BENCH" -e siamese@runs/finetune/tll-copies-supcon --no-progress \
  --out runs/eval/tll-test-copies-siamese-supcon | sed -n 1,2p
