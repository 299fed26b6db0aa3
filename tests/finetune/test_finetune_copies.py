"""`--data copies:SOURCE`: the image split, the copy views, the copy validation task and a short training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from finetune_fakes import write_photo_folder

from finetune.augment import COPY_AUGMENT, AugmentConfig, CharacterAugment
from finetune.config import CnnOptions, FinetuneConfig, LossConfig, TrainConfig
from finetune.copies import CopySettings, copy_plans, image_views, make_copy_set, working_image
from finetune.data import DataSpec, load_training_data
from finetune.errors import DataSpecError, FinetuneConfigError
from finetune.run import run_finetune
from finetune.validation import CopyValidation, copy_validation
from pipeline.core.images import load_rgb
from pipeline.core.transforms import TRANSFORM_NAMES
from pipeline.encoders import create_encoder

CPU = torch.device("cpu")
SETTINGS = CopySettings(size=12, channels=3, copies=3, seed=0, threads=2, progress=False)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    write_photo_folder(tmp_path / "photos", 20)
    return tmp_path / "photos"


def test_copies_spec_splits_every_image_once(photos: Path) -> None:
    spec = DataSpec.parse(f"copies:{photos}")
    assert spec.kind == "copies"
    data = load_training_data(spec, seed=1, val_fraction=0.25)
    assert isinstance(data.validation, CopyValidation) and data.validation.name == "copy_recall1"
    held = data.validation.originals
    assert len(held) == 5 and len(data.train.paths) == 15
    assert sorted((*data.train.paths, *held)) == sorted(str(p) for p in photos.iterdir())
    assert data.train.labels == data.train.paths  # each image is its own class
    assert load_training_data(spec, seed=1, val_fraction=0.25) == data  # seeded


def test_copies_spec_needs_four_images(tmp_path: Path) -> None:
    write_photo_folder(tmp_path / "few", 3)
    with pytest.raises(DataSpecError, match="3 images are too few"):
        load_training_data(DataSpec.parse(f"copies:{tmp_path / 'few'}"))


def test_copy_validation_is_recall_at_1_over_the_originals() -> None:
    task = copy_validation(["a", "b", "c"], seed=0)
    assert task.transforms == TRANSFORM_NAMES[:3]
    assert task.paths == ("a#original", "b#original", "c#original", "a#copy-crop", "b#copy-resize", "c#copy-jpeg")
    originals = np.eye(3, dtype=np.float32)
    assert task.evaluate(np.concatenate([originals, originals]), "cosine") == 1.0
    swapped = originals[[1, 0, 2]]  # the copies of a and b look like each other's original
    assert task.evaluate(np.concatenate([originals, swapped]), "cosine") == pytest.approx(1 / 3)
    assert task.evaluate(np.concatenate([originals, swapped]), "manhattan") == pytest.approx(1 / 3)
    assert task.subset([2, 0]).paths == ("c#original", "a#original", "c#copy-jpeg", "a#copy-crop")


def test_views_are_the_original_then_seeded_copies(photos: Path) -> None:
    image = load_rgb(photos / "img_000.png")
    assert working_image(image, 12).size == (24, 19) and working_image(image, 32) is image
    plan = [("flip", (0, 1)), ("crop", (0, 2))]
    views = image_views(image, plan, 12, 3)
    assert views.shape == (3, 3, 12, 12) and views.dtype == torch.uint8
    assert torch.equal(views[1], torch.flip(views[0], dims=(2,)))  # flip at the working size, then squashed
    assert torch.equal(image_views(image, plan, 12, 3), views)


def test_copy_set_has_1_plus_k_views_per_class_and_counts_undecodable(photos: Path) -> None:
    (photos / "broken.png").write_bytes(b"not an image")
    data = load_training_data(DataSpec.parse(f"copies:{photos}"), seed=0, val_fraction=0.25)
    views = make_copy_set(data, SETTINGS)
    assert views.undecodable == (str(photos / "broken.png"),)
    n_train = len(data.train.paths) - (str(photos / "broken.png") in data.train.paths)
    assert views.images.shape == (n_train * 4, 3, 12, 12)
    assert torch.equal(views.labels, torch.arange(n_train).repeat_interleave(4))
    n_val = len(views.validation.originals)
    assert n_val == len(data.validation.originals) - (str(photos / "broken.png") in data.validation.originals)
    assert views.val_images.shape == (2 * n_val, 3, 12, 12)


def test_copies_val_fraction_0_makes_copies_of_every_image_and_no_task(photos: Path) -> None:
    data = load_training_data(DataSpec.parse(f"copies:{photos}"), seed=0, val_fraction=0.0)
    views = make_copy_set(data, SETTINGS)
    assert data.validation.paths == () and len(data.train.paths) == len(list(photos.iterdir()))
    assert views.images.shape[0] == 4 * len(data.train.paths) and views.val_images.shape == (0, 3, 12, 12)


def test_fewer_copies_than_edits_still_train_every_edit() -> None:
    plans = copy_plans(10, 3, seed=0)
    assert all(len({name for name, _ in plan}) == 3 for plan in plans)  # K different edits per image
    assert {name for plan in plans for name, _ in plan} == set(TRANSFORM_NAMES)
    assert len({rng for plan in plans for _, rng in plan}) == 30  # every copy draws its own parameters


def test_flip_augment_mirrors_exactly() -> None:
    still = AugmentConfig(degrees=0, shear=0, scale=(1, 1), translate=0, elastic_alpha=0, flip_p=1.0)
    images = torch.rand(2, 3, 8, 8)
    assert torch.allclose(CharacterAugment(still, 8)(images), torch.flip(images, dims=(3,)), atol=1e-6)


def test_copies_run_trains_rgb_and_loads_as_an_encoder(photos: Path, tmp_path: Path) -> None:
    train = TrainConfig(epochs=3, batch_size=16, m_per_class=4, steps_per_epoch=5, progress=False)
    cnn = CnnOptions(input_size=16, width=4, blocks=(1, 1), embedding_dim=8, copies_per_image=3)
    config = FinetuneConfig(f"copies:{photos}", tmp_path / "out", "cnn", LossConfig("triplet"), train, cnn=cnn)
    result = run_finetune(config, CPU)
    assert result.metric_name == "copy_recall1" and result.train_classes == 16 and result.train_examples == 64
    history = json.loads((result.out / "history.json").read_text())
    assert history[-1]["loss"] < history[1]["loss"]
    saved = json.loads((result.out / "config.json").read_text())
    assert saved["channels"] == 3 and saved["training"]["options"]["copies_per_image"] == 3
    assert saved["training"]["options"]["augment"]["flip_p"] == COPY_AUGMENT.flip_p
    encoder = create_encoder(result.encoder_spec)
    images = [load_rgb(p) for p in sorted(photos.iterdir())[:3]]
    assert encoder.prepare(images[0]).shape == (3, 16, 16)
    batch = encoder.encode([encoder.prepare(im) for im in images])
    assert batch.vectors.shape == (3, 8) and batch.ok.all()


def test_kind_defaults_and_option_errors() -> None:
    copies, characters = CnnOptions().for_kind("copies"), CnnOptions().for_kind("omniglot")
    assert copies.channels == 3 and copies.augment == COPY_AUGMENT
    assert characters.channels == 1 and characters.augment == AugmentConfig()
    assert CnnOptions(channels=1, augment=None).for_kind("copies") == CnnOptions(channels=1, augment=None)
    with pytest.raises(FinetuneConfigError, match="copies per image 0"):
        CnnOptions(copies_per_image=0)
    with pytest.raises(FinetuneConfigError, match="channels 2"):
        CnnOptions(channels=2)
    with pytest.raises(FinetuneConfigError, match="use mode cnn"):
        FinetuneConfig("copies:/x", Path("out"), "head")
