"""`siamese@DIR` and `siamese:local@DIR` as encoders: a verified checkpoint (`pipeline.encoders.siamese`) that embeds
images, or a head over its backbone's vectors; with `local`, the late-interaction multivector
(`pipeline.encoders.siamese_local`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pipeline.encoders.base import Encoder, EncoderOptions, EncoderSpec, encoder_version
from pipeline.encoders.siamese import (
    LOCAL_VERSION,
    VERSION,
    SiameseConfig,
    checkpoint_model,
    image_tensor,
    load_checkpoint,
    normalise_images,
)
from pipeline.encoders.siamese_local import cell_count, local_multivectors, local_problem
from pipeline.encoders.siamese_nets import SiameseNet
from pipeline.errors import EncoderSpecError, WeightsUnavailableError
from pipeline.records import UNKNOWN_VERSION, Distance, EncodedBatch


def check_backbone_version(config: SiameseConfig, version: str, directory: Path) -> None:
    """Refuse a head whose backbone now embeds differently from when the head was trained.

    Raises:
        WeightsUnavailableError: both versions are known and differ.
    """
    trained = config.backbone_version
    if trained and trained != UNKNOWN_VERSION and version != UNKNOWN_VERSION and version != trained:
        raise WeightsUnavailableError(
            f"siamese@{directory}: the head was trained on {config.backbone} version {trained}, but that encoder is "
            f"now version {version} (its vectors changed); re-run lookalike finetune"
        )


class SiameseEncoder:
    """A trained Siamese model as an encoder: loaded and verified when built, left out when pickled into DataLoader
    workers (they only `prepare`), and loaded again should an unpickled copy `encode`.

    With `local` (spec `siamese:local@DIR`, CNN checkpoints only) each image is a multivector for late interaction:
    its global embedding plus one embedding per cell of the last feature map, scored as the global cosine plus the
    mean best cell-to-cell cosine (`local_multivectors`). Matching cells wherever they are tolerates strokes
    drawn a little elsewhere, and a cell that has no counterpart (a missing dot, a stroke at another angle) lowers
    the score even when the global embeddings agree.
    """

    def __init__(self, directory: Path, device: torch.device, options: EncoderOptions, local: bool = False) -> None:
        self.directory = directory
        self.local = local
        self.name = f"siamese:local@{directory}" if local else f"siamese@{directory}"
        self._device = device
        self._options = options
        checkpoint = load_checkpoint(directory)
        self.config = checkpoint.config
        if local and local_problem(self.config):
            raise EncoderSpecError(f"siamese:local@{directory}: {local_problem(self.config)}")
        self._weights_sha256 = checkpoint.weights_sha256
        self._model: SiameseNet | None = checkpoint_model(checkpoint, directory, device)
        self.dim = self.config.embedding_dim * (2 if local else 1)
        self.distance: Distance = "dot" if local else self.config.distance
        self.multivector = local
        self._backbone: Encoder | None = None
        # retrained into the same folder → new version
        self.version = f"{LOCAL_VERSION if local else VERSION}@{checkpoint.weights_sha256[:16]}"
        if self.config.architecture == "head":
            from pipeline.encoders.registry import create_encoder  # the registry imports this module lazily

            self._backbone = create_encoder(self.config.backbone or "", device, options)
            self.version += f"+{encoder_version(self._backbone)}"  # a changed backbone changes the head's inputs
            check_backbone_version(self.config, encoder_version(self._backbone), directory)

    @classmethod
    def from_spec(cls, spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> SiameseEncoder:
        """Build from `siamese@DIR` or `siamese:local@DIR`.

        Raises:
            EncoderSpecError: no folder was given, an architecture other than `local` was, or `local` was asked of
                a checkpoint that cannot give cell embeddings.
            WeightsUnavailableError: the folder is not a valid, untampered checkpoint.
        """
        if spec.arch not in (None, "local") or not spec.weights:
            raise EncoderSpecError(
                f"use siamese@DIR or siamese:local@DIR (a lookalike finetune output folder), not {str(spec)!r}"
            )
        directory = Path(spec.weights).expanduser().resolve()
        if not directory.is_dir():
            raise WeightsUnavailableError(f"{spec}: no such folder {directory}")
        return cls(directory, device, options, local=spec.arch == "local")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None  # workers only prepare; the main process keeps its model
        return state

    def prepare(self, image: Image.Image) -> Any:
        """The backbone's prepared item (head), or a (C, S, S) uint8 tensor (cnn)."""
        if self._backbone is not None:
            return self._backbone.prepare(image)
        return image_tensor(image, self.config.input_size, self.config.channels, self.config.crop)

    def encode(self, items: Sequence[Any]) -> EncodedBatch:
        """(N, D) float32, or (N, K + 1, D) multivectors when local; head mode passes the backbone's failed rows
        through as not ok (zeros)."""
        n = len(items)
        shape = (n, cell_count(self.config) + 1, self.dim) if self.local else (n, self.dim)
        vectors = np.zeros(shape, dtype=np.float32)
        if self._backbone is not None:
            base = self._backbone.encode(items)
            ok, notes = base.ok, base.notes
            inputs = torch.from_numpy(np.ascontiguousarray(base.vectors[ok], dtype=np.float32))
        else:
            ok, notes = np.ones(n, dtype=bool), (None,) * n
            batch = torch.stack(list(items)) if n else torch.zeros(0, self.config.channels, 1, 1, dtype=torch.uint8)
            inputs = normalise_images(batch, self.config.mean, self.config.std)
        if inputs.shape[0]:
            vectors[ok] = self._forward(inputs)
        return EncodedBatch(vectors=vectors, ok=ok, notes=tuple(notes))

    def _forward(self, inputs: torch.Tensor) -> np.ndarray:
        if self._model is None:
            checkpoint = load_checkpoint(self.directory)
            if checkpoint.weights_sha256 != self._weights_sha256:
                raise WeightsUnavailableError(
                    f"{self.directory} changed while in use (weights sha256 {checkpoint.weights_sha256[:16]}, "
                    f"expected {self._weights_sha256[:16]}); run again to use the new checkpoint"
                )
            self._model = checkpoint_model(checkpoint, self.directory, self._device)
        amp = self._options.amp and self._device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self._device.type, enabled=amp):
            batch = inputs.to(self._device, non_blocking=True)
            if not self.local:
                return self._model(batch).float().cpu().numpy()
            global_, cells = self._model.local_features(batch)
        return local_multivectors(global_.float().cpu().numpy(), cells.cpu().numpy(), self.config.local_weight)
