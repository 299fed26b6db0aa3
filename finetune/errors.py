"""Errors a `finetune` user can fix; the CLI prints them as one line."""

from pipeline.core.errors import LookalikeError


class DataSpecError(LookalikeError):
    """A training data spec that names no known source kind, a missing path, or data too small to split."""


class FinetuneConfigError(LookalikeError):
    """A training option outside its allowed values (mode, loss, mining, architecture)."""
