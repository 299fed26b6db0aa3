"""A written CNN checkpoint, shared by the encoder and checkpoint tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from siamese_fakes import CNN, trained_model

from pipeline.encoders.siamese.checkpoint import write_checkpoint


@pytest.fixture
def cnn_checkpoint(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    model = trained_model(CNN)
    return write_checkpoint(tmp_path / "ckpt", CNN, model.state_dict()), model
