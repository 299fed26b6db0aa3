"""Query-side vs symmetric cell matching for `siamese:local@DIR`, on the Omniglot development split (issue 4).

The encoder scores cos(global) + w × (mean over the query's cells of its best cell cosine in the candidate), which
is what Qdrant's MaxSim computes; `--loss supcon-local` trains on the symmetrised form (the mean of both
directions). For checkpoints runs/omniglot-dev/NAME (from `omniglot_synthetic_dev.py`), this scores the 2,000
within-Balinese tasks both ways and candidate-side only, for w = 2, 3, 4. Never the test alphabets.

    .venv/bin/python benchmarks/omniglot_symmetric_dev.py local base
"""

from __future__ import annotations

import argparse

from omniglot_dev import OUT
from omniglot_local_weight_dev import dev_task_scores

WEIGHTS = (2.0, 3.0, 4.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="+")
    for name in p.parse_args().names:
        s = dev_task_scores(OUT / name)
        for w in WEIGHTS:
            query_side = s.top1(s.global_ + w * s.query_side)
            symmetric = s.top1(s.global_ + w * (s.query_side + s.candidate_side) / 2)
            candidate_side = s.top1(s.global_ + w * s.candidate_side)
            shown = f"query-side {query_side:.4f} · symmetric {symmetric:.4f} · candidate-side {candidate_side:.4f}"
            print(f"{name} w={w:g}: {shown}", flush=True)


if __name__ == "__main__":
    main()
