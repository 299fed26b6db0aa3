"""Siamese fine-tuning (contrastive, triplet, BCE); its checkpoints load as `siamese@DIR` encoders.

Public API: `run_finetune(FinetuneConfig(...), device, store)` for the whole run; the stages it composes are
`load_training_data` (data), `create_loss` (losses), `train` (train) and `write_checkpoint` (checkpoint);
`make_copy_set` (copies) makes the self-supervised views for `--data copies:SOURCE`.
"""

from finetune.checkpoint import write_checkpoint, write_curves
from finetune.config import CnnOptions, FinetuneConfig, HeadOptions
from finetune.data import DataSpec, TrainingData, load_training_data
from finetune.errors import DataSpecError, FinetuneConfigError
from finetune.losses import LossConfig, create_loss
from finetune.run import FinetuneResult, run_finetune
from finetune.train import TrainConfig, TrainData, TrainResult, train

__all__ = [
    "CnnOptions",
    "DataSpec",
    "DataSpecError",
    "FinetuneConfig",
    "FinetuneConfigError",
    "FinetuneResult",
    "HeadOptions",
    "LossConfig",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "TrainingData",
    "create_loss",
    "load_training_data",
    "run_finetune",
    "train",
    "write_checkpoint",
    "write_curves",
]
