"""`siamese@DIR` and `siamese:local@DIR` as encoders: exact round trips, pickling, versions, head mode over a
backbone, late interaction. (The checkpoint files themselves: test_siamese_checkpoint.py.)"""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import TinyEncoder
from PIL import Image
from siamese_fakes import CNN, noise_images, trained_model

from pipeline.core.errors import EncoderSpecError, WeightsUnavailableError
from pipeline.encoders import Encoder, create_encoder
from pipeline.encoders.base import EncoderOptions, EncoderSpec, is_multivector
from pipeline.encoders.registry import EncoderInfo, list_encoders, register_encoder
from pipeline.encoders.siamese.checkpoint import write_checkpoint
from pipeline.encoders.siamese.encoder import SiameseEncoder
from pipeline.encoders.siamese.local import cell_count
from pipeline.encoders.siamese.model import CONFIG_FILE, Crop, SiameseConfig, image_tensor, normalise_images
from pipeline.store.scoring import maxsim


def test_round_trip_gives_identical_embeddings(cnn_checkpoint: tuple[Path, torch.nn.Module]) -> None:
    directory, model = cnn_checkpoint
    encoder = create_encoder(f"siamese@{directory}")
    assert isinstance(encoder, Encoder)
    assert encoder.name == f"siamese@{directory.resolve()}" and encoder.dim == 16 and encoder.distance == "cosine"
    images = noise_images()
    batch = encoder.encode([encoder.prepare(im) for im in images])
    direct = torch.stack([image_tensor(im, 20, 1) for im in images])
    with torch.no_grad():
        expected = model(normalise_images(direct, CNN.mean, CNN.std)).numpy()
    np.testing.assert_array_equal(batch.vectors, expected)
    assert batch.vectors.dtype == np.float32 and batch.ok.all()
    assert create_encoder(encoder.name).name == encoder.name  # the name is a canonical spec


def test_pool_grid_keeps_the_layout_and_round_trips(tmp_path: Path) -> None:
    config = replace(CNN, pool_grid=2)
    model = trained_model(config)
    assert model.body.embed.in_features == 8 * 2 * 2  # last stage width (4 × 2) × a 2 × 2 grid
    write_checkpoint(tmp_path / "grid", config, model.state_dict())
    encoder = create_encoder(f"siamese@{tmp_path / 'grid'}")
    images = noise_images()
    direct = torch.stack([image_tensor(im, 20, 1) for im in images])
    with torch.no_grad():
        expected = model(normalise_images(direct, CNN.mean, CNN.std)).numpy()
    np.testing.assert_array_equal(encoder.encode([encoder.prepare(im) for im in images]).vectors, expected)
    with pytest.raises(ValueError, match="pool_grid"):
        replace(CNN, pool_grid=0)


def test_ink_cropping_checkpoints_crop_before_the_model(tmp_path: Path) -> None:
    config = replace(CNN, crop=Crop.INK)
    model = trained_model(config)
    write_checkpoint(tmp_path / "ink", config, model.state_dict())
    encoder = create_encoder(f"siamese@{tmp_path / 'ink'}")
    pixels = np.full((50, 50, 3), 250, dtype=np.uint8)
    pixels[30:45, 5:15] = 10  # the drawing fills a corner; cropped, it fills the input
    image = Image.fromarray(pixels)
    cropped = torch.stack([image_tensor(image.crop((2, 29, 19, 46)), 20, 1)])  # its square: 15 × 1.16 ≈ 17 px
    with torch.no_grad():
        expected = model(normalise_images(cropped, CNN.mean, CNN.std)).numpy()
    got = encoder.encode([encoder.prepare(image)]).vectors
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with torch.no_grad():
        uncropped = model(normalise_images(torch.stack([image_tensor(image, 20, 1)]), CNN.mean, CNN.std)).numpy()
    assert np.abs(got - uncropped).max() > 1e-2
    with pytest.raises(ValueError, match="crop 'box'"):
        replace(CNN, crop="box")  # type: ignore[arg-type]


def test_manhattan_models_declare_it(tmp_path: Path) -> None:
    config = replace(CNN, distance="manhattan")
    write_checkpoint(tmp_path / "bce", config, trained_model(config).state_dict())
    assert create_encoder(f"siamese@{tmp_path / 'bce'}").distance == "manhattan"


def test_unnormalised_models_give_raw_vectors_and_declare_euclid(tmp_path: Path) -> None:
    config = replace(CNN, normalize=False, distance="euclid")
    model = trained_model(config)
    directory = write_checkpoint(tmp_path / "free", config, model.state_dict())
    encoder = create_encoder(f"siamese@{directory}")
    assert encoder.distance == "euclid" and encoder.dim == CNN.embedding_dim
    images = noise_images()
    vectors = encoder.encode([encoder.prepare(im) for im in images]).vectors
    inputs = normalise_images(torch.stack([image_tensor(im, 20, 1) for im in images]), CNN.mean, CNN.std)
    with torch.no_grad():
        raw = model.body(inputs).numpy()
    scale = model.scale.numpy()  # the fake moved it off 1
    np.testing.assert_allclose(vectors, raw * scale, atol=1e-5)  # the body's output as it is: no normalisation
    assert np.abs(np.linalg.norm(vectors / scale, axis=1) - 1.0).min() > 0.05  # not on the unit sphere


@pytest.mark.parametrize("spec", ["siamese", "siamese:cnn@x"])
def test_spec_needs_a_folder(spec: str) -> None:
    with pytest.raises(EncoderSpecError, match="siamese@DIR"):
        create_encoder(spec)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="no such folder"):
        create_encoder(f"siamese@{tmp_path / 'nope'}")


def test_pickling_leaves_the_model_behind(cnn_checkpoint: tuple[Path, torch.nn.Module]) -> None:
    directory, _ = cnn_checkpoint
    encoder = create_encoder(f"siamese@{directory}")
    payload = pickle.dumps(encoder)
    assert b"conv1" not in payload  # no weights travel to DataLoader workers
    copy = pickle.loads(payload)
    image = noise_images(1)[0]
    torch.testing.assert_close(copy.prepare(image), encoder.prepare(image))
    np.testing.assert_array_equal(
        copy.encode([copy.prepare(image)]).vectors, encoder.encode([encoder.prepare(image)]).vectors
    )


def test_version_changes_when_a_checkpoint_is_retrained_in_place(cnn_checkpoint: tuple[Path, torch.nn.Module]) -> None:
    directory, _ = cnn_checkpoint
    sha = json.loads((directory / CONFIG_FILE).read_text())["weights_sha256"]
    first = create_encoder(f"siamese@{directory}")
    assert first.version == f"siamese:1@{sha[:16]}"
    assert create_encoder(f"siamese@{directory}").version == first.version  # same checkpoint, same version
    retrained = trained_model(CNN)
    torch.nn.init.normal_(retrained.body.embed.weight)  # type: ignore[arg-type]
    write_checkpoint(directory, CNN, retrained.state_dict())  # same folder, same name, new weights
    assert create_encoder(f"siamese@{directory}").version != first.version


def test_unpickled_copy_refuses_a_checkpoint_retrained_meanwhile(cnn_checkpoint: tuple[Path, torch.nn.Module]) -> None:
    directory, _ = cnn_checkpoint
    copy = pickle.loads(pickle.dumps(create_encoder(f"siamese@{directory}")))
    retrained = trained_model(CNN)
    torch.nn.init.normal_(retrained.body.embed.weight)  # type: ignore[arg-type]
    write_checkpoint(directory, CNN, retrained.state_dict())
    with pytest.raises(WeightsUnavailableError, match="changed while in use"):
        copy.encode([copy.prepare(noise_images(1)[0])])


def _tiny_factory(spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> TinyEncoder:
    return TinyEncoder(dark_below=0.2)


def _register_tinydark() -> None:
    if "tinydark" not in {info.family for info in list_encoders()}:
        register_encoder(
            EncoderInfo("tinydark", "tinydark", "test double: TinyEncoder(dark_below=0.2)", "yes"), _tiny_factory
        )


def test_head_mode_wraps_the_backbone_and_passes_missing_rows_through(tmp_path: Path) -> None:
    _register_tinydark()
    config = SiameseConfig("head", 192, backbone="tinydark", input_dim=192, hidden_dim=32)
    model = trained_model(config)
    torch.nn.init.normal_(model.body.mlp[-1].weight)  # type: ignore[index]
    directory = write_checkpoint(tmp_path / "head", config, model.state_dict())
    encoder = create_encoder(f"siamese@{directory}")
    assert isinstance(encoder, SiameseEncoder)
    assert encoder.version.endswith("+tiny:1")  # a head's space also depends on its backbone's version
    black = Image.new("RGB", (20, 20))  # "no face" for TinyEncoder(dark_below=…)
    images = [*noise_images(2), black]
    backbone = TinyEncoder(dark_below=0.2)
    base = backbone.encode([backbone.prepare(im) for im in images])
    batch = encoder.encode([encoder.prepare(im) for im in images])
    assert batch.ok.tolist() == base.ok.tolist() and batch.notes == base.notes
    with torch.no_grad():
        expected = model(torch.from_numpy(base.vectors[base.ok])).numpy()
    np.testing.assert_allclose(batch.vectors[batch.ok], expected, rtol=1e-6)
    assert not batch.vectors[~batch.ok].any()


def _hand_local_score(g: np.ndarray, cells: np.ndarray, a: int, b: int) -> float:
    """cos(global) + the mean over a's cells of the best cosine to one of b's cells, each floored at 0."""
    best = [max(0.0, max(float(c @ d) for d in cells[b])) for c in cells[a]]
    return max(0.0, float(g[a] @ g[b])) + sum(best) / len(best)


def test_local_multivectors_score_global_plus_best_cell_matches(
    cnn_checkpoint: tuple[Path, torch.nn.Module],
) -> None:
    directory, model = cnn_checkpoint
    encoder = create_encoder(f"siamese:local@{directory}")
    assert encoder.name == f"siamese:local@{directory.resolve()}" and is_multivector(encoder)
    assert encoder.distance == "dot" and encoder.dim == 2 * CNN.embedding_dim
    assert encoder.version != create_encoder(f"siamese@{directory}").version
    images = noise_images()
    batch = encoder.encode([encoder.prepare(im) for im in images])
    assert batch.vectors.shape == (3, 10 * 10 + 1, 32) == (3, cell_count(CNN) + 1, 32)  # 20 px → 10 × 10 cells
    inputs = normalise_images(torch.stack([image_tensor(im, 20, 1) for im in images]), CNN.mean, CNN.std)
    with torch.no_grad():
        g = torch.nn.functional.normalize(model.body(inputs), dim=1).numpy()
        raw_cells = model.body.cell_embeddings(inputs)
        np.testing.assert_allclose(raw_cells.mean(1).numpy(), model.body(inputs).numpy(), atol=1e-5)  # linear head
        cells = torch.nn.functional.normalize(raw_cells, dim=2).numpy()
    scores = maxsim(batch.vectors, batch.vectors)
    for a, b in [(0, 1), (1, 0), (0, 2), (2, 2)]:
        assert scores[a, b] == pytest.approx(_hand_local_score(g, cells, a, b), abs=1e-4)
    assert scores[0, 0] == pytest.approx(2.0, abs=1e-4)  # an image matches itself: 1 + 1


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        (replace(CNN, distance="manhattan"), "cosine model"),
        (replace(CNN, normalize=False, distance="euclid"), "not unnormalised"),
        (replace(CNN, pool_grid=2), "global pooling"),
        (
            SiameseConfig("head", 8, backbone="tinydark", input_dim=8, hidden_dim=8),
            "needs a CNN checkpoint",
        ),
    ],
)
def test_local_is_refused_where_cells_do_not_apply(tmp_path: Path, config: SiameseConfig, reason: str) -> None:
    _register_tinydark()
    write_checkpoint(tmp_path / "m", config, trained_model(config).state_dict())
    with pytest.raises(EncoderSpecError, match=reason) as caught:
        create_encoder(f"siamese:local@{tmp_path / 'm'}")
    assert "\n" not in str(caught.value)
    with pytest.raises(EncoderSpecError, match="siamese:local@DIR"):
        create_encoder(f"siamese:other@{tmp_path / 'm'}")


@pytest.mark.parametrize(("trained_on", "loads"), [("tiny:1", True), ("", True), ("unknown", True), ("tiny:0", False)])
def test_a_head_is_refused_when_its_backbone_changed_since_training(
    tmp_path: Path, trained_on: str, loads: bool
) -> None:
    _register_tinydark()  # TinyEncoder is version tiny:1
    config = SiameseConfig("head", 192, backbone="tinydark", backbone_version=trained_on, input_dim=192, hidden_dim=8)
    directory = write_checkpoint(tmp_path / "head", config, trained_model(config).state_dict())
    if loads:
        assert create_encoder(f"siamese@{directory}").version.endswith("+tiny:1")
        return
    with pytest.raises(WeightsUnavailableError, match=r"trained on tinydark version tiny:0.*now version tiny:1"):
        create_encoder(f"siamese@{directory}")
