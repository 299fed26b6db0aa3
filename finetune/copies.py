"""Self-supervised copy-detection inputs (`--data copies:SOURCE`): an image and its transformed copies are a class.

Each image is decoded once, shrunk to a working size, and given K seeded copies made with the edits
`lookalike bench copies` makes (`pipeline.bench.copies.apply_transform`: crop, resize, JPEG, flip, rotate, colour,
greyscale, border, text and combinations); copy j of image i uses transform (i + j) mod 10, so with K < 10 copies
each image gets K different edits and every edit is still trained on across the collection. The original and
its copies form one class, so an M-per-class batch holds several views of each image (positives) and views of the
other images (negatives). No labels are needed: a user trains a copy-detection encoder on their own collection.

The views are made once, before training, and kept in memory as uint8: N × (1 + K) × C × S² bytes (10 000 images,
K = 10, RGB at 64 px: 1.4 GB); the batch augmentation (`COPY_AUGMENT`) varies them further every epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from finetune.data import TrainingData
from finetune.errors import DataSpecError
from finetune.validation import CopyValidation
from pipeline.core.errors import ImageDecodeError
from pipeline.core.images import load_rgb
from pipeline.core.transforms import TRANSFORM_NAMES, apply_transform
from pipeline.encoders.siamese.model import image_tensor

WORKING_SCALE = 2  # originals shrink to 2 × the input side before copying: edits at full size would cost far more
TRAIN_STREAM, VALIDATION_STREAM = 0, 1  # separate random streams for training and validation copies

Plan = Sequence[tuple[str, Sequence[int]]]  # (transform name, random seed) for each copy of one image


@dataclass(frozen=True)
class CopySettings:
    """How the views are made.

    Attributes:
        size, channels: model input side and channels (1 grey, 3 RGB), as `image_tensor` makes them.
        copies: copies per training image (each class has 1 + copies views).
        seed: seeds every copy's random parameters (copy j of image i: `[seed, 0, i, j]`).
        threads: decoding and copying threads.
    """

    size: int
    channels: int
    copies: int
    seed: int = 0
    threads: int = 4
    progress: bool = True


@dataclass(frozen=True)
class CopySet:
    """Training views and the validation task's views, uint8 (·, C, S, S).

    Attributes:
        images: (N·(1+K), C, S, S): each decodable training image, then its K copies.
        labels: (N·(1+K),) int64: the class of each view (its image's index among the decodable ones).
        val_images: (2V, C, S, S): the V decodable held-out originals, then one copy of each (`validation.paths`).
        validation: the copy task over those V originals.
        undecodable: images that could not be decoded (training and held-out); they are skipped.
    """

    images: torch.Tensor
    labels: torch.Tensor
    val_images: torch.Tensor
    validation: CopyValidation
    undecodable: tuple[str, ...]


def working_image(image: Image.Image, size: int) -> Image.Image:
    """Shrink so the longer side is at most WORKING_SCALE × size (aspect kept); smaller images are left as they are."""
    limit = WORKING_SCALE * size
    scale = limit / max(image.size)
    if scale >= 1:
        return image
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new, Image.Resampling.BILINEAR)


def image_views(image: Image.Image, plan: Plan, size: int, channels: int) -> torch.Tensor:
    """The image and one copy per (transform, seed) of `plan`, as (1 + len(plan), C, size, size) uint8."""
    base = working_image(image, size)
    copies = [apply_transform(name, base, np.random.default_rng(list(seed)))[0] for name, seed in plan]
    return torch.stack([image_tensor(view, size, channels) for view in (base, *copies)])


def _views_of(
    paths: Sequence[str], plans: Sequence[Plan], settings: CopySettings, desc: str
) -> Iterator[torch.Tensor | None]:
    """`image_views` of each path in order (threads); None where the file cannot be decoded."""

    def one(job: tuple[str, Plan]) -> torch.Tensor | None:
        try:
            image = load_rgb(job[0])
        except ImageDecodeError:
            return None
        return image_views(image, job[1], settings.size, settings.channels)

    with ThreadPoolExecutor(max_workers=max(1, settings.threads)) as pool:
        results = pool.map(one, zip(paths, plans, strict=True))
        yield from tqdm(results, total=len(paths), desc=desc, unit="img", disable=not settings.progress)


def copy_plans(n: int, k: int, seed: int) -> list[list[tuple[str, tuple[int, ...]]]]:
    """(transform, rng seed) of each of the K copies of n images: image i, copy j → transform (i + j) mod 10."""
    names = TRANSFORM_NAMES
    return [[(names[(i + j) % len(names)], (seed, TRAIN_STREAM, i, j)) for j in range(k)] for i in range(n)]


def _training_views(paths: Sequence[str], settings: CopySettings) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Views of each decodable image with their class ids, and the undecodable paths."""
    k = settings.copies
    plans = copy_plans(len(paths), k, settings.seed)
    s, c = settings.size, settings.channels
    images = torch.empty(len(paths) * (1 + k), c, s, s, dtype=torch.uint8)  # filled in place: no second copy
    failed: list[str] = []
    classes = 0
    for path, views in zip(paths, _views_of(paths, plans, settings, "copies"), strict=True):
        if views is None:
            failed.append(path)
            continue
        images[classes * (1 + k) : (classes + 1) * (1 + k)] = views
        classes += 1
    labels = torch.arange(classes, dtype=torch.int64).repeat_interleave(1 + k)
    return images[: classes * (1 + k)], labels, failed


def _validation_views(validation: CopyValidation, settings: CopySettings) -> tuple[torch.Tensor, CopyValidation]:
    """Originals then their query copies, over the decodable held-out images; the task narrowed to those."""
    if not validation.originals:  # --val-fraction 0: nothing held out, no validation
        size = (0, settings.channels, settings.size, settings.size)
        return torch.empty(size, dtype=torch.uint8), validation
    plans = [[(name, (validation.seed, VALIDATION_STREAM, i))] for i, name in enumerate(validation.transforms)]
    views = list(_views_of(validation.originals, plans, settings, "validation copies"))
    keep = [i for i, v in enumerate(views) if v is not None]
    pairs = [v for v in views if v is not None]  # each (2, C, S, S): original, copy
    if len(keep) < 2:
        raise DataSpecError(f"copies: only {len(keep)} of {len(views)} held-out images decode; need at least 2")
    return torch.cat([torch.stack([v[0] for v in pairs]), torch.stack([v[1] for v in pairs])]), validation.subset(keep)


def make_copy_set(data: TrainingData, settings: CopySettings) -> CopySet:
    """Views of `data`'s training images (1 + K each) and of its copy validation task.

    Raises:
        DataSpecError: `data` is not copies data, fewer than 2 training or held-out images decode.
    """
    if not isinstance(data.validation, CopyValidation):
        raise DataSpecError(
            f"training data {data.spec.kind}:{data.spec.path}: copy views need copies: data", setting="data"
        )
    images, labels, failed = _training_views(data.train.paths, settings)
    if len(images) // (1 + settings.copies) < 2:
        raise DataSpecError(f"copies: {len(data.train.paths) - len(failed)} training images decode; need at least 2")
    val_images, validation = _validation_views(data.validation, settings)
    skipped = (*failed, *sorted(set(data.validation.originals) - set(validation.originals)))
    return CopySet(images, labels, val_images, validation, skipped)
