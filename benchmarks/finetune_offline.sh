#!/usr/bin/env bash
# Issue 4 measurements on ../shared/datasets (CPU): Omniglot CNN per loss, then dlib heads on TLL and LFW.
# Usage: bash benchmarks/finetune_offline.sh [EPOCHS]   (outputs: runs/finetune/*, runs/eval/*)
set -euo pipefail
cd "$(dirname "$0")/.."
L=".venv/bin/lookalike"
DATA="${LOOKALIKE_DATA:-../shared/datasets}"
EPOCHS="${1:-30}"
t() { /usr/bin/time -f "   wall %e s" "$@"; }
for loss in contrastive triplet bce supcon; do
  echo "== omniglot cnn $loss ($EPOCHS epochs max)"
  t $L finetune --data "omniglot:$DATA/omniglot/images_background_small1" --mode cnn --loss "$loss" \
    --epochs "$EPOCHS" --patience 10 --no-progress --out "runs/finetune/omniglot-cnn-$loss" | tail -3
  t $L eval oneshot --dataset "$DATA/omniglot/images_background_small2" --alphabet "Japanese_(katakana)" \
    --alphabet Sanskrit --alphabet Tagalog --tasks 400 -e "siamese@runs/finetune/omniglot-cnn-$loss" \
    -c "omniglot2-cnn-$loss" --no-progress --out "runs/eval/omniglot2-20way-cnn-$loss" | head -2
done
echo "== omniglot cnn supcon, each 90° rotation of a character a new class (same step budget ×2)"
t $L finetune --data "omniglot:$DATA/omniglot/images_background_small1" --mode cnn --loss supcon --rotate-classes \
  --steps-per-epoch 34 --epochs "$EPOCHS" --patience 10 --no-progress --out runs/finetune/omniglot-cnn-supcon-rot | tail -3
t $L eval oneshot --dataset "$DATA/omniglot/images_background_small2" --alphabet "Japanese_(katakana)" \
  --alphabet Sanskrit --alphabet Tagalog --tasks 400 -e "siamese@runs/finetune/omniglot-cnn-supcon-rot" \
  -c "omniglot2-cnn-supcon-rot" --no-progress --out "runs/eval/omniglot2-20way-cnn-supcon-rot" | head -2
echo "== omniglot cnn supcon + rotations + 2000 synthetic stroke characters, two seeds (2× the epochs), then both fused"
for seed in 0 1; do
  t $L finetune --data "omniglot:$DATA/omniglot/images_background_small1" --mode cnn --loss supcon --rotate-classes \
    --synthetic-classes 2000 --steps-per-epoch 34 --epochs $((2 * EPOCHS)) --patience 15 --seed "$seed" --no-progress \
    --out "runs/finetune/omniglot-cnn-supcon-syn-s$seed" | tail -3
  t $L eval oneshot --dataset "$DATA/omniglot/images_background_small2" --alphabet "Japanese_(katakana)" \
    --alphabet Sanskrit --alphabet Tagalog --tasks 400 -e "siamese@runs/finetune/omniglot-cnn-supcon-syn-s$seed" \
    -c "omniglot2-cnn-supcon-syn-s$seed" --no-progress --out "runs/eval/omniglot2-20way-cnn-supcon-syn-s$seed" | head -2
done
t $L eval oneshot --dataset "$DATA/omniglot/images_background_small2" --alphabet "Japanese_(katakana)" \
  --alphabet Sanskrit --alphabet Tagalog --tasks 400 \
  -e "siamese@runs/finetune/omniglot-cnn-supcon-syn-s0,siamese@runs/finetune/omniglot-cnn-supcon-syn-s1" \
  -c omniglot2-cnn-supcon-syn-ensemble --no-progress --out runs/eval/omniglot2-20way-cnn-supcon-syn-ensemble | head -2
echo "== tll dlib head (triplet)"
t $L finetune --data "tll:$DATA/tll" --mode head --backbone dlib --no-face center -c tll-dlib-center --loss triplet \
  --no-progress --out runs/finetune/tll-dlib-head-triplet | tail -3
t $L eval candidates --dataset "$DATA/tll" -e siamese@runs/finetune/tll-dlib-head-triplet --no-face center \
  -c tll-dlib-head-triplet --no-progress --out runs/eval/tll-val-dlib-head-triplet | head -2
echo "== lfw dlib head (triplet)"
t $L finetune --data "lfw:$DATA/lfw" --mode head --backbone dlib --no-face center -c lfw-dlib --loss triplet \
  --min-delta 0.003 --no-progress --out runs/finetune/lfw-dlib-head | tail -3
t $L eval pairs --dataset "$DATA/lfw" -e siamese@runs/finetune/lfw-dlib-head --no-face center -c lfw-dlib-head \
  --no-progress --out runs/eval/lfw-pairs-dlib-head | head -2
