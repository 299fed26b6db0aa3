"""`dedup --new`'s near tier on hand-made vectors: the within-new rule, and when auto searches the store exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.core.errors import LookalikeError
from pipeline.dedup.graph import DedupMethod, GraphOptions
from pipeline.dedup.new_near import choose_search, nearest_earlier

CPU = torch.device("cpu")


def test_within_new_flags_only_the_later_ranked_file_of_each_pair() -> None:
    # rows 0 and 1 are near each other and row 1 ranks before row 0 (more pixels); row 2 ranks first of all but is
    # near no row at the threshold; row 3 is far from all
    vectors = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.8, 0.6, 0], [0, 0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ranks = [(0, -100, 0, 0, "a"), (0, -200, 0, 0, "b"), (0, -300, 0, 0, "c"), (0, -50, 0, 0, "d")]
    found = nearest_earlier(vectors, ranks, "cosine", GraphOptions(k=2), 0.95, CPU)
    assert found[0] is not None and found[0][0] == 1 and found[0][1] == pytest.approx(0.99, abs=0.001)
    assert found[1:] == [None, None, None]
    assert nearest_earlier(vectors[:1], ranks[:1], "cosine", GraphOptions(), 0.5, CPU) == [None]


def test_auto_searches_the_store_exactly_while_it_is_cheap() -> None:
    auto, ann = GraphOptions(), GraphOptions(method=DedupMethod.ANN)
    assert choose_search(auto, 1_000, 100_000, 64) == DedupMethod.EXACT  # benchmarks/dedup_new.py: 2.9 s
    assert choose_search(auto, 1_000, 1_000_000, 512) == DedupMethod.ANN
    assert choose_search(ann, 1, 10, 8) == DedupMethod.ANN  # as asked
    with pytest.raises(LookalikeError, match=r"checking new images searches.*auto, exact or ann"):
        choose_search(GraphOptions(method=DedupMethod.IVF), 1, 10, 8)
