"""Resolve the user's `--device` choice; the only place that asks torch about CUDA."""

from __future__ import annotations

import torch

from pipeline.core.errors import LookalikeError


def resolve_device(choice: str = "auto") -> torch.device:
    """Turn "auto" | "cpu" | "cuda" | "cuda:N" into a torch.device.

    Raises:
        LookalikeError: CUDA was asked for but is not available, or the choice is malformed.
    """
    choice = choice.strip().lower()
    if choice == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise LookalikeError(
                f"device {choice}: CUDA is not available on this machine; use device cpu or auto", setting="device"
            )
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise LookalikeError(
                f"device {choice}: only {torch.cuda.device_count()} CUDA device(s) present", setting="device"
            )
        return device
    raise LookalikeError(f"device {choice!r}: expected auto, cpu, cuda or cuda:N", setting="device")


def is_cuda(device: torch.device) -> bool:
    """True for a CUDA device: enables AMP and pinned memory."""
    return device.type == "cuda"
