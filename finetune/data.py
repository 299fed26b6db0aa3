"""Training data for `finetune`: a data spec → labelled training examples and a held-out validation task.

Spec grammar `KIND:PATH`:

- `folder:DIR` — a folder per class (`DIR/<label>/<image>`); validation: N-way one-shot on held-out classes.
- `manifest:FILE` — a .csv/.parquet with `path` and `label` columns (`group` optional); as folder.
- `omniglot:DIR` — an Omniglot set folder (e.g. images_background_small1) or a folder of sets; classes are
  characters, held out per alphabet; validation: 20-way one-shot on held-out characters.
- `tll:DIR` — Totally-Looks-Like `train.csv`: each (left, right) pair is a class of two, so the other pairs of a
  batch are its negatives. The pairs `lookalike eval candidates` holds out (its default seed and val fraction) are
  never used; validation: top-2 on 20-candidate tasks from another held-out part.
- `lfw:DIR` — LFW `pairsDevTrain.txt`: its images labelled by person (DevTest stays unseen); validation: pair
  accuracy on pairs of held-out people.
- `copies:SOURCE` — a folder or manifest of unlabelled images (labels ignored): self-supervised copy detection.
  Each image is its own class; `finetune.copies` adds its transformed copies. Validation: recall@1 of one copy of
  each held-out image against all held-out originals.

`val_fraction=0` holds nothing out (`NoValidation`, or a copy task over no images): a refit on everything for a
fixed number of epochs, after choosing that number on a split.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from finetune.errors import DataSpecError
from finetune.validation import (
    NoValidation,
    Validation,
    candidate_validation,
    copy_validation,
    oneshot_validation,
    pair_validation,
)
from pipeline.core.errors import SourceError
from pipeline.datasets import (
    EVAL_CANDIDATES,
    EVAL_SPLIT_SEED,
    EVAL_VAL_FRACTION,
    load_folder,
    load_lfw,
    load_omniglot,
    load_tll,
)
from pipeline.index.sources import list_source

SOURCE_KINDS = ("folder", "manifest", "omniglot", "tll", "lfw", "copies")
DATA_SPEC_HELP = (
    "KIND:PATH — folder:DIR (a sub-folder per class), manifest:FILE.csv|.parquet (path,label[,group] columns), "
    "omniglot:DIR (a set folder such as images_background_small1), tll:DIR (train.csv pairs), "
    "lfw:DIR (pairsDevTrain.txt), copies:DIR|FILE (any images, no labels: each with its transformed copies)"
)
MAX_COPY_VALIDATION = 500  # held-out images for copies: enough for a stable recall@1, cheap to score every epoch


@dataclass(frozen=True)
class DataSpec:
    """A parsed `KIND:PATH` training data spec."""

    kind: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> DataSpec:
        """Parse `KIND:PATH`.

        Raises:
            DataSpecError: no `:`, an unknown kind, or a path that does not exist.
        """
        kind, sep, path = text.strip().partition(":")
        if not sep or kind not in SOURCE_KINDS or not path:
            raise DataSpecError(f"bad training data {text!r}: expected {DATA_SPEC_HELP}", setting="data")
        if not Path(path).exists():
            raise DataSpecError(f"training data {text!r}: no such file or folder {path}", setting="data")
        return cls(kind, Path(path))

    @property
    def dataset_name(self) -> str:
        """Short name for collections and output folders, as `lookalike eval` names them (tll, lfw, omniglot…)."""
        return self.kind if self.kind in ("tll", "lfw", "omniglot") else self.path.stem


@dataclass(frozen=True)
class Examples:
    """Labelled images: `groups` are super-classes held out evenly (Omniglot alphabets), "" when none."""

    paths: tuple[str, ...]
    labels: tuple[str, ...]
    groups: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.paths) == len(self.labels) == len(self.groups):
            raise ValueError(f"Examples: {len(self.paths)} paths, {len(self.labels)} labels, {len(self.groups)} groups")

    def subset(self, keep: Sequence[int]) -> Examples:
        return Examples(
            tuple(self.paths[i] for i in keep),
            tuple(self.labels[i] for i in keep),
            tuple(self.groups[i] for i in keep),
        )


@dataclass(frozen=True)
class TrainingData:
    """What `finetune` trains on and the held-out task it stops on."""

    spec: DataSpec
    train: Examples
    validation: Validation

    @property
    def all_paths(self) -> list[str]:
        """Training and validation images, each once, in first-seen order (copies: validation paths are keys)."""
        return list(dict.fromkeys((*self.train.paths, *self.validation.paths)))


def load_training_data(spec: DataSpec, seed: int = 0, val_fraction: float = 0.2) -> TrainingData:
    """Read a source, hold out validation classes (or pairs), and build the validation task.

    Classes with a single image are dropped from training: they can form no positive pair. With `val_fraction`
    0 every class (tll: pair; copies: image) is trained on and there is no validation task.

    Raises:
        DataSpecError, DatasetError, SourceError: the source cannot be read or is too small to split.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DataSpecError(f"validation fraction must be in [0, 1), got {val_fraction}", setting="val_fraction")
    if spec.kind == "tll":
        return _tll_data(spec, seed, val_fraction)
    if spec.kind == "copies":
        return _copies_data(spec, seed, val_fraction)
    examples = _labelled(spec)
    if val_fraction == 0.0:
        return TrainingData(spec, without_singletons(examples), NoValidation())
    train, held_out = split_classes(examples, val_fraction, seed)
    try:
        if spec.kind == "lfw":
            validation: Validation = pair_validation(held_out.paths, held_out.labels, seed=seed)
        else:
            validation = oneshot_validation(held_out.paths, held_out.labels, seed=seed)
    except ValueError as e:
        raise DataSpecError(
            f"training data {spec.kind}:{spec.path}: too few held-out classes to validate on ({e})", setting="data"
        ) from e
    return TrainingData(spec, without_singletons(train), validation)


def _labelled(spec: DataSpec) -> Examples:
    if spec.kind == "omniglot":
        chars = load_omniglot(spec.path).characters()
        rows = [(path, c.label, c.alphabet) for c in chars for _, path in c.drawings]
    elif spec.kind == "lfw":
        pairs = load_lfw(spec.path).pairs("DevTrain")
        rows = [
            (p, Path(p).parent.name, "") for p in dict.fromkeys(x for pair in pairs for x in (pair.left, pair.right))
        ]
    elif spec.kind == "manifest":
        records = list_source(spec.path).records
        rows = [(r.path, r.label, r.group or "") for r in records if r.label is not None]
        if not rows:
            raise SourceError(f"{spec.path}: no row has a label (a 'label' column is needed for training)")
    else:
        rows = [(image.path, image.label, "") for image in load_folder(spec.path)]
    return Examples(tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(r[2] for r in rows))


def split_classes(examples: Examples, val_fraction: float, seed: int) -> tuple[Examples, Examples]:
    """Hold out round(val_fraction × classes) of each group's classes (at least one; two in all), seeded.

    Raises:
        DataSpecError: fewer than 4 classes with two images or more.
    """
    sizes = Counter(examples.labels)
    usable = sorted({(g, label) for g, label in zip(examples.groups, examples.labels, strict=True) if sizes[label] > 1})
    if len(usable) < 4:
        raise DataSpecError(f"need at least 4 classes with 2+ images to train and validate; found {len(usable)}")
    rng = random.Random(seed)
    held: list[str] = []
    spare: list[str] = []
    for group in sorted({g for g, _ in usable}):
        labels = [label for g, label in usable if g == group]
        rng.shuffle(labels)
        take = max(1, round(len(labels) * val_fraction)) if len(labels) > 1 else 0
        held += labels[:take]
        spare += labels[take:]
    rng.shuffle(spare)
    held += spare[: max(0, 2 - len(held))]  # a one-shot or pair task needs two held-out classes
    train = [i for i, label in enumerate(examples.labels) if label not in held]
    val = [i for i, label in enumerate(examples.labels) if label in held]
    return examples.subset(train), examples.subset(val)


def without_singletons(examples: Examples) -> Examples:
    """Drop classes with one image (no positive pair can be formed)."""
    sizes = Counter(examples.labels)
    return examples.subset([i for i, label in enumerate(examples.labels) if sizes[label] > 1])


def _tll_data(spec: DataSpec, seed: int, val_fraction: float) -> TrainingData:
    """TLL pairs as classes of two; eval's held-out pairs are excluded, validation pairs are held out from the rest."""
    # `lookalike eval candidates` holds these pairs out by default: they are never trained on
    usable, _ = load_tll(spec.path).split_train(EVAL_SPLIT_SEED, EVAL_VAL_FRACTION)
    order = list(range(len(usable)))
    random.Random(seed).shuffle(order)
    n_val = max(2, round(len(usable) * val_fraction)) if val_fraction else 0
    if len(usable) - n_val < 2:
        raise DataSpecError(f"{spec.path}: {len(usable)} usable pairs are too few to train and validate on")
    val_pairs = [usable[i] for i in sorted(order[:n_val])]
    train_pairs = [usable[i] for i in sorted(order[n_val:])]
    paths = tuple(p for pair in train_pairs for p in (pair.left, pair.right))
    labels = tuple(f"pair:{pair.left_id}" for pair in train_pairs for _ in (0, 1))
    validation = candidate_validation(val_pairs, EVAL_CANDIDATES, seed) if val_pairs else NoValidation()
    return TrainingData(spec, Examples(paths, labels, ("",) * len(paths)), validation)


def _copies_data(spec: DataSpec, seed: int, val_fraction: float) -> TrainingData:
    """Every image its own class; a seeded val_fraction of them (2 to MAX_COPY_VALIDATION; none for 0) held out for
    validation."""
    paths = list(dict.fromkeys(record.path for record in list_source(spec.path).records))
    n_val = min(MAX_COPY_VALIDATION, max(2, round(len(paths) * val_fraction))) if val_fraction else 0
    if len(paths) - n_val < 2:
        raise DataSpecError(
            f"training data copies:{spec.path}: {len(paths)} images are too few (need 2 to train on and {n_val} to "
            "validate)",
            setting="data",
        )
    order = list(range(len(paths)))
    random.Random(seed).shuffle(order)
    train = tuple(paths[i] for i in sorted(order[n_val:]))
    validation = copy_validation([paths[i] for i in sorted(order[:n_val])], seed)
    return TrainingData(spec, Examples(train, train, ("",) * len(train)), validation)
