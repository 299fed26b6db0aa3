"""`siamese@DIR` and `siamese:local@DIR` as encoders: a verified checkpoint (`pipeline.encoders.siamese.checkpoint`)
that embeds images, or a head over its backbone's vectors; with `local`, the late-interaction multivector
(`pipeline.encoders.siamese.local`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pipeline.core.errors import CheckpointError, EncoderSpecError, LookalikeError, WeightsUnavailableError
from pipeline.core.records import UNKNOWN_VERSION, Distance, EncodedBatch
from pipeline.encoders.base import Encoder, EncoderOptions, EncoderSpec, encoder_version, is_multivector
from pipeline.encoders.siamese.checkpoint import checkpoint_model, load_checkpoint
from pipeline.encoders.siamese.local import cell_count, local_multivectors, local_problem
from pipeline.encoders.siamese.model import LOCAL_VERSION, VERSION, SiameseConfig, image_tensor, normalise_images
from pipeline.encoders.siamese.nets import SiameseNet

# The folders whose heads are being built in this context, outermost first. A head's backbone is built through the
# factory the registry passes in (spec, device, options), which cannot carry this chain; without it a config naming
# its own folder (or A → B → A) as backbone recursed until RecursionError.
_LOADING: ContextVar[tuple[Path, ...]] = ContextVar("siamese_heads_loading", default=())
MAX_HEAD_DEPTH = 8  # heads on heads on …: more is a forged chain, not a trained model


def check_backbone_chain(directory: Path) -> None:
    """Refuse a folder already being loaded further out (a backbone cycle), or a chain of heads over MAX_HEAD_DEPTH.

    Raises:
        CheckpointError: one line naming the outermost folder and the chain.
    """
    chain = _LOADING.get()
    if directory in chain:
        loop, what = chain[chain.index(directory) :], "comes back to a folder already being loaded"
    elif len(chain) >= MAX_HEAD_DEPTH:
        loop, what = chain, f"is more than {MAX_HEAD_DEPTH} heads deep"
    else:
        return
    shown = " -> ".join(f"siamese@{d}" for d in (*loop, directory))
    raise CheckpointError(
        f"siamese@{chain[0]}: its chain of backbones {what} ({shown}); a head's backbone must be another encoder"
    )


BackboneFactory = Callable[[str, torch.device, EncoderOptions], Encoder]  # the registry's `create_encoder`


def create_backbone(
    config: SiameseConfig, directory: Path, device: torch.device, options: EncoderOptions, make: BackboneFactory
) -> Encoder:
    """A head's backbone encoder, built by `make` (the registry's factory, passed in so that this package never
    imports the registry), checked to give the single (N, input_dim) vectors the head was built for.

    Raises:
        CheckpointError: the backbone spec names no usable encoder (the message names `directory` and the reason), a
            backbone cycle, or a backbone whose vectors do not fit the head.
    """
    spec, where = config.backbone or "", f"siamese@{directory}"
    token = _LOADING.set((*_LOADING.get(), directory))
    try:
        backbone = make(spec, device, options)
    except CheckpointError:
        raise  # names its own folder, or the cycle
    except LookalikeError as e:
        raise CheckpointError(f"{where}: its backbone {spec!r} cannot be used: {e}") from e
    finally:
        _LOADING.reset(token)
    if is_multivector(backbone) or backbone.dim != config.input_dim:
        shape = "multivectors" if is_multivector(backbone) else f"{backbone.dim}-d vectors"
        raise CheckpointError(
            f"{where}: its backbone {spec!r} gives {shape}, but the head takes {config.input_dim}-d vectors"
        )
    return backbone


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

    def __init__(
        self,
        directory: Path,
        device: torch.device,
        options: EncoderOptions,
        make_backbone: BackboneFactory,
        local: bool = False,
    ) -> None:
        self.directory = directory
        self.local = local
        self.name = f"siamese:local@{directory}" if local else f"siamese@{directory}"
        self._device = device
        self._options = options
        check_backbone_chain(directory)
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
            self._backbone = create_backbone(self.config, directory, device, options, make_backbone)
            self.version += f"+{encoder_version(self._backbone)}"  # a changed backbone changes the head's inputs
            check_backbone_version(self.config, encoder_version(self._backbone), directory)

    @classmethod
    def from_spec(
        cls, spec: EncoderSpec, device: torch.device, options: EncoderOptions, make_backbone: BackboneFactory
    ) -> SiameseEncoder:
        """Build from `siamese@DIR` or `siamese:local@DIR`; a head's backbone spec is built with `make_backbone`.

        Raises:
            EncoderSpecError: no folder was given, an architecture other than `local` was, or `local` was asked of
                a checkpoint that cannot give cell embeddings.
            WeightsUnavailableError: no such folder; CheckpointError (a subclass): the folder is not a valid,
                untampered checkpoint (see `load_checkpoint`), or a head whose backbone cannot be built or leads back
                to this folder.
        """
        if spec.arch not in (None, "local") or not spec.weights:
            raise EncoderSpecError(
                f"use siamese@DIR or siamese:local@DIR (a lookalike finetune output folder), not {str(spec)!r}"
            )
        try:
            directory = Path(spec.weights).expanduser().resolve()
            found = directory.is_dir()
        except (OSError, ValueError, RuntimeError) as e:  # a NUL byte, a symlink loop, a name too long
            raise WeightsUnavailableError(f"{str(spec)!r}: not a usable folder name ({e})") from e
        if not found:
            raise WeightsUnavailableError(f"{spec}: no such folder {directory}")
        return cls(directory, device, options, make_backbone, local=spec.arch == "local")

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
