#!/usr/bin/env bash
# Runs every evaluation protocol on ../shared/datasets for the encoders that work offline, and prints one
# summary line per run. metrics.json + report.html land in runs/eval/<name>/. Usage: bash benchmarks/eval_offline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
L=".venv/bin/lookalike"
DATA="${LOOKALIKE_DATA:-../shared/datasets}"
run() { name=$1; shift; echo "== $name: lookalike $*"; /usr/bin/time -f "   wall %e s, max RSS %M KB" $L "$@" --no-progress --out "runs/eval/$name" | sed -n 1,3p; }

for enc in dlib phash:8 clip:ViT-B-32@none; do
  tag=$(echo "$enc" | tr ':@' '--')
  face=(); [ "$enc" = dlib ] && face=(--no-face center)
  run "lfw-pairs-$tag"      eval pairs      --dataset "$DATA/lfw" -e "$enc" "${face[@]}"
  run "lfw-retrieval-$tag"  eval retrieval  --dataset "$DATA/lfw/lfw-deepfunneled" -c "lfw-$tag" -e "$enc" "${face[@]}"
  run "tll-val-$tag"        eval candidates --dataset "$DATA/tll" -e "$enc"
  [ "$enc" = dlib ] && continue  # handwritten characters have no faces
  run "omniglot2-20way-$tag" eval oneshot   --dataset "$DATA/omniglot/images_background_small2" -e "$enc" --tasks 400
done
