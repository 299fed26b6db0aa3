#!/usr/bin/env bash
# Late interaction (siamese:local@DIR) against the global embedding on the development split: 2,000 within-Balinese
# 20-way tasks, scored through `lookalike eval oneshot`, for checkpoints trained on small1 without Balinese by
# benchmarks/omniglot_synthetic_dev.py (runs/omniglot-dev/NAME). Never the test alphabets.
# Usage: bash benchmarks/omniglot_local_dev.sh [NAME…]   (default: base base-e40 syn2000-e40)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${LOOKALIKE_DATA:-../shared/datasets}"
STORE="runs/omniglot-dev/qdrant"  # its own embedded store, so it can run beside other commands
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || NAMES=(base base-e40 syn2000-e40)
for name in "${NAMES[@]}"; do
  for enc in siamese siamese:local; do
    tag="$([ "$enc" = siamese ] && echo global || echo local)-$name"
    .venv/bin/lookalike eval oneshot --dataset "$DATA/omniglot/images_background_small1" --alphabet Balinese \
      --tasks 2000 -e "$enc@runs/omniglot-dev/$name" -c "dev-$tag" --store "$STORE" \
      --no-progress --out "runs/omniglot-dev/eval-$tag" | sed -n 1p
  done
done
