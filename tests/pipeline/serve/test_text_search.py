"""Text-to-image search in serve: the plumbing, with a toy CLIP-like encoder whose text tower maps colour words to
colour axes (real CLIP weights are not here: `clip:…@none` is random-init, so only the plumbing can be tested)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")

from conftest import COLLECTION
from fastapi.testclient import TestClient
from PIL import Image
from stores import open_test_store

from pipeline.core.records import EncodedBatch
from pipeline.encoders.base import l2_normalise
from pipeline.serve import ServeSettings, create_app
from pipeline.store import Point, VectorSpec, point_id_for

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


class ToyClip:
    """Mean RGB as a unit 3-d vector; `encode_text` maps a colour word to its axis."""

    name = "clip:toy"
    dim = 3
    distance = "cosine"
    version = "toy:1"

    def prepare(self, image: Image.Image) -> np.ndarray:
        return np.asarray(image, dtype=np.float32).reshape(-1, 3).mean(axis=0) / 255.0

    def encode(self, items: Sequence[np.ndarray]) -> EncodedBatch:
        vectors = l2_normalise(np.stack(list(items)).astype(np.float32))
        return EncodedBatch(vectors, np.ones(len(items), dtype=bool), (None,) * len(items))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        axes = {"red": 0, "green": 1, "blue": 2}
        return np.stack([np.eye(3, dtype=np.float32)[axes[t.split()[-1]]] for t in texts])


@pytest.fixture
def colours(tmp_path: Path) -> Any:
    store = open_test_store("edge", tmp_path / "store")
    spec = VectorSpec("clip-toy", 3, "cosine")
    store.ensure_collection("colours", [spec], {"clip-toy": "clip:toy"}, {"clip-toy": "toy:1"})
    points = []
    for name, rgb in COLOURS.items():
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (32, 32), rgb).save(path)
        vector = ToyClip().encode([ToyClip().prepare(Image.open(path).convert("RGB"))]).vectors[0]
        points.append(Point(point_id_for(name * 8), {"clip-toy": vector}, {"path": str(path), "label": name}))
    store.upsert("colours", points)
    yield TestClient(create_app(ServeSettings(runs=tmp_path / "runs"), store, lambda spec: ToyClip()))
    store.close()


def test_a_text_finds_the_image_it_describes(colours: TestClient) -> None:
    for word in COLOURS:
        body = colours.get("/api/search/text", params={"collection": "colours", "q": f"something {word}"}).json()
        assert body["query"]["kind"] == "text" and body["hits"][0]["label"] == word
        assert Path(body["hits"][0]["path"]).name == f"{word}.png"
    page = colours.get("/", params={"collection": "colours", "text": "a blue"})
    assert page.status_code == 200 and 'id="text"' in page.text and "a blue" in page.text
    assert page.text.index("blue.png") < page.text.index("red.png")
    assert colours.get("/api/search/text", params={"collection": "colours", "q": "  "}).status_code == 422


def test_an_encoder_without_a_text_tower_says_so(client: Any) -> None:
    response = client.get("/api/search/text", params={"collection": COLLECTION, "q": "a red car"})
    assert response.status_code == 422 and "no text tower" in response.json()["error"]
    assert 'id="text"' not in client.get("/").text  # no text box for a phash collection
