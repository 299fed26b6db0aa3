"""Adapters for benchmark dataset layouts: Totally-Looks-Like, LFW, Omniglot, MNIST 5k, folder-per-label galleries.

Imports core and index."""

from pipeline.datasets.base import CandidateTask, LabelledImage, OneShotTask, Pair, resolve_root
from pipeline.datasets.folder import load_folder
from pipeline.datasets.lfw import LFW_ENV, LfwDataset, load_lfw
from pipeline.datasets.mnist import MnistExport, MnistExportConfig, export_mnist, load_mnist_5k
from pipeline.datasets.omniglot import (
    OMNIGLOT_ENV,
    OmniglotCharacter,
    OmniglotDataset,
    load_official_runs,
    load_omniglot,
)
from pipeline.datasets.tll import (
    EVAL_CANDIDATES,
    EVAL_SPLIT_SEED,
    EVAL_VAL_FRACTION,
    TLL_ENV,
    TllDataset,
    TllPair,
    candidate_tasks,
    load_tll,
)

__all__ = [
    "EVAL_CANDIDATES",
    "EVAL_SPLIT_SEED",
    "EVAL_VAL_FRACTION",
    "LFW_ENV",
    "OMNIGLOT_ENV",
    "TLL_ENV",
    "CandidateTask",
    "LabelledImage",
    "LfwDataset",
    "MnistExport",
    "MnistExportConfig",
    "OmniglotCharacter",
    "OmniglotDataset",
    "OneShotTask",
    "Pair",
    "TllDataset",
    "TllPair",
    "candidate_tasks",
    "export_mnist",
    "load_folder",
    "load_lfw",
    "load_mnist_5k",
    "load_official_runs",
    "load_omniglot",
    "load_tll",
    "resolve_root",
]
