#!/usr/bin/env bash
# Issue 4 measurements on ../shared/datasets (CPU): Omniglot CNN per loss, then dlib heads on TLL and LFW.
# Usage: bash benchmarks/finetune_offline.sh [EPOCHS]   (outputs: runs/finetune/*, runs/eval/*)
# With EPOCHS=30 the Omniglot part trains 25 CNNs, one after another: about 10 hours on 2 CPU cores.
set -euo pipefail
# Outputs are cut with `sed -n 1,2p`, not `head -2`: sed reads to the end, where head would close the pipe early
# and the CLI (click) would exit 1 on the broken pipe, ending the script under pipefail.
cd "$(dirname "$0")/.."
L=".venv/bin/lookalike"
DATA="${LOOKALIKE_DATA:-../shared/datasets}"
EPOCHS="${1:-30}"
t() { /usr/bin/time -f "   wall %e s" "$@"; }
SMALL1="omniglot:$DATA/omniglot/images_background_small1"
# train NAME [finetune options…]: a CNN on small1 → runs/finetune/omniglot-cnn-NAME
train() {
  local name="$1"; shift
  t $L finetune --data "$SMALL1" --mode cnn --no-progress --out "runs/finetune/omniglot-cnn-$name" "$@" | tail -3
}
# score NAME [NAME…]: 400 20-way tasks on the small2-only alphabets; several names are fused as an ensemble.
# ENC=siamese:local score NAME…: the same models as late-interaction encoders (global + cell matching)
# HUB=0.25 score NAME…: with the hubness correction (same collection, so nothing is embedded again)
score() {
  local enc="${ENC:-siamese}"
  local specs; specs="$(printf "$enc@runs/finetune/omniglot-cnn-%s," "$@" | sed 's/,$//')"
  local tag; tag="$(IFS=+; echo "$*")"; [ "$enc" = siamese ] || tag="${enc#siamese:}-$tag"
  local hub=(); local suffix=""; if [ -n "${HUB:-}" ]; then hub=(--hubness "$HUB"); suffix="-hub$HUB"; fi
  t $L eval oneshot --dataset "$DATA/omniglot/images_background_small2" --alphabet "Japanese_(katakana)" \
    --alphabet Sanskrit --alphabet Tagalog --tasks 400 -e "$specs" -c "omniglot2-cnn-$tag" "${hub[@]}" \
    --no-progress --out "runs/eval/omniglot2-20way-cnn-$tag$suffix" | sed -n 1,2p
}
for loss in contrastive triplet bce supcon; do
  echo "== omniglot cnn $loss ($EPOCHS epochs max)"
  train "$loss" --loss "$loss" --epochs "$EPOCHS" --patience 10
  score "$loss"
done
echo "== omniglot cnn supcon, each 90° rotation of a character a new class (same step budget ×2)"
train supcon-rot --loss supcon --rotate-classes --steps-per-epoch 34 --epochs "$EPOCHS" --patience 10
score supcon-rot
ROT=(--loss supcon --rotate-classes --steps-per-epoch 34 --patience 15)
echo "== the same for 2× the epochs, five seeds, then the first three and all five fused; one seed for 4× the epochs"
for seed in 0 1 2 3 4; do
  train "supcon-rot60-s$seed" "${ROT[@]}" --epochs $((2 * EPOCHS)) --seed "$seed"
  score "supcon-rot60-s$seed"
done
score supcon-rot60-s0 supcon-rot60-s1 supcon-rot60-s2
score supcon-rot60-s0 supcon-rot60-s1 supcon-rot60-s2 supcon-rot60-s3 supcon-rot60-s4
echo "== the same five models as late-interaction encoders (siamese:local@DIR): each, then three and five fused"
for seed in 0 1 2 3 4; do ENC=siamese:local score "supcon-rot60-s$seed"; done
ENC=siamese:local score supcon-rot60-s0 supcon-rot60-s1 supcon-rot60-s2
ENC=siamese:local score supcon-rot60-s0 supcon-rot60-s1 supcon-rot60-s2 supcon-rot60-s3 supcon-rot60-s4
echo "== supcon-local (supcon on global + cell-to-cell similarity), rotations, 2× the epochs, two seeds: each read as"
echo "   siamese:local@DIR and as siamese@DIR (global only), then both fused, then with the five supcon models above"
LATE=(--loss supcon-local --rotate-classes --steps-per-epoch 34 --patience 15 --epochs $((2 * EPOCHS)))
for seed in 0 1; do
  train "supcon-local-s$seed" "${LATE[@]}" --seed "$seed"
  ENC=siamese:local score "supcon-local-s$seed"
done
for seed in 0 1; do score "supcon-local-s$seed"; done
ENC=siamese:local score supcon-local-s0 supcon-local-s1
ENC=siamese:local score supcon-local-s0 supcon-local-s1 supcon-rot60-s0 supcon-rot60-s1 supcon-rot60-s2 \
  supcon-rot60-s3 supcon-rot60-s4
echo "== --crop ink (each image cut to a square around its strokes): supcon seed 0 (global and local), supcon-local"
echo "   seeds 0–4 (local and global), then fused: two, three and four seeds, with supcon + crop, and with the models above"
train supcon-crop-rot60-s0 "${ROT[@]}" --epochs $((2 * EPOCHS)) --crop ink
score supcon-crop-rot60-s0
ENC=siamese:local score supcon-crop-rot60-s0
for seed in 0 1 2 3 4; do
  train "supcon-local-crop-s$seed" "${LATE[@]}" --crop ink --seed "$seed"
  ENC=siamese:local score "supcon-local-crop-s$seed"
  score "supcon-local-crop-s$seed"
done
ENC=siamese:local score supcon-local-crop-s0 supcon-local-crop-s1
ENC=siamese:local score supcon-local-crop-s0 supcon-local-crop-s1 supcon-local-crop-s2
ENC=siamese:local score supcon-local-crop-s0 supcon-local-crop-s1 supcon-local-crop-s2 supcon-local-crop-s3
ENC=siamese:local score supcon-local-crop-s0 supcon-crop-rot60-s0
ENC=siamese:local score supcon-local-crop-s0 supcon-crop-rot60-s0 supcon-local-s0 \
  supcon-local-s1 supcon-rot60-s0 supcon-rot60-s1 supcon-rot60-s2 supcon-rot60-s3 supcon-rot60-s4
echo "== --hubness 0.25 (β chosen on the development split: benchmarks/omniglot_hubness_dev.py), the crop models again"
HUB=0.25 ENC=siamese:local score supcon-crop-rot60-s0
for seed in 0 1 2 3 4; do HUB=0.25 ENC=siamese:local score "supcon-local-crop-s$seed"; done
HUB=0.25 ENC=siamese:local score supcon-local-crop-s0 supcon-local-crop-s1
HUB=0.25 ENC=siamese:local score supcon-local-crop-s0 supcon-local-crop-s1 supcon-local-crop-s2
HUB=0.25 ENC=siamese:local score supcon-local-crop-s0 supcon-local-crop-s1 supcon-local-crop-s2 supcon-local-crop-s3
HUB=0.25 ENC=siamese:local score supcon-local-crop-s0 supcon-local-crop-s1 supcon-local-crop-s2 supcon-local-crop-s3 \
  supcon-local-crop-s4
echo "== supcon-local + crop with --val-fraction 0.1 (more training characters), seeds 0 and 1"
for seed in 0 1; do
  train "supcon-local-crop-v10-s$seed" "${LATE[@]}" --crop ink --val-fraction 0.1 --seed "$seed"
  ENC=siamese:local score "supcon-local-crop-v10-s$seed"
  score "supcon-local-crop-v10-s$seed"
  HUB=0.25 ENC=siamese:local score "supcon-local-crop-v10-s$seed"
done
echo "== refit: supcon-local + crop on all 136 small1 characters (--val-fraction 0: no validation, exactly 60 epochs,"
echo "   last weights kept), seeds 0 and 1, as siamese:local@: each, then fused, without and with --hubness 0.25"
for seed in 0 1; do
  train "supcon-local-crop-all-s$seed" "${LATE[@]}" --crop ink --val-fraction 0 --seed "$seed"
  ENC=siamese:local score "supcon-local-crop-all-s$seed"
  HUB=0.25 ENC=siamese:local score "supcon-local-crop-all-s$seed"
done
ENC=siamese:local score supcon-local-crop-all-s0 supcon-local-crop-all-s1
HUB=0.25 ENC=siamese:local score supcon-local-crop-all-s0 supcon-local-crop-all-s1
train supcon-rot120-s0 "${ROT[@]}" --epochs $((4 * EPOCHS))
score supcon-rot120-s0
echo "== + 2000 synthetic stroke characters, 2× the epochs, three seeds, then fused; and one seed at 40 px"
for seed in 0 1 2; do
  train "supcon-syn-s$seed" "${ROT[@]}" --synthetic-classes 2000 --epochs $((2 * EPOCHS)) --seed "$seed"
  score "supcon-syn-s$seed"
done
score supcon-syn-s0 supcon-syn-s1 supcon-syn-s2
train supcon-syn40-s0 "${ROT[@]}" --synthetic-classes 2000 --input-size 40 --epochs $((2 * EPOCHS))
score supcon-syn40-s0
echo "== tll dlib head (triplet)"
t $L finetune --data "tll:$DATA/tll" --mode head --backbone dlib --no-face center -c tll-dlib-center --loss triplet \
  --no-progress --out runs/finetune/tll-dlib-head-triplet | tail -3
t $L eval candidates --dataset "$DATA/tll" -e siamese@runs/finetune/tll-dlib-head-triplet --no-face center \
  -c tll-dlib-head-triplet --no-progress --out runs/eval/tll-val-dlib-head-triplet | sed -n 1,2p
echo "== tll with --hubness 0.25 (Omniglot's β, not tuned on TLL): frozen dlib, then the head"
t $L eval candidates --dataset "$DATA/tll" -e dlib --no-face center -c tll-dlib-center --hubness 0.25 --no-progress \
  --out runs/eval/tll-val-dlib-center-hub25 | sed -n 1,2p
t $L eval candidates --dataset "$DATA/tll" -e siamese@runs/finetune/tll-dlib-head-triplet --no-face center \
  -c tll-dlib-head-triplet --hubness 0.25 --no-progress --out runs/eval/tll-val-dlib-head-triplet-hub25 | sed -n 1,2p
echo "== lfw dlib head (triplet)"
t $L finetune --data "lfw:$DATA/lfw" --mode head --backbone dlib --no-face center -c lfw-dlib --loss triplet \
  --min-delta 0.003 --no-progress --out runs/finetune/lfw-dlib-head | tail -3
t $L eval pairs --dataset "$DATA/lfw" -e siamese@runs/finetune/lfw-dlib-head --no-face center -c lfw-dlib-head \
  --no-progress --out runs/eval/lfw-pairs-dlib-head | sed -n 1,2p
