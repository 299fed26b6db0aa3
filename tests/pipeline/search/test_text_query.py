"""Text-to-image search through CLIP's text tower, tested for its plumbing with random-init weights (`@none`; hub
weights cannot be downloaded here, so the rankings mean nothing, only that the right vectors are compared)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Iterator

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from fakes import write_noise_images
from PIL import Image
from stores import open_test_store

from pipeline.core.config import IngestConfig
from pipeline.core.conventions import vector_name
from pipeline.core.errors import EncoderVersionError, LookalikeError
from pipeline.encoders import Encoder, create_encoder
from pipeline.encoders.base import TextEncoder, as_text_encoder
from pipeline.encoders.clip import RANDOM_SEED, ClipEncoder
from pipeline.index.ingest import ingest_all
from pipeline.index.sources import list_source
from pipeline.search.query import QueryConfig, collection_vector, query_texts
from pipeline.store import VectorStore

ARCH = "ViT-S-32-alt"  # the smallest built-in open_clip config: builds in about a second on a CPU
CLIP = f"clip:{ARCH}@none"
PHASH = "phash:8"
TEXTS = ["a red car", "a dog on a beach", "a red car"]


@pytest.fixture(scope="module")
def clip() -> ClipEncoder:
    built = create_encoder(CLIP)
    assert isinstance(built, ClipEncoder)
    return built


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, clip: ClipEncoder) -> Iterator[VectorStore]:
    """Collection `mixed`: 6 images with a phash and a random-init CLIP vector each."""
    folder = tmp_path_factory.mktemp("text_query")
    write_noise_images(folder / "imgs", 6, size=(32, 32))
    opened = open_test_store("edge", folder / "store")
    config = IngestConfig("mixed", batch_size=8, workers=0, progress=False)
    ingest_all(list_source(folder / "imgs"), [create_encoder(PHASH), clip], opened, config, torch.device("cpu"))
    yield opened
    opened.close()


def _only(encoders: dict[str, Encoder]) -> Callable[[str], Encoder]:
    """An encoder factory that builds only these (by spec) and fails the test for any other."""

    def make(spec: str) -> Encoder:
        if spec not in encoders:
            pytest.fail(f"built {spec}")
        return encoders[spec]

    return make


def test_text_query_scores_equal_a_dot_product_with_the_stored_clip_vectors(
    store: VectorStore, clip: ClipEncoder
) -> None:
    spec, _ = collection_vector(store, "mixed", CLIP)
    assert spec.name == vector_name(CLIP)
    results = query_texts(TEXTS, store, QueryConfig("mixed", k=4), CLIP, _only({CLIP: clip}))
    ids = [pid for pid, _, _ in store.scroll("mixed")]
    stored = store.get_vectors("mixed", ids, spec.name)
    matrix = np.stack([stored[pid] for pid in ids])  # (6, 256)
    for text, result in zip(TEXTS, results, strict=True):
        expected = matrix @ clip.encode_text([text])[0]  # (6,)
        order = np.argsort(-expected)[:4]
        assert result.query == text and not result.error and len(result.hits) == 4
        assert [h.point_id for h in result.hits] == [ids[i] for i in order]
        np.testing.assert_allclose([h.score for h in result.hits], expected[order], atol=1e-5)
        assert all(h.path.endswith(".png") for h in result.hits)


def test_encode_text_is_the_text_tower_of_the_same_model(clip: ClipEncoder) -> None:
    """Oracle: the open_clip model built directly (same seed) embeds texts and images as the encoder does."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        model = open_clip.create_model(ARCH, pretrained=None, device="cpu").eval()
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8))
    with torch.inference_mode():
        text = F.normalize(model.encode_text(open_clip.get_tokenizer(ARCH)(TEXTS)), dim=-1).numpy()
        pixels = F.normalize(model.encode_image(clip.prepare(image)[None]), dim=-1).numpy()
    got = clip.encode_text(TEXTS)
    assert got.shape == (3, 256) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, text, atol=1e-5)
    np.testing.assert_allclose(clip.encode([clip.prepare(image)]).vectors, pixels, atol=1e-5)
    assert clip.encode_text([]).shape == (0, 256)


def test_text_tower_is_built_on_demand_and_never_pickled(clip: ClipEncoder) -> None:
    fresh = create_encoder(CLIP)
    assert isinstance(fresh, TextEncoder) and fresh._text is None  # type: ignore[attr-defined]  # not at build time
    clip.encode_text(["warm"])
    assert pickle.loads(pickle.dumps(clip))._text is None  # DataLoader workers get the transform only


def test_encoders_without_a_text_tower_are_one_line(store: VectorStore) -> None:
    message = r"encoder phash:8 has no text tower; text search needs a CLIP collection \(clip:…"
    with pytest.raises(LookalikeError, match=message):
        query_texts(["a car"], store, QueryConfig("mixed"), PHASH, lambda spec: create_encoder(spec))
    with pytest.raises(LookalikeError, match="no text tower"):
        as_text_encoder(object())


def test_refusals_and_per_query_errors(store: VectorStore, clip: ClipEncoder) -> None:
    with pytest.raises(LookalikeError, match="text queries search one encoder's vectors"):
        query_texts(["a car"], store, QueryConfig("mixed"), f"{CLIP},{PHASH}", _only({}))
    with pytest.raises(LookalikeError, match="choose one encoder"):
        query_texts(["a car"], store, QueryConfig("mixed"), None, _only({}))
    retrained = copy.copy(clip)
    retrained.version = "clip:0"
    with pytest.raises(EncoderVersionError):
        query_texts(["a car"], store, QueryConfig("mixed"), CLIP, _only({CLIP: retrained}))
    blank, car = query_texts(["  ", "a car"], store, QueryConfig("mixed", k=2), CLIP, _only({CLIP: clip}))
    assert blank.error == "empty text query" and not blank.hits
    assert len(car.hits) == 2 and not car.error


def test_where_filter_applies_to_text_queries(store: VectorStore, clip: ClipEncoder) -> None:
    config = QueryConfig("mixed", k=10, where={"label": "class_1"})
    [result] = query_texts(["a car"], store, config, CLIP, _only({CLIP: clip}))
    assert len(result.hits) == 2 and {h.label for h in result.hits} == {"class_1"}
