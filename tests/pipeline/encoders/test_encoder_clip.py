"""CLIP encoder: random-init small architecture, spec validation, offline failures, local weights files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from pipeline.core.errors import EncoderSpecError, WeightsUnavailableError
from pipeline.encoders import create_encoder
from pipeline.encoders.base import weights_digest
from pipeline.encoders.clip import ClipEncoder, _local_preprocess

ARCH = "ViT-S-32-alt"  # smallest built-in open_clip config: builds in well under a second, 256-d
DIM = 256


def noise_image(seed: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def encoder() -> ClipEncoder:
    built = create_encoder(f"clip:{ARCH}@none")
    assert isinstance(built, ClipEncoder)
    return built


def test_name_dim_distance(encoder: ClipEncoder) -> None:
    assert (encoder.name, encoder.dim, encoder.distance) == (f"clip:{ARCH}@none", DIM, "cosine")


def test_prepare_gives_cpu_tensor_of_model_size(encoder: ClipEncoder) -> None:
    item = encoder.prepare(noise_image(0).convert("L"))  # greyscale input is converted to RGB
    assert item.shape == (3, 224, 224) and item.dtype == torch.float32 and item.device.type == "cpu"


def test_vectors_are_float32_unit_rows(encoder: ClipEncoder) -> None:
    batch = encoder.encode([encoder.prepare(noise_image(seed)) for seed in range(3)])
    assert batch.vectors.shape == (3, DIM) and batch.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch.vectors, axis=1), 1.0, atol=1e-5)
    assert batch.ok.all() and batch.notes == (None, None, None)


def test_same_input_same_vector_and_different_inputs_differ(encoder: ClipEncoder) -> None:
    a, b = encoder.prepare(noise_image(0)), encoder.prepare(noise_image(1))
    batch = encoder.encode([a, b, a])
    np.testing.assert_allclose(batch.vectors[0], batch.vectors[2], atol=1e-6)
    assert not np.allclose(batch.vectors[0], batch.vectors[1], atol=1e-3)


def test_random_init_is_reproducible_across_instances(encoder: ClipEncoder) -> None:
    # @none seeds its own init: an ingest and a later query in another process share one embedding space.
    torch.manual_seed(12345)  # the global RNG must not matter
    again = create_encoder(f"clip:{ARCH}@none")
    item = encoder.prepare(noise_image(0))
    np.testing.assert_allclose(again.encode([item]).vectors, encoder.encode([item]).vectors, atol=1e-6)


def test_empty_batch(encoder: ClipEncoder) -> None:
    batch = encoder.encode([])
    assert batch.vectors.shape == (0, DIM) and batch.ok.shape == (0,)


def test_unknown_tag_lists_the_valid_ones() -> None:
    with pytest.raises(EncoderSpecError, match="laion2b_s34b_b79k"):
        create_encoder("clip:ViT-B-32@not_a_tag")


def test_unknown_arch_names_some_valid_ones() -> None:
    with pytest.raises(EncoderSpecError, match="ViT-B-32"):
        create_encoder("clip:ViT-Q-99@none")


def test_arch_name_is_case_insensitive() -> None:
    assert create_encoder(f"clip:{ARCH.lower()}@none").name == f"clip:{ARCH}@none"


def test_failed_download_is_weights_unavailable_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def offline(*args: object, **kwargs: object) -> str:
        raise OSError("simulated: no network")

    monkeypatch.setattr(open_clip, "download_pretrained", offline)
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match=r"clip:ViT-B-32@/path/to/open_clip_model\.safetensors"):
        create_encoder("clip:ViT-B-32@laion2b_s34b_b79k")
    assert time.perf_counter() - start < 5


def test_default_spec_asks_for_laion_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, object]] = []

    def offline(cfg: dict[str, object], *args: object, **kwargs: object) -> str:
        asked.append(cfg)
        raise OSError("simulated: no network")

    monkeypatch.setattr(open_clip, "download_pretrained", offline)
    with pytest.raises(WeightsUnavailableError, match="ViT-B-32@laion2b_s34b_b79k"):
        create_encoder("clip")
    assert asked == [open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k")]


def test_missing_weights_file() -> None:
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        create_encoder(f"clip:{ARCH}@/no/such/open_clip_model.safetensors")


def test_corrupt_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match=r"broken\.pt"):
        create_encoder(f"clip:{ARCH}@{path}")


@pytest.mark.parametrize("file_name", ["weights.pt", "open_clip_model.safetensors"])
def test_local_weights_file_round_trip(tmp_path: Path, encoder: ClipEncoder, file_name: str) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model = open_clip.create_model(ARCH, pretrained_text=False).eval()
    path = tmp_path / file_name
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save(model.state_dict(), path)

    loaded = create_encoder(f"clip:{ARCH}@{path}")
    assert loaded.name == f"clip:{ARCH}@{path.resolve()}"
    assert loaded.version == f"clip:1@{weights_digest(path)}"  # a local file is identified by its contents
    image = noise_image(3)
    item = loaded.prepare(image)
    with torch.inference_mode():
        expected = F.normalize(model.encode_image(item[None]), dim=-1).numpy()  # oracle: the full open_clip model
    np.testing.assert_allclose(loaded.encode([item]).vectors, expected, atol=1e-5)
    assert not np.allclose(loaded.encode([item]).vectors, encoder.encode([item]).vectors, atol=1e-3)


def test_local_file_preprocessing_follows_the_arch_tags(tmp_path: Path) -> None:
    # open_clip alone would normalise a local SigLIP file with OpenAI mean/std.
    assert _local_preprocess("ViT-B-16-SigLIP", tmp_path / "w.pt")["mean"] == (0.5, 0.5, 0.5)
    assert _local_preprocess(ARCH, tmp_path / "w.pt") == {}  # no published tags: architecture defaults


def test_local_file_preprocessing_prefers_hub_config_next_to_it(tmp_path: Path) -> None:
    config = {"model_cfg": {}, "preprocess_cfg": {"mean": [0.1, 0.2, 0.3], "std": [1, 1, 1], "size": 999}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    found = _local_preprocess("ViT-B-32", tmp_path / "open_clip_model.safetensors")
    assert found["mean"] == [0.1, 0.2, 0.3] and "size" not in found
