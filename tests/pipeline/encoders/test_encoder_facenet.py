"""facenet encoder: real MTCNN (weights ship in the wheel) + random-init recogniser, no-face policies, weights."""

from __future__ import annotations

import copy
import os
import pickle
import sys
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.core.errors import EncoderSpecError, LookalikeError, WeightsUnavailableError
from pipeline.encoders import EncoderOptions, create_encoder
from pipeline.encoders import facenet as facenet_module
from pipeline.encoders.base import weights_digest
from pipeline.encoders.facenet import CENTRE_FALLBACK, NO_FACE, FacenetEncoder, FacenetItem, load_recogniser

PROJECT_ROOT = Path(__file__).resolve().parents[3]
LFW_IMAGE_FOLDERS = ("lfw-deepfunneled", "lfw", "lfw-funneled")


@pytest.fixture(scope="module")
def face_photo() -> Image.Image:
    """One real LFW photo (250×250, one frontal face); skips when the shared benchmark copy is absent."""
    root = Path(os.environ.get("LOOKALIKE_LFW") or PROJECT_ROOT.parent / "shared" / "datasets" / "lfw")
    folder = next((root / name for name in LFW_IMAGE_FOLDERS if (root / name).is_dir()), root)
    photos = sorted(folder.glob("*/*.jpg"))[:1] if folder.is_dir() else []
    if not photos:
        pytest.skip(f"no LFW photos under {folder}; set LOOKALIKE_LFW to the LFW root to run face tests")
    return Image.open(photos[0]).convert("RGB")


def noise_image(seed: int = 0, size: tuple[int, int] = (250, 250)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def blank_image() -> Image.Image:
    return Image.new("RGB", (200, 150), (128, 128, 128))


@pytest.fixture(scope="module")
def skip_encoder() -> FacenetEncoder:
    built = create_encoder("facenet@none", options=EncoderOptions(no_face="skip"))
    assert isinstance(built, FacenetEncoder)
    return built


@pytest.fixture(scope="module")
def recogniser() -> torch.nn.Module:
    """The seeded random-init InceptionResnetV1 that `facenet@none` uses, built once for the hand-made encoders."""
    return load_recogniser("none")[1]


@pytest.fixture(scope="module")
def centre_encoder(recogniser: torch.nn.Module) -> FacenetEncoder:
    return FacenetEncoder("facenet@none", recogniser, torch.device("cpu"), EncoderOptions(no_face="center"))


def test_name_dim_distance(skip_encoder: FacenetEncoder) -> None:
    assert (skip_encoder.name, skip_encoder.dim, skip_encoder.distance) == ("facenet@none", 512, "cosine")


def test_face_photo_is_embedded(skip_encoder: FacenetEncoder, face_photo: Image.Image) -> None:
    item = skip_encoder.prepare(face_photo)
    assert item.face is not None and item.face.shape == (3, 160, 160) and item.note is None
    batch = skip_encoder.encode([item])
    assert batch.ok.tolist() == [True] and batch.notes == (None,)
    assert batch.vectors.shape == (1, 512) and batch.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("image", [noise_image(), blank_image()], ids=["noise", "blank"])
def test_no_face_skip_policy(skip_encoder: FacenetEncoder, image: Image.Image) -> None:
    batch = skip_encoder.encode([skip_encoder.prepare(image)])
    assert batch.ok.tolist() == [False] and batch.notes == (NO_FACE,)
    assert not batch.vectors.any()


@pytest.mark.parametrize("image", [noise_image(), blank_image()], ids=["noise", "blank"])
def test_no_face_centre_policy(centre_encoder: FacenetEncoder, image: Image.Image) -> None:
    batch = centre_encoder.encode([centre_encoder.prepare(image)])
    assert batch.ok.tolist() == [True] and batch.notes == (CENTRE_FALLBACK,)
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-5)


def test_mixed_batch_keeps_order(skip_encoder: FacenetEncoder, face_photo: Image.Image) -> None:
    items = [skip_encoder.prepare(image) for image in (noise_image(), face_photo, blank_image(), face_photo)]
    batch = skip_encoder.encode(items)
    assert batch.ok.tolist() == [False, True, False, True]
    np.testing.assert_allclose(batch.vectors[1], batch.vectors[3], atol=1e-6)


def test_detection_in_encode_matches_detection_in_prepare(
    skip_encoder: FacenetEncoder, recogniser: torch.nn.Module, face_photo: Image.Image
) -> None:
    # The CUDA code path (MTCNN batched in encode, grouped by image size), exercised on the CPU.
    batched = FacenetEncoder(
        "facenet@none", recogniser, torch.device("cpu"), EncoderOptions(no_face="skip"), detect_in_prepare=False
    )
    images = [face_photo, noise_image(size=(300, 200)), face_photo.resize((320, 240)), face_photo]
    pending = [batched.prepare(image) for image in images]
    assert all(item.face is None and item.image is not None for item in pending)
    got = batched.encode(pending)
    expected = skip_encoder.encode([skip_encoder.prepare(image) for image in images])
    assert got.ok.tolist() == expected.ok.tolist() == [True, False, True, True]
    assert got.notes == expected.notes
    np.testing.assert_allclose(got.vectors, expected.vectors, atol=1e-5)


def test_large_images_are_shrunk_before_detection(skip_encoder: FacenetEncoder, face_photo: Image.Image) -> None:
    item = skip_encoder.prepare(face_photo.resize((2000, 2000)))
    assert item.face is not None


def test_unpickled_copy_only_prepares(skip_encoder: FacenetEncoder) -> None:
    clone = pickle.loads(pickle.dumps(skip_encoder))
    assert isinstance(clone.prepare(blank_image()), FacenetItem)
    with pytest.raises(RuntimeError, match="prepare"):
        clone.encode([])


def test_failed_download_is_weights_unavailable_and_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached copy

    def offline(url: str, destination: Path) -> None:
        raise urllib.error.URLError("simulated: no network")

    monkeypatch.setattr(facenet_module, "download_file", offline)
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match=r"facenet@/path/to/20180402-114759-vggface2\.pt"):
        create_encoder("facenet")
    assert time.perf_counter() - start < 5


def test_cached_download_is_used_without_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, recogniser: torch.nn.Module
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = dict(recogniser.state_dict())
    state["logits.weight"] = torch.zeros(3, 512)  # the released files carry the training classifier
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / "20180408-102900-casia-webface.pt")

    def no_network(url: str, destination: Path) -> None:
        raise AssertionError("must not download a cached file")

    monkeypatch.setattr(facenet_module, "download_file", no_network)
    assert create_encoder("facenet@casia_webface").name == "facenet@casia-webface"


def test_local_weights_file_round_trip(tmp_path: Path, recogniser: torch.nn.Module) -> None:
    state = recogniser.state_dict()
    state["last_linear.weight"] = -state["last_linear.weight"]  # weights that differ from the seeded random init
    model = copy.deepcopy(recogniser)
    model.load_state_dict(state)
    path = tmp_path / "recogniser.pt"
    torch.save(state, path)
    loaded = create_encoder(f"facenet@{path}")
    assert loaded.name == f"facenet@{path.resolve()}"
    assert loaded.version == f"facenet:2@{weights_digest(path)}"  # a local file is identified by its contents
    face = torch.randn(3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected, original = model(face[None]).numpy(), recogniser(face[None]).numpy()
    got = loaded.encode([FacenetItem(face=face)]).vectors
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, original, atol=1e-3)


def test_bad_weights(tmp_path: Path) -> None:
    with pytest.raises(EncoderSpecError, match="vggface2"):
        create_encoder("facenet@imagenet")
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        create_encoder("facenet@/no/such/weights.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"nope")
    with pytest.raises(WeightsUnavailableError, match="InceptionResnetV1"):
        create_encoder(f"facenet@{broken}")
    with pytest.raises(EncoderSpecError, match="no architecture"):
        create_encoder("facenet:big@none")


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # makes `import facenet_pytorch` fail
    with pytest.raises(LookalikeError, match=r"lookalike\[face\]"):
        create_encoder("facenet@none")
