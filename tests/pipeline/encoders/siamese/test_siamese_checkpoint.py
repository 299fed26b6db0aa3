"""The `siamese@DIR` checkpoint format, both sides: what `write_checkpoint` puts in the folder, exact round trips
through `load_checkpoint`, and tampered, foreign or incomplete checkpoints refused on load."""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as save_safetensors
from siamese_fakes import CNN, noise_images, trained_model

from pipeline.core.errors import CheckpointError, WeightsUnavailableError
from pipeline.encoders import create_encoder
from pipeline.encoders.siamese.checkpoint import canonical_config_hash, load_checkpoint, write_checkpoint
from pipeline.encoders.siamese.model import (
    CONFIG_FILE,
    CONFIG_HASH_KEY,
    WEIGHTS_FILE,
    Crop,
    SiameseConfig,
    build_model,
)


def test_written_files_sign_each_other(tmp_path: Path) -> None:
    directory = write_checkpoint(tmp_path / "ckpt", CNN, trained_model(CNN).state_dict())
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]  # no .partial left behind
    data = json.loads((directory / CONFIG_FILE).read_text())
    assert data.pop("weights_sha256") == hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert data == CNN.to_dict() and data["format"] == "lookalike-siamese/1"
    with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as weights:
        assert weights.metadata() == {CONFIG_HASH_KEY: canonical_config_hash(data)}


def test_load_gives_back_what_was_written(tmp_path: Path) -> None:
    config = replace(CNN, crop=Crop.INK, metrics={"top1": 0.5}, training={"loss": {"name": "triplet"}})
    state = trained_model(config).state_dict()
    loaded = load_checkpoint(write_checkpoint(tmp_path / "ckpt", config, state))
    assert loaded.config == config and loaded.config.crop is Crop.INK  # the JSON string read back as the enum
    assert loaded.state.keys() == state.keys()
    for name, tensor in state.items():
        torch.testing.assert_close(loaded.state[name], tensor, rtol=0, atol=0)


def test_rewriting_a_folder_replaces_both_files(tmp_path: Path) -> None:
    first = load_checkpoint(write_checkpoint(tmp_path / "ckpt", CNN, trained_model(CNN).state_dict()))
    other = replace(CNN, width=8)
    second = load_checkpoint(write_checkpoint(tmp_path / "ckpt", other, build_model(other).state_dict()))
    assert second.config == other and second.weights_sha256 != first.weights_sha256


def test_a_refusal_is_a_checkpoint_error_naming_the_folder(tmp_path: Path) -> None:
    directory = write_checkpoint(tmp_path / "ckpt", CNN, trained_model(CNN).state_dict())
    (directory / CONFIG_FILE).unlink()
    with pytest.raises(CheckpointError, match=f"siamese@{directory.resolve()}: {CONFIG_FILE} is missing"):
        load_checkpoint(directory)


def test_modified_weights_are_refused(cnn_checkpoint: tuple[Path, torch.nn.Module]) -> None:
    directory, _ = cnn_checkpoint
    weights = directory / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsUnavailableError, match="sha256 does not match"):
        create_encoder(f"siamese@{directory}")


@pytest.mark.parametrize(("key", "value"), [("input_size", 24), ("mean", [0.5]), ("metrics", {"top1": 1.0})])
def test_edited_config_is_refused(cnn_checkpoint: tuple[Path, torch.nn.Module], key: str, value: object) -> None:
    directory, _ = cnn_checkpoint
    config = json.loads((directory / CONFIG_FILE).read_text())
    config[key] = value
    (directory / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(WeightsUnavailableError, match="edited after training"):
        create_encoder(f"siamese@{directory}")


def test_weights_from_another_run_are_refused(tmp_path: Path) -> None:
    first = write_checkpoint(tmp_path / "a", CNN, trained_model(CNN).state_dict())
    other = replace(CNN, width=8)
    second = write_checkpoint(tmp_path / "b", other, build_model(other).state_dict())
    (first / WEIGHTS_FILE).write_bytes((second / WEIGHTS_FILE).read_bytes())
    with pytest.raises(WeightsUnavailableError, match="sha256"):
        create_encoder(f"siamese@{first}")


def test_a_pickle_is_never_loaded(tmp_path: Path) -> None:
    directory = write_checkpoint(tmp_path / "ckpt", CNN, trained_model(CNN).state_dict())
    (directory / WEIGHTS_FILE).write_bytes(pickle.dumps({"not": "weights"}))
    with pytest.raises(WeightsUnavailableError):
        create_encoder(f"siamese@{directory}")


@pytest.mark.parametrize("missing", [CONFIG_FILE, WEIGHTS_FILE])
def test_incomplete_checkpoint_names_the_missing_file(
    cnn_checkpoint: tuple[Path, torch.nn.Module], missing: str
) -> None:
    directory, _ = cnn_checkpoint
    (directory / missing).unlink()
    with pytest.raises(WeightsUnavailableError, match=missing):
        create_encoder(f"siamese@{directory}")


FREE = replace(CNN, normalize=False, distance="euclid")  # a free Euclidean space: raw outputs, euclid distance


def test_an_unnormalised_config_round_trips(tmp_path: Path) -> None:
    directory = write_checkpoint(tmp_path / "free", FREE, trained_model(FREE).state_dict())
    assert json.loads((directory / CONFIG_FILE).read_text())["normalize"] is False
    loaded = load_checkpoint(directory)
    assert loaded.config == FREE and loaded.config.normalize is False and loaded.config.distance == "euclid"


def test_a_checkpoint_written_before_normalize_existed_loads_normalised(tmp_path: Path) -> None:
    # Write the files as the code before the field did: no "normalize" key, the weights signing that config.
    data = CNN.to_dict()
    del data["normalize"]
    model = trained_model(CNN)
    state = {name: t.contiguous() for name, t in model.state_dict().items()}
    blob = save_safetensors(state, metadata={CONFIG_HASH_KEY: canonical_config_hash(data)})
    directory = tmp_path / "old"
    directory.mkdir()
    (directory / WEIGHTS_FILE).write_bytes(blob)
    data["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    (directory / CONFIG_FILE).write_text(json.dumps(data))
    loaded = load_checkpoint(directory)
    assert loaded.config.normalize is True and loaded.config == CNN
    encoder = create_encoder(f"siamese@{directory}")
    assert encoder.distance == "cosine"
    vectors = encoder.encode([encoder.prepare(im) for im in noise_images()]).vectors
    unscaled = vectors / model.scale.numpy()  # the fake moved the per-dimension scale off 1
    np.testing.assert_allclose(np.linalg.norm(unscaled, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"normalize": False}, "distance 'cosine' with normalize False"),
        ({"distance": "euclid"}, "distance 'euclid' with normalize True"),
        ({"normalize": False, "distance": "manhattan"}, "distance 'manhattan' with normalize False"),
    ],
)
def test_normalize_off_goes_with_euclid_and_only_with_it(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(CNN, **changes)  # type: ignore[arg-type]


def test_a_normalize_that_is_not_a_boolean_is_refused() -> None:
    data = {**FREE.to_dict(), "normalize": 0}
    with pytest.raises(ValueError, match="normalize = 0 is not a boolean"):
        SiameseConfig.from_dict(data)
