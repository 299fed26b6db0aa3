"""Dedup's graph methods: names, options checked, and auto's choice by size."""

from __future__ import annotations

import pytest

from pipeline.core.errors import LookalikeError
from pipeline.dedup.graph import AUTO_ANN_MIN_POINTS, DedupMethod, GraphOptions, choose_method, parse_method


def test_method_names_and_auto_choice() -> None:
    assert [parse_method(n) for n in ("auto", "exact", "ivf", "ann", "blocked", "qdrant")] == [
        DedupMethod.AUTO,
        DedupMethod.EXACT,
        DedupMethod.IVF,
        DedupMethod.ANN,
        DedupMethod.EXACT,
        DedupMethod.ANN,
    ]
    with pytest.raises(LookalikeError, match="expected auto, exact, ivf or ann"):
        parse_method("hnsw")
    auto = GraphOptions()
    assert choose_method(auto, AUTO_ANN_MIN_POINTS - 1, 512) == DedupMethod.EXACT
    assert choose_method(auto, AUTO_ANN_MIN_POINTS, 512) == DedupMethod.IVF
    assert choose_method(auto, 2**21, 512) == DedupMethod.IVF  # 4 GiB of vectors: still in memory
    assert choose_method(auto, 2**21 + 1, 512) == DedupMethod.ANN
    assert choose_method(auto, 1000, 2**21) == DedupMethod.ANN  # 1000 × 2M floats: over 4 GiB
    exact = GraphOptions(method=DedupMethod.EXACT)
    assert choose_method(exact, 10**7, 512) == DedupMethod.EXACT


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"k": 0}, "k = 0"),
        ({"ef": 0}, "ef = 0"),
        ({"block_size": 0}, "block size 0"),
        ({"recall_sample": -1}, "-1"),
        ({"nprobe": 0}, "nprobe = 0"),
        ({"nlist": 0}, "nlist = 0"),
    ],
)
def test_graph_options_are_checked(given: dict[str, int], message: str) -> None:
    with pytest.raises(LookalikeError, match=message):
        GraphOptions(**given)  # type: ignore[arg-type]
