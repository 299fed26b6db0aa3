"""Spec grammar, the registry and factory, and what every registered encoder promises (protocol, pickling)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.core.conventions import vector_name
from pipeline.core.errors import EncoderSpecError
from pipeline.encoders import Encoder, EncoderSpec, create_encoder, list_encoders
from pipeline.encoders.base import encoder_version, has_model, weights_digest

# One cheap, offline spec per family: random-init weights where a family needs a download.
OFFLINE_SPECS = ["clip:ViT-S-32-alt@none", "facenet@none", "dlib", "phash", "phash+mirror"]


@pytest.fixture(scope="module")
def encoders() -> dict[str, Encoder]:
    return {spec: create_encoder(spec) for spec in OFFLINE_SPECS}


def sample_image() -> Image.Image:
    """Smooth seeded RGB picture (no face: every encoder must still return an item for it)."""
    y, x = np.mgrid[0:120, 0:160] / 40.0
    pixels = np.stack([np.sin(x), np.cos(y), np.sin(x + y)], axis=-1)
    return Image.fromarray(((pixels + 1) * 127.5).astype(np.uint8))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clip", EncoderSpec("clip")),
        ("clip:ViT-B-32", EncoderSpec("clip", "ViT-B-32")),
        ("clip:ViT-B-32@laion2b_s34b_b79k", EncoderSpec("clip", "ViT-B-32", "laion2b_s34b_b79k")),
        ("clip@/models/open_clip_model.safetensors", EncoderSpec("clip", None, "/models/open_clip_model.safetensors")),
        ("facenet@/w/20180402-114759-vggface2.pt", EncoderSpec("facenet", None, "/w/20180402-114759-vggface2.pt")),
        ("phash:16", EncoderSpec("phash", "16")),
        ("dlib@cnn", EncoderSpec("dlib", None, "cnn")),
        ("phash:8+mirror", EncoderSpec("phash", "8", options=("mirror",))),
        ("phash+mirror", EncoderSpec("phash", options=("mirror",))),
        ("clip:ViT-B-32+a+b@w", EncoderSpec("clip", "ViT-B-32", "w", ("a", "b"))),  # grammar only; clip takes none
    ],
)
def test_spec_parse_and_round_trip(text: str, expected: EncoderSpec) -> None:
    parsed = EncoderSpec.parse(text)
    assert parsed == expected
    assert str(parsed) == text
    assert EncoderSpec.parse(str(parsed)) == parsed


def test_spec_parse_strips_whitespace() -> None:
    assert EncoderSpec.parse("  phash:8 \n") == EncoderSpec("phash", "8")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "CLIP",
        "clip:",
        "clip@",
        ":ViT-B-32",
        "1clip",
        "clip:a@",
        "cl ip",
        "phash+",
        "phash:+mirror",
        "phash+Mirror",
    ],
)
def test_malformed_specs_raise(text: str) -> None:
    with pytest.raises(EncoderSpecError, match="family"):
        EncoderSpec.parse(text)


def test_unknown_family_lists_known_ones() -> None:
    with pytest.raises(EncoderSpecError, match=r"unknown encoder 'resnet'.*clip.*dlib.*facenet.*phash"):
        create_encoder("resnet:50")


@pytest.mark.parametrize(
    "spec", ["phash:big", "dlib@bogus", "dlib:x", "facenet:x@none", "facenet@imagenet", "clip:NoSuchNet@none"]
)
def test_bad_family_specs_raise_spec_errors(spec: str) -> None:
    with pytest.raises(EncoderSpecError):
        create_encoder(spec)


@pytest.mark.parametrize("spec", ["dlib+mirror", "facenet+mirror@none", "clip:ViT-S-32-alt+mirror@none", "phash+flip"])
def test_options_a_family_does_not_declare_raise(spec: str) -> None:
    with pytest.raises(EncoderSpecError, match=r"bad option.*takes"):
        create_encoder(spec)


def test_list_encoders_has_the_four_families() -> None:
    infos = {info.family: info for info in list_encoders()}
    assert {"clip", "facenet", "dlib", "phash"} <= set(infos)
    for info in infos.values():
        assert EncoderSpec.parse(info.example).family == info.family
        assert info.summary and info.offline


@pytest.mark.parametrize("spec", OFFLINE_SPECS)
def test_encoder_follows_the_protocol(encoders: dict[str, Encoder], spec: str) -> None:
    encoder = encoders[spec]
    assert isinstance(encoder, Encoder)
    assert create_encoder(encoder.name).name == encoder.name  # the name is a canonical spec
    assert vector_name(encoder.name)
    family = EncoderSpec.parse(spec).family
    assert encoder_version(encoder) == encoder.version and encoder.version.startswith(f"{family}:")
    batch = encoder.encode([encoder.prepare(sample_image())])
    assert batch.vectors.shape == (1, encoder.dim) and batch.vectors.dtype == np.float32
    assert batch.ok.dtype == bool and len(batch.notes) == 1


@pytest.mark.parametrize("spec", OFFLINE_SPECS)
def test_prepare_works_after_pickling(encoders: dict[str, Encoder], spec: str) -> None:
    # DataLoader workers receive a pickled encoder (spawn start method) and call prepare() on it.
    encoder = encoders[spec]
    payload = pickle.dumps(encoder)
    assert len(payload) < 1_000_000, "models must not travel to workers"
    copy = pickle.loads(payload)
    image = sample_image()
    expected, got = encoder.encode([encoder.prepare(image)]), encoder.encode([copy.prepare(image)])
    np.testing.assert_array_equal(got.vectors, expected.vectors)
    assert got.ok.tolist() == expected.ok.tolist() and got.notes == expected.notes


def test_dlib_and_phash_declare_no_model_and_encode_after_pickling(encoders: dict[str, Encoder]) -> None:
    # A Ray ingest encodes a model-free encoder in its decode tasks, with the driver's pickled copy.
    assert [has_model(encoders[spec]) for spec in OFFLINE_SPECS] == [True, True, False, False, False]
    image = sample_image()
    for spec in ("dlib", "phash", "phash+mirror"):
        copy = pickle.loads(pickle.dumps(encoders[spec]))
        got, expected = copy.encode([copy.prepare(image)]), encoders[spec].encode([encoders[spec].prepare(image)])
        np.testing.assert_array_equal(got.vectors, expected.vectors)


def test_built_in_versions_are_the_hand_bumped_ones(encoders: dict[str, Encoder]) -> None:
    # Offline specs carry no local weights file, so the version is the behaviour version alone.
    versions = [encoders[spec].version for spec in OFFLINE_SPECS]
    assert versions == ["clip:1", "facenet:2", "dlib:2", "phash:1", "phash:1+mirror"]


def test_an_encoder_without_a_version_reads_as_unknown() -> None:
    class Plugin:  # e.g. registered by a third party before versions existed
        name, dim, distance = "plugin", 4, "cosine"

    assert encoder_version(Plugin()) == "unknown"


def test_weights_digest_follows_the_contents_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(b"first weights")
    first = weights_digest(path)
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 16 and weights_digest(path) == first
    path.write_bytes(b"other weights")  # retrained into the same path
    assert weights_digest(path) != first


def test_main_face_prefers_the_central_face_over_a_slightly_larger_corner_one() -> None:
    from pipeline.encoders.base import main_face_index

    corner = [0, 0, 60, 60]  # area 3600, centre (30, 30): offset² from (100, 100) = 9800
    centre = [75, 75, 125, 125]  # area 2500, at the centre
    assert main_face_index(np.array([corner, centre]), 200, 200) == 1
    assert main_face_index(np.array([[90, 90, 110, 110], centre]), 200, 200) == 1  # same offset: larger wins
    assert main_face_index(np.array([corner]), 200, 200) == 0
