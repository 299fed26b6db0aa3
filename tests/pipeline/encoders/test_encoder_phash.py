"""phash encoder: bits, Hamming distance as Manhattan distance, near-duplicate robustness, spec grammar, and the
flip-invariant `+mirror` variant."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageOps

from pipeline.core.config import IngestConfig
from pipeline.core.conventions import vector_name
from pipeline.core.errors import EncoderSpecError, EncoderVersionError
from pipeline.encoders import EncoderOptions, EncoderSpec, create_encoder
from pipeline.encoders.phash import PHashEncoder
from pipeline.index.ingest import ingest
from pipeline.index.sources import list_source
from pipeline.search.query import QueryConfig, collection_vector, resolve_queries, run_queries
from pipeline.store import VectorStore
from pipeline.store.catalog import Catalog, check_version


def scene(seed: int, size: int = 256) -> Image.Image:
    """A smooth seeded picture (sinusoid background + ellipses); phash is meant for such images, not noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    pixels = np.zeros((size, size, 3))
    for channel in range(3):
        fx, fy, phase = rng.uniform(0.5, 3, 3)
        pixels[..., channel] = 0.5 + 0.5 * np.sin(2 * np.pi * (fx * x + fy * y) + 3 * phase)
    image = Image.fromarray((pixels * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = (int(v) for v in rng.integers(0, size - 56, 2))
        w, h = (int(v) for v in rng.integers(20, 80, 2))
        draw.ellipse([x0, y0, x0 + w, y0 + h], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def recompressed(image: Image.Image, size: int = 180, quality: int = 60) -> Image.Image:
    buffer = io.BytesIO()
    image.resize((size, size), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a - b).sum())  # Manhattan distance between 0/1 vectors


def test_default_spec_is_64_bits_manhattan() -> None:
    encoder = create_encoder("phash")
    assert (encoder.name, encoder.dim, encoder.distance, encoder.version) == ("phash:8", 64, "manhattan", "phash:1")
    assert create_encoder(encoder.name).name == encoder.name


def test_hash_size_sets_dim() -> None:
    encoder = create_encoder("phash:16")
    assert (encoder.name, encoder.dim) == ("phash:16", 256)
    assert encoder.prepare(scene(0)).shape == (256,)


def test_bits_are_float32_zero_one_and_always_ok() -> None:
    encoder = create_encoder("phash")
    batch = encoder.encode([encoder.prepare(scene(seed)) for seed in range(3)])
    assert batch.vectors.shape == (3, 64) and batch.vectors.dtype == np.float32
    assert set(np.unique(batch.vectors)) <= {0.0, 1.0}
    assert batch.ok.all() and batch.notes == (None, None, None)


def test_identical_images_give_identical_bits() -> None:
    encoder = create_encoder("phash")
    assert np.array_equal(encoder.prepare(scene(0)), encoder.prepare(scene(0).copy()))


def test_manhattan_distance_equals_imagehash_hamming() -> None:
    # Oracle: imagehash's own `h1 - h2` is the Hamming distance.
    encoder = create_encoder("phash")
    a, b = scene(0), scene(1)
    expected = imagehash.phash(a) - imagehash.phash(b)
    assert hamming(encoder.prepare(a), encoder.prepare(b)) == expected


def test_resized_recompressed_copy_is_near_and_other_images_far() -> None:
    encoder = create_encoder("phash")
    original = encoder.prepare(scene(0))
    assert hamming(original, encoder.prepare(recompressed(scene(0)))) <= 4
    assert min(hamming(original, encoder.prepare(scene(seed))) for seed in range(1, 6)) >= 16


def test_greyscale_and_rgba_inputs_are_accepted() -> None:
    encoder = create_encoder("phash")
    rgb = encoder.prepare(scene(0))
    assert hamming(rgb, encoder.prepare(scene(0).convert("L"))) <= 2
    assert hamming(rgb, encoder.prepare(scene(0).convert("RGBA"))) == 0


def test_empty_batch() -> None:
    batch = create_encoder("phash").encode([])
    assert batch.vectors.shape == (0, 64) and batch.ok.shape == (0,)


@pytest.mark.parametrize("spec", ["phash:x", "phash:1", "phash:33", "phash@weights", "phash:8@none"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(EncoderSpecError, match="phash"):
        create_encoder(spec)


def test_direct_construction_checks_range() -> None:
    with pytest.raises(EncoderSpecError, match="out of range"):
        PHashEncoder(0)


# --- phash+mirror: flip-invariant bits ---------------------------------------------------------------------------


def near_symmetric(seed: int, size: int = 256) -> Image.Image:
    """A scene made left-right symmetric, then one small off-centre mark: the orientation rests on a few pixels."""
    image = scene(seed, size)
    symmetric = Image.blend(image, ImageOps.mirror(image), 0.5)
    ImageDraw.Draw(symmetric).rectangle([30, 40, 36, 46], fill=(255, 255, 255))
    return symmetric


def balanced_columns(size: int = 256) -> Image.Image:
    """Top half bright on the left, bottom half bright on the right: every column sums alike, so the DCT
    coefficient that picks the orientation, (0, 1), is 0 up to rounding in both orientations."""
    ramp = np.linspace(0, 255, size)[None, :].repeat(size // 2, 0)
    return Image.fromarray(np.concatenate([ramp[:, ::-1], ramp]).astype(np.uint8)).convert("RGB")


MIRROR_CASES = {
    **{f"scene{seed}": (lambda seed=seed: scene(seed)) for seed in range(4)},
    "near-symmetric": lambda: near_symmetric(7),
    "near-symmetric-2": lambda: near_symmetric(8),
    "symmetric": lambda: Image.blend(scene(9), ImageOps.mirror(scene(9)), 0.5),
    "balanced-columns": balanced_columns,
    "wide-greyscale": lambda: scene(5).resize((300, 120)).convert("L"),
}


@pytest.mark.parametrize("hash_size", [8, 5, 16])
@pytest.mark.parametrize("case", sorted(MIRROR_CASES))
def test_mirror_bits_are_identical_for_an_image_and_its_mirror(case: str, hash_size: int) -> None:
    encoder = create_encoder(f"phash:{hash_size}+mirror")
    image = MIRROR_CASES[case]()
    bits = encoder.prepare(image)
    assert bits.shape == (hash_size * hash_size,) and bits.dtype == np.float32
    assert np.array_equal(bits, encoder.prepare(ImageOps.mirror(image)))  # bit-exact, not merely near


@pytest.mark.parametrize("case", ["scene0", "near-symmetric", "balanced-columns"])
def test_plain_phash_is_not_mirror_invariant(case: str) -> None:
    # The property above is not a given: plain phash's bits move when the image is mirrored.
    image = MIRROR_CASES[case]()
    encoder = create_encoder("phash")
    assert hamming(encoder.prepare(image), encoder.prepare(ImageOps.mirror(image))) >= 4


def test_mirror_bits_match_a_naive_oracle() -> None:
    # Oracle: imagehash's own thumbnail + scipy.fftpack DCT, then the rule spelled out coefficient by coefficient.
    import scipy.fftpack

    def naive(image: Image.Image) -> list[bool]:
        pixels = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
        c = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:8, :8]
        median = np.median([c[u, v] for u in range(8) for v in range(0, 8, 2)])
        return [bool(c[u, v] > (median if v % 2 == 0 else 0)) for u in range(8) for v in range(8)]

    encoder = create_encoder("phash+mirror")
    for image in (scene(0), ImageOps.mirror(scene(0)), scene(3)):
        candidates = [naive(image), naive(ImageOps.mirror(image))]
        thumb = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
        left_brighter = thumb[:, :16].sum() > thumb[:, 16:].sum()
        expected = candidates[0] if left_brighter else candidates[1]  # the brighter half goes on the left
        assert encoder.prepare(image).astype(bool).tolist() == expected


def test_mirror_keeps_near_duplicates_near_and_other_images_far() -> None:
    encoder = create_encoder("phash+mirror")
    original = encoder.prepare(scene(0))
    assert hamming(original, encoder.prepare(recompressed(scene(0)))) <= 4
    assert hamming(original, encoder.prepare(recompressed(ImageOps.mirror(scene(0))))) <= 4
    assert min(hamming(original, encoder.prepare(scene(seed))) for seed in range(1, 6)) >= 16


@pytest.mark.parametrize(
    ("spec", "name", "dim"),
    [
        ("phash+mirror", "phash:8+mirror", 64),
        ("phash:8+mirror", "phash:8+mirror", 64),
        ("phash:4+mirror", "phash:4+mirror", 16),
    ],
)
def test_mirror_spec_names_and_dims(spec: str, name: str, dim: int) -> None:
    encoder = create_encoder(spec)
    assert (encoder.name, encoder.dim, encoder.distance) == (name, dim, "manhattan")
    assert create_encoder(encoder.name).name == name  # the name is a canonical spec


def test_mirror_version_differs_so_a_plain_phash_collection_refuses_it() -> None:
    plain, mirror = create_encoder("phash:8"), create_encoder("phash:8+mirror")
    assert (plain.version, mirror.version) == ("phash:1", "phash:1+mirror")
    assert vector_name(plain.name) != vector_name(mirror.name)  # separate named vectors by default
    catalog = Catalog({"phash-8": plain.name}, {"phash-8": plain.version})
    check_version(catalog, "photos", "phash-8", plain.name, plain.version)  # same encoder: accepted
    with pytest.raises(EncoderVersionError, match=r"phash:1\+mirror"):
        check_version(catalog, "photos", "phash-8", mirror.name, mirror.version)


def test_plain_phash_is_unchanged_by_the_mirror_option() -> None:
    # Regression guard: adding +mirror must not move a single bit of existing phash collections.
    encoder = create_encoder("phash:8")
    for seed in range(3):
        expected = np.asarray(imagehash.phash(scene(seed)).hash, dtype=np.float32).reshape(-1)
        assert np.array_equal(encoder.prepare(scene(seed)), expected)
    assert not create_encoder("phash").mirror and create_encoder("phash").name == "phash:8"


@pytest.mark.parametrize("spec", ["phash+flip", "phash:8+mirror+mirror", "phash+mirror@none", "phash:x+mirror"])
def test_bad_mirror_specs(spec: str) -> None:
    with pytest.raises(EncoderSpecError, match="phash"):
        create_encoder(spec)


def test_direct_from_spec_refuses_unknown_options() -> None:
    # Callers that skip the registry (and its option check) still get a spec error.
    with pytest.raises(EncoderSpecError, match=r"\+mirror"):
        PHashEncoder.from_spec(EncoderSpec("phash", "8", options=("flip",)), torch.device("cpu"), EncoderOptions())


@pytest.mark.parametrize(("spec", "found"), [("phash:8+mirror", True), ("phash:8", False)])
def test_a_mirrored_copy_is_found_at_rank_one_only_with_mirror(
    spec: str, found: bool, vector_store: VectorStore, tmp_path: Path
) -> None:
    # End to end: files → ingest → Qdrant (Manhattan) → query by an image file that is not indexed.
    references = tmp_path / "references"
    references.mkdir()
    for seed in range(8):
        scene(seed).save(references / f"scene{seed}.png")
    query = tmp_path / "mirrored.jpg"
    ImageOps.mirror(scene(0)).save(query, quality=85)
    encoder = create_encoder(spec)
    config = IngestConfig("c", workers=0, report_path=tmp_path / "report.csv", progress=False)
    assert ingest(list_source(references), encoder, vector_store, config, torch.device("cpu")).ingested == 8
    vectors, _ = collection_vector(vector_store, "c", encoder.name)
    resolved = resolve_queries([str(query)], vector_store, "c", vectors, lambda: encoder)
    [result] = run_queries(resolved, vector_store, vectors, QueryConfig("c", k=8))
    scores = {Path(hit.path).name: hit.score for hit in result.hits}
    assert (result.hits[0].path.endswith("scene0.png")) is found
    if found:
        assert scores["scene0.png"] >= 0.9 and result.hits[1].score <= 0.8
    else:
        assert scores["scene0.png"] <= 0.8  # plain phash sees a mirrored copy as an unrelated image
