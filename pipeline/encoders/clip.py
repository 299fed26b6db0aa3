"""CLIP image embeddings through open_clip: spec `clip[:ARCH][@WEIGHTS]`.

WEIGHTS is an open_clip pretrained tag (downloaded from the hub), a local weights file, or `none`
(random init with a fixed seed: a reproducible "random features" floor, and what the tests use).
Only the image tower is kept after loading; the text tower (for text-to-image search, `encode_text`) is built on
first use, from the same weights read again, so ingest never holds it.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.transform import PreprocessCfg, image_transform_v2, merge_preprocess_dict
from PIL import Image

from pipeline.core.device import is_cuda
from pipeline.core.errors import EncoderSpecError, LookalikeError, WeightsUnavailableError
from pipeline.core.records import Distance, EncodedBatch
from pipeline.encoders.base import EncoderOptions, EncoderSpec, weights_digest

DEFAULT_ARCH = "ViT-B-32"
DEFAULT_WEIGHTS = "laion2b_s34b_b79k"
RANDOM_WEIGHTS = "none"
RANDOM_SEED = 0  # random-init weights are the same in every process (ingest and query must agree)
# Bump when the same spec would embed an image differently (preprocessing, pooling, normalisation). Weights need no
# bump: a hub tag is part of the name, and a local file's digest is appended to the version.
VERSION = "clip:1"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npz")
_LOCAL_HINT = "clip:{arch}@/path/to/open_clip_model.safetensors"


@dataclass(frozen=True)
class _Weights:
    """Where an encoder's weights come from, resolved from the spec's @part."""

    label: str  # canonical @part of the encoder name: tag, absolute file path or "none"
    checkpoint: str | None  # local file for open_clip to load; None = random init
    preprocess: dict[str, Any] = field(default_factory=dict)  # mean/std/resize overrides for this weights source
    digest: str = ""  # a local file's `weights_digest` (same path, other contents → other version); "" for tags

    @property
    def version(self) -> str:
        return f"{VERSION}@{self.digest}" if self.digest else VERSION


@dataclass(frozen=True)
class _TextTower:
    """The text half of an open_clip model: the model with its image tower removed, and the arch's tokenizer."""

    model: torch.nn.Module
    tokenizer: Callable[[list[str]], torch.Tensor]


class ClipEncoder:
    """open_clip image tower, and its text tower on demand; vectors are L2-normalised, compared by cosine."""

    distance: Distance = "cosine"

    def __init__(
        self,
        name: str,
        visual: torch.nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        dim: int,
        device: torch.device,
        amp: bool = True,
        version: str = VERSION,
        text_loader: Callable[[], _TextTower] | None = None,
    ) -> None:
        self.name = name
        self.dim = dim
        self.version = version
        self._preprocess = preprocess
        self._device = device
        self._amp = amp and is_cuda(device)
        self._visual: torch.nn.Module | None = visual.to(device).eval()
        self._text_loader = text_loader
        self._text: _TextTower | None = None

    @classmethod
    def from_spec(cls, spec: EncoderSpec, device: torch.device, options: EncoderOptions) -> ClipEncoder:
        """Build from `clip[:ARCH][@WEIGHTS]` (defaults ViT-B-32, laion2b_s34b_b79k).

        Raises:
            EncoderSpecError: unknown architecture or pretrained tag.
            WeightsUnavailableError: the weights cannot be downloaded or read.
        """
        arch = _check_arch(spec.arch or DEFAULT_ARCH)
        weights = _resolve_weights(arch, spec.weights or DEFAULT_WEIGHTS)
        visual = _build_visual(arch, weights)
        cfg = PreprocessCfg(**visual.preprocess_cfg)  # type: ignore[arg-type]  # set by open_clip.create_model
        dim = int(open_clip.get_model_config(arch)["embed_dim"])
        transform = image_transform_v2(cfg, is_train=False)
        name = f"clip:{arch}@{weights.label}"
        text = functools.partial(_build_text, arch, weights)
        return cls(name, visual, transform, dim, device, options.amp, weights.version, text)

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers only call prepare(): ship the transform, never the model (size, CUDA tensors).
        state = dict(self.__dict__)
        state["_visual"] = None
        state["_text"] = None
        return state

    def prepare(self, image: Image.Image) -> torch.Tensor:
        """open_clip's eval transform (resize, centre crop, normalise): (3, H, W) float32 on the CPU."""
        return self._preprocess(image.convert("RGB"))

    def encode(self, items: Sequence[torch.Tensor]) -> EncodedBatch:
        """Embed a batch of prepared tensors; every item is ok."""
        n = len(items)
        if n == 0:
            return EncodedBatch(np.zeros((0, self.dim), dtype=np.float32), np.zeros(0, dtype=bool), ())
        if self._visual is None:
            raise RuntimeError("this ClipEncoder was unpickled for prepare() only; encode with the original encoder")
        batch = torch.stack(list(items)).to(self._device, non_blocking=True)  # (N, 3, H, W)
        with torch.inference_mode(), _autocast(self._device, self._amp):
            features = self._visual(batch)
        if isinstance(features, tuple):  # CoCa-style towers return (pooled, tokens)
            features = features[0]
        vectors = F.normalize(features.float(), dim=-1).cpu().numpy()  # (N, D)
        return EncodedBatch(vectors=vectors, ok=np.ones(n, dtype=bool), notes=(None,) * n)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the same model's text tower: (N, D) float32 unit rows, comparable with `encode`'s.

        The first call builds the text tower (reading the weights again); call it once up front to keep it warm.

        Raises:
            WeightsUnavailableError: the weights or the architecture's tokenizer cannot be had.
            LookalikeError: this encoder was built without a text tower (constructed directly, not from a spec).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tower = self._text_tower()
        tokens = tower.tokenizer(list(texts)).to(self._device)  # (N, context_length) token ids
        with torch.inference_mode(), _autocast(self._device, self._amp):
            features = tower.model.encode_text(tokens)  # type: ignore[operator]  # open_clip CLIP/CustomTextCLIP
        if isinstance(features, tuple):  # CoCa-style towers return (pooled, tokens)
            features = features[0]
        return F.normalize(features.float(), dim=-1).cpu().numpy()  # (N, D)

    def _text_tower(self) -> _TextTower:
        if self._text is None:
            if self._text_loader is None:
                raise LookalikeError(f"encoder {self.name} was built without its text tower; build it from its spec")
            tower = self._text_loader()
            self._text = _TextTower(tower.model.to(self._device).eval(), tower.tokenizer)
        return self._text


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    """fp16 autocast on CUDA when asked for; nothing elsewhere."""
    return torch.autocast("cuda") if amp and is_cuda(device) else contextlib.nullcontext()


def _check_arch(arch: str) -> str:
    known = open_clip.list_models()
    if arch in known:
        return arch
    lowered = {name.lower(): name for name in known}
    if arch.lower() in lowered:
        return lowered[arch.lower()]
    raise EncoderSpecError(
        f"unknown open_clip architecture {arch!r}; e.g. ViT-B-32, ViT-B-16, ViT-L-14, RN50, ViT-B-16-SigLIP "
        f"({len(known)} in all: python -c 'import open_clip; print(open_clip.list_models())')"
    )


def _clean_tag(tag: str) -> str:
    return tag.lower().replace("-", "_")


def _resolve_weights(arch: str, weights: str) -> _Weights:
    """Turn the @part into a local checkpoint: `none`, a pretrained tag (downloaded) or a file path."""
    if weights.lower() == RANDOM_WEIGHTS:
        return _Weights(RANDOM_WEIGHTS, None)
    tags = open_clip.list_pretrained_tags_by_model(arch)
    matching = [tag for tag in tags if _clean_tag(tag) == _clean_tag(weights)]
    if matching:
        return _download_tag(arch, matching[0])
    path = Path(weights).expanduser()
    if path.is_file():
        return _Weights(str(path.resolve()), str(path), _local_preprocess(arch, path), weights_digest(path))
    if path.suffix in _WEIGHT_SUFFIXES or "/" in weights or "\\" in weights:
        raise WeightsUnavailableError(f"weights file {weights!r} for clip:{arch} does not exist")
    known = ", ".join(tags) if tags else "none published"
    raise EncoderSpecError(
        f"unknown pretrained tag {weights!r} for clip:{arch}; known tags: {known} "
        f"(or @none for random init, or {_LOCAL_HINT.format(arch=arch)})"
    )


def _download_tag(arch: str, tag: str) -> _Weights:
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    try:
        checkpoint = open_clip.download_pretrained(cfg)
    except Exception as e:  # hub, HTTP and file-system errors all mean the same thing to the user
        source = f"https://huggingface.co/{cfg['hf_hub'].rstrip('/')}" if cfg.get("hf_hub") else cfg.get("url", "")
        raise WeightsUnavailableError(
            f"cannot download open_clip weights clip:{arch}@{tag} from {source} ({type(e).__name__}); "
            f"offline? fetch the file on a connected machine and pass {_LOCAL_HINT.format(arch=arch)}"
        ) from e
    # The tag's own mean/std/resize mode override the architecture defaults, as open_clip does.
    preprocess = {k: v for k, v in merge_preprocess_dict({}, cfg).items() if k != "size"}
    return _Weights(tag, checkpoint, preprocess)


def _local_preprocess(arch: str, path: Path) -> dict[str, Any]:
    """Preprocessing for a local file: its hub folder's open_clip_config.json, else what all the arch's tags use.

    open_clip would otherwise fall back to OpenAI mean/std, which is wrong for e.g. SigLIP weights.
    """
    config = path.parent / "open_clip_config.json"
    if config.is_file():
        try:
            found = json.loads(config.read_text(encoding="utf-8")).get("preprocess_cfg", {})
        except (OSError, ValueError, AttributeError):
            found = {}
        return {k: v for k, v in merge_preprocess_dict({}, found).items() if k != "size"}
    per_tag = [
        {k: v for k, v in merge_preprocess_dict({}, open_clip.get_pretrained_cfg(arch, tag)).items() if k != "size"}
        for tag in open_clip.list_pretrained_tags_by_model(arch)
    ]
    return per_tag[0] if per_tag and all(cfg == per_tag[0] for cfg in per_tag) else {}


def _build_visual(arch: str, weights: _Weights) -> torch.nn.Module:
    """Create the open_clip model on the CPU, load the weights, and keep only the image tower."""
    model = _build_model(arch, weights)
    visual: torch.nn.Module = model.visual
    del model  # drops the text tower
    return visual


def _build_text(arch: str, weights: _Weights) -> _TextTower:
    """Create the open_clip model on the CPU again (same seed or file, so the same weights as the image tower's
    model), drop its image tower, and pair it with the architecture's tokenizer.

    Raises:
        WeightsUnavailableError: the weights or the tokenizer (some architectures fetch theirs from the hub) cannot
            be had.
    """
    model = _build_model(arch, weights)
    model.visual = torch.nn.Identity()  # encode_text never touches it; frees its memory
    try:
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as e:  # hub, HTTP and file-system errors alike (HF tokenizers are downloaded)
        raise WeightsUnavailableError(
            f"cannot load the text tokenizer of clip:{arch} ({type(e).__name__}); offline? its tokenizer is "
            "fetched from the Hugging Face hub on first use"
        ) from e
    return _TextTower(model, tokenizer)


def _build_model(arch: str, weights: _Weights) -> Any:
    """Create the whole open_clip model on the CPU (seeded for random init) and load the weights.

    Raises:
        LookalikeError: open_clip cannot build the random-init architecture.
        WeightsUnavailableError: the weights cannot be loaded into it.
    """
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_SEED)
            model = open_clip.create_model(
                arch,
                pretrained=weights.checkpoint,
                pretrained_text=False,
                pretrained_image=False,
                force_preprocess_cfg=weights.preprocess or None,
                weights_only=True,
                device="cpu",
            )
    except Exception as e:  # open_clip raises RuntimeError/KeyError/OSError/safetensors errors alike
        if weights.checkpoint is None:
            raise LookalikeError(f"open_clip could not build clip:{arch} ({type(e).__name__}: {e})") from e
        raise WeightsUnavailableError(
            f"cannot load weights {weights.checkpoint!r} into clip:{arch} ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]}); is it an open_clip {arch} checkpoint?"
        ) from e
    return model
