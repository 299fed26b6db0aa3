"""`run_finetune` end to end: CNN from images, a head over an injected backbone through Qdrant, TLL pairs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import TinyEncoder
from PIL import Image

from finetune.config import LossConfig, TrainConfig
from finetune.errors import FinetuneConfigError
from finetune.losses import LOCAL_LOSS_WEIGHT
from finetune.run import CnnOptions, FinetuneConfig, HeadOptions, parse_blocks, run_finetune
from pipeline.core.config import IngestConfig
from pipeline.core.images import load_rgb
from pipeline.encoders import create_encoder
from pipeline.encoders.siamese.checkpoint import load_model
from pipeline.encoders.siamese.encoder import SiameseEncoder
from pipeline.encoders.siamese.model import image_tensor
from pipeline.index.ingest import ingest
from pipeline.index.sources import list_source
from pipeline.store import VectorStore
from pipeline.store.scoring import maxsim

CPU = torch.device("cpu")
QUICK = TrainConfig(epochs=2, batch_size=8, m_per_class=2, steps_per_epoch=3, progress=False)
SMALL_CNN = CnnOptions(input_size=12, width=4, blocks=(1, 1), embedding_dim=8)


@pytest.mark.parametrize("loss", ["contrastive", "triplet", "bce"])
def test_cnn_run_writes_a_checkpoint_that_ingest_uses(
    class_folder: Path, tmp_path: Path, vector_store: VectorStore, loss: str
) -> None:
    out = tmp_path / "out"
    config = FinetuneConfig(f"folder:{class_folder}", out, "cnn", LossConfig(loss), QUICK, cnn=SMALL_CNN)  # type: ignore[arg-type]
    result = run_finetune(config, CPU)
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "curves.png", "history.json"}
    assert Image.open(out / "curves.png").size[0] > 100
    saved = json.loads((out / "config.json").read_text())
    assert saved["loss"] == loss and saved["metrics"][result.metric_name] == result.best_metric
    assert saved["distance"] == ("manhattan" if loss == "bce" else "cosine")
    assert len(json.loads((out / "history.json").read_text())) == result.epochs_run + 1
    encoder = create_encoder(result.encoder_spec)
    summary = ingest(
        list_source(class_folder), encoder, vector_store, IngestConfig("chars", workers=0, progress=False), CPU
    )
    assert summary.ingested == 30 and summary.failed == 0


def test_cnn_rotated_classes_quadruple_the_classes(class_folder: Path, tmp_path: Path) -> None:
    cnn = CnnOptions(input_size=12, width=4, blocks=(1,), embedding_dim=8, rotate_classes=True, augment=None)
    config = FinetuneConfig(f"folder:{class_folder}", tmp_path / "rot", "cnn", train=QUICK, cnn=cnn)
    result = run_finetune(config, CPU)
    assert result.train_classes == 4 * 4 and result.train_examples == 4 * 20


def test_head_run_caches_backbone_vectors_in_qdrant(
    class_folder: Path, tmp_path: Path, vector_store: VectorStore
) -> None:
    backbone = TinyEncoder()
    head = HeadOptions(hidden_dim=16, workers=0, report_dir=tmp_path / "reports")
    config = FinetuneConfig(f"folder:{class_folder}", tmp_path / "head", "head", train=QUICK, head=head)
    result = run_finetune(config, CPU, store=vector_store, backbone=backbone)
    assert backbone.embedded == 30 and vector_store.count("classes-tiny-thumb8") == 30
    again = TinyEncoder()
    run_finetune(config, CPU, store=vector_store, backbone=again)
    assert again.embedded == 0  # the collection is the cache: nothing is embedded twice

    encoder = create_encoder(result.encoder_spec)  # the backbone comes back through the registry ("tiny")
    assert isinstance(encoder, SiameseEncoder) and encoder.dim == TinyEncoder.dim
    assert encoder.config.backbone_version == TinyEncoder.version  # recorded, so a changed backbone is refused
    images = [load_rgb(p) for p in sorted(class_folder.rglob("*.png"))[:4]]
    raw = TinyEncoder().encode([TinyEncoder().prepare(im) for im in images]).vectors
    _, model = load_model(result.out, CPU)
    with torch.no_grad():
        expected = model(torch.from_numpy(raw)).numpy()
    np.testing.assert_allclose(encoder.encode([encoder.prepare(im) for im in images]).vectors, expected, rtol=1e-6)


def test_head_run_on_tll_pairs(tll_root: Path, tmp_path: Path, vector_store: VectorStore) -> None:
    head = HeadOptions(hidden_dim=16, workers=0, report_dir=tmp_path / "reports")
    config = FinetuneConfig(f"tll:{tll_root}", tmp_path / "tll-head", "head", LossConfig("triplet"), QUICK, head=head)
    result = run_finetune(config, CPU, store=vector_store, backbone=TinyEncoder())
    assert result.metric_name == "top2" and 0.0 <= result.baseline_metric <= 1.0
    assert vector_store.has_collection("tll-tiny-thumb8")


def test_head_mode_needs_a_store(class_folder: Path, tmp_path: Path) -> None:
    config = FinetuneConfig(f"folder:{class_folder}", tmp_path / "x", "head", train=QUICK)
    with pytest.raises(Exception, match="vector store"):
        run_finetune(config, CPU, backbone=TinyEncoder())


def test_bad_mode_and_blocks_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FinetuneConfigError, match="mode 'mlp'"):
        FinetuneConfig("folder:x", tmp_path, "mlp")  # type: ignore[arg-type]
    with pytest.raises(FinetuneConfigError, match="blocks per stage '1,x'"):
        parse_blocks("1,x")
    assert parse_blocks("2,2,1") == (2, 2, 1)


def test_cnn_synthetic_classes_are_added_after_the_real_ones(class_folder: Path, tmp_path: Path) -> None:
    cnn = CnnOptions(input_size=12, width=4, blocks=(1,), embedding_dim=8, synthetic_classes=5, augment=None)
    config = FinetuneConfig(f"folder:{class_folder}", tmp_path / "syn", "cnn", train=QUICK, cnn=cnn)
    result = run_finetune(config, CPU)
    assert result.train_classes == 4 + 5 and result.train_examples == 4 * 5 + 5 * 20
    saved = json.loads((tmp_path / "syn" / "config.json").read_text())
    assert saved["training"]["options"]["synthetic_classes"] == 5
    real_only = replace(config, out=tmp_path / "real", cnn=replace(cnn, synthetic_classes=0))
    run_finetune(real_only, CPU)
    assert saved["mean"] == json.loads((tmp_path / "real" / "config.json").read_text())["mean"]  # real images only


def test_synthetic_classes_need_cnn_mode_and_labelled_data(tmp_path: Path) -> None:
    with pytest.raises(FinetuneConfigError, match="synthetic classes add drawn characters"):
        FinetuneConfig("copies:x", tmp_path, "cnn", cnn=CnnOptions(synthetic_classes=10))
    with pytest.raises(FinetuneConfigError, match="synthetic classes add drawn characters"):
        FinetuneConfig("folder:x", tmp_path, "head", cnn=CnnOptions(synthetic_classes=10))
    with pytest.raises(FinetuneConfigError, match="synthetic classes -1"):
        CnnOptions(synthetic_classes=-1)


def test_supcon_local_trains_the_cells_and_records_their_weight(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "late"
    config = FinetuneConfig(f"folder:{class_folder}", out, "cnn", LossConfig("supcon-local"), QUICK, cnn=SMALL_CNN)
    result = run_finetune(config, CPU)
    assert result.encoder_spec == f"siamese:local@{out.resolve()}"
    saved = json.loads((out / "config.json").read_text())
    assert saved["loss"] == "supcon-local" and saved["local_weight"] == LOCAL_LOSS_WEIGHT
    history = json.loads((out / "history.json").read_text())
    assert history[-1]["loss"] < history[1]["loss"]  # epoch 0 is the untrained baseline (no loss)
    encoder = create_encoder(result.encoder_spec)
    image = next(iter(sorted(class_folder.rglob("*.png"))))
    vectors = encoder.encode([encoder.prepare(load_rgb(str(image)))]).vectors
    assert maxsim(vectors, vectors)[0, 0] == pytest.approx(1.0 + LOCAL_LOSS_WEIGHT, abs=1e-4)  # itself: 1 + w × 1


@pytest.mark.parametrize(("mode", "grid"), [("head", 1), ("cnn", 2)])
def test_supcon_local_needs_a_globally_pooled_cnn(tmp_path: Path, mode: str, grid: int) -> None:
    with pytest.raises(FinetuneConfigError, match="supcon-local") as caught:
        FinetuneConfig(
            "folder:x",
            tmp_path,
            mode,
            LossConfig("supcon-local"),
            cnn=replace(SMALL_CNN, pool_grid=grid),  # type: ignore[arg-type]
        )
    assert "\n" not in str(caught.value)


def test_crop_ink_is_recorded_and_the_encoder_crops_alike(class_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "crop"
    cnn = replace(SMALL_CNN, crop="ink", augment=None)
    result = run_finetune(FinetuneConfig(f"folder:{class_folder}", out, "cnn", train=QUICK, cnn=cnn), CPU)
    assert json.loads((out / "config.json").read_text())["crop"] == "ink"
    pixels = np.full((40, 40, 3), 255, dtype=np.uint8)
    pixels[2:12, 25:38] = 0  # a stroke in a corner
    image = Image.fromarray(pixels)
    encoder = create_encoder(result.encoder_spec)
    prepared = encoder.prepare(image)
    assert torch.equal(prepared, image_tensor(image, 12, 1, "ink"))
    assert not torch.equal(prepared, image_tensor(image, 12, 1))


def test_crop_needs_labelled_cnn_data_and_a_known_name(tmp_path: Path) -> None:
    for data, mode in (("copies:x", "cnn"), ("folder:x", "head")):
        with pytest.raises(FinetuneConfigError, match="crop ink cuts drawings"):
            FinetuneConfig(data, tmp_path, mode, cnn=CnnOptions(crop="ink"))  # type: ignore[arg-type]
    with pytest.raises(FinetuneConfigError, match="crop ink with synthetic classes"):
        CnnOptions(crop="ink", synthetic_classes=10)
    with pytest.raises(FinetuneConfigError, match="crop box"):
        CnnOptions(crop="box")  # type: ignore[arg-type]


@pytest.mark.parametrize("loss", ["contrastive", "triplet"])
def test_a_free_plane_cnn_ingests_as_a_euclid_collection(
    class_folder: Path, tmp_path: Path, vector_store: VectorStore, loss: str
) -> None:
    out = tmp_path / "plane"
    plane = replace(SMALL_CNN, embedding_dim=2)
    config = FinetuneConfig(
        f"folder:{class_folder}",
        out,
        "cnn",
        LossConfig(loss, normalize=False),
        QUICK,
        cnn=plane,  # type: ignore[arg-type]
    )
    result = run_finetune(config, CPU)
    saved = json.loads((out / "config.json").read_text())
    assert (
        saved["normalize"] is False
        and saved["distance"] == "euclid"
        and saved["training"]["loss"]["normalize"] is False
    )
    encoder = create_encoder(result.encoder_spec)
    assert encoder.distance == "euclid" and encoder.dim == 2
    summary = ingest(
        list_source(class_folder), encoder, vector_store, IngestConfig("plane", workers=0, progress=False), CPU
    )
    assert summary.ingested == 30 and summary.failed == 0
    [spec] = vector_store.vector_specs("plane").values()
    assert spec.distance == "euclid" and spec.dim == 2
    images = sorted(class_folder.rglob("*.png"))
    vectors = encoder.encode([encoder.prepare(load_rgb(str(p))) for p in images]).vectors  # (30, 2), as stored
    assert np.abs(np.linalg.norm(vectors, axis=1) - 1.0).max() > 1e-3  # a plane, not the unit circle
    [hits] = vector_store.query("plane", spec, vectors[0], k=30, exact=True)
    expected = -np.sort(np.linalg.norm(vectors - vectors[0], axis=1))  # ranked by Euclidean distance, negated
    np.testing.assert_allclose([h.score for h in hits], expected, atol=1e-4)
