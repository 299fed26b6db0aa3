"""Name-keyed encoder registry and the one factory, `create_encoder`.

Factories import their heavy dependencies lazily, so listing encoders or using `phash` never
imports open_clip, facenet-pytorch or dlib.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.core.errors import EncoderSpecError
from pipeline.core.registry import Registry
from pipeline.encoders.base import Encoder, EncoderOptions, EncoderSpec

if TYPE_CHECKING:
    import torch

Factory = Callable[[EncoderSpec, "torch.device", EncoderOptions], Encoder]


@dataclass(frozen=True)
class EncoderInfo:
    """What `lookalike encoders` prints for one family."""

    family: str
    example: str
    summary: str
    offline: str
    options: tuple[str, ...] = ()  # the `+option` switches the family's specs accept (e.g. phash's `mirror`)


_REGISTRY: Registry[str, EncoderInfo, Factory] = Registry("encoder family")


def register_encoder(info: EncoderInfo, factory: Factory) -> None:
    """Add an encoder family; a second registration of the same family is a programming error."""
    _REGISTRY.register(info.family, info, factory)


def list_encoders() -> list[EncoderInfo]:
    """All registered encoder families, in registration order."""
    return _REGISTRY.infos()


def create_encoder(
    spec: str | EncoderSpec, device: torch.device | None = None, options: EncoderOptions | None = None
) -> Encoder:
    """Build an encoder from a spec string such as `dlib` or `clip:ViT-B-32@laion2b_s34b_b79k`.

    Raises:
        EncoderSpecError: unknown family, an option the family does not take, or a malformed spec.
        WeightsUnavailableError: the weights named by the spec cannot be had.
    """
    parsed = spec if isinstance(spec, EncoderSpec) else EncoderSpec.parse(spec)
    entry = _REGISTRY.get(parsed.family)
    if entry is None:
        known = ", ".join(sorted(_REGISTRY.names()))
        raise EncoderSpecError(f"unknown encoder {parsed.family!r} in spec {str(parsed)!r}; known: {known}")
    info, factory = entry
    _check_options(parsed, info)
    if device is None:
        import torch  # here, not at the top: a Ray worker unpickling a phash or dlib encoder never needs torch

        device = torch.device("cpu")
    return factory(parsed, device, options or EncoderOptions())


def _check_options(spec: EncoderSpec, info: EncoderInfo) -> None:
    """Refuse `+option`s the family does not declare, and repeated ones (each is a switch)."""
    unknown = [option for option in spec.options if option not in info.options]
    if unknown or len(set(spec.options)) < len(spec.options):
        takes = ", ".join(f"+{option}" for option in info.options) or "none"
        raise EncoderSpecError(
            f"bad option(s) in encoder spec {str(spec)!r}: {info.family} takes {takes}, each at most once"
        )


def _clip(spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> Encoder:
    from pipeline.encoders.clip import ClipEncoder

    return ClipEncoder.from_spec(spec, device, options)


def _facenet(spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> Encoder:
    from pipeline.encoders.facenet import FacenetEncoder

    return FacenetEncoder.from_spec(spec, device, options)


def _dlib(spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> Encoder:
    from pipeline.encoders.dlib_face import DlibEncoder

    return DlibEncoder.from_spec(spec, device, options)


def _phash(spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> Encoder:
    from pipeline.encoders.phash import PHashEncoder

    return PHashEncoder.from_spec(spec, device, options)


def _siamese(spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> Encoder:
    from pipeline.encoders.siamese.encoder import SiameseEncoder

    return SiameseEncoder.from_spec(spec, device, options, make_backbone=create_encoder)


register_encoder(
    EncoderInfo(
        "clip",
        "clip:ViT-B-32@laion2b_s34b_b79k",
        "open_clip image tower; @<pretrained tag> from the hub, @<file> local weights, @none random init",
        "needs weights (hub or local file)",
    ),
    _clip,
)
register_encoder(
    EncoderInfo(
        "facenet",
        "facenet@vggface2",
        "facenet-pytorch: MTCNN detect+align, InceptionResnetV1 512-d; @vggface2 | @casia-webface | @<file>",
        "MTCNN ships in the wheel; recogniser weights need the hub or a local file",
    ),
    _facenet,
)
register_encoder(
    EncoderInfo(
        "dlib",
        "dlib",
        "dlib ResNet face descriptor (128-d) after HOG detection and 5-point alignment",
        "yes (weights ship in face_recognition_models)",
    ),
    _dlib,
)
register_encoder(
    EncoderInfo(
        "phash",
        "phash:8",
        "imagehash perceptual hash as a 0/1 vector (hash_size² bits), Manhattan = Hamming distance; "
        "phash:8+mirror: flip-invariant bits (a canonical left-right orientation), so a mirrored copy hashes the same",
        "yes (no weights)",
        options=("mirror",),
    ),
    _phash,
)
register_encoder(
    EncoderInfo(
        "siamese",
        "siamese@runs/finetune/omniglot-cnn",
        "a model trained by `lookalike finetune` (MLP head on a backbone, or a CNN); @<checkpoint folder>; "
        "siamese:local@DIR: a CNN's global + per-cell embeddings as a multivector (MaxSim late interaction)",
        "yes (a local checkpoint: model.safetensors + config.json)",
    ),
    _siamese,
)
