"""The `siamese@DIR` checkpoint format, written and read in this one module (`lookalike finetune` writes through it).

A checkpoint folder holds `WEIGHTS_FILE` (safetensors, never unpickled; its metadata records the config's sha256 under
`CONFIG_HASH_KEY`) and `CONFIG_FILE` (`SiameseConfig.to_dict()`, whose `format` field is the format version, plus the
weights file's sha256). Those names and the version are constants of `pipeline.encoders.siamese.model`.
`write_checkpoint` writes each file atomically; `load_checkpoint` reads one without trusting it: size-capped reads,
the config checked for keys, types and ranges (`SiameseConfig.from_dict`), the safetensors header compared with a
model built on the meta device before any tensor is allocated, and NaN/inf weights refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from pipeline.core.errors import CheckpointError
from pipeline.encoders.siamese.model import (
    CONFIG_FILE,
    CONFIG_HASH_KEY,
    WEIGHTS_FILE,
    SiameseConfig,
    brief,
    build_model,
)
from pipeline.encoders.siamese.nets import SiameseNet


def canonical_config_hash(data: Mapping[str, Any]) -> str:
    """sha256 of a config dict as sorted compact JSON: what the weights file's metadata records."""
    text = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_checkpoint(directory: Path, config: SiameseConfig, state: Mapping[str, torch.Tensor]) -> Path:
    """Save weights and config so that `siamese@DIR` loads them and detects later edits to either file.

    The weights file's metadata records the config's hash; the config records the weights file's sha256.

    Returns:
        The checkpoint folder.

    Raises:
        OSError: the folder or a file cannot be written (full disk, permissions); no file is left half-written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    data = config.to_dict()
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}
    blob = save_safetensors(tensors, metadata={CONFIG_HASH_KEY: canonical_config_hash(data)})
    _write_atomic(directory / WEIGHTS_FILE, blob)
    data["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    _write_atomic(directory / CONFIG_FILE, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
    return directory


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write then rename, so an interrupted run never leaves half a file under the final name."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(payload)
    os.replace(partial, path)


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint folder: its config, its weights and the sha256 of the weights file (its identity)."""

    config: SiameseConfig
    state: dict[str, torch.Tensor]
    weights_sha256: str


MAX_CONFIG_BYTES = 2**20
MAX_WEIGHTS_BYTES = 2**30  # the largest head CONFIG_RANGES allow is ~0.54 GB; CNNs are megabytes
# torch dtype → safetensors dtype name, for comparing a file's header with the model a config builds
_DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def load_checkpoint(directory: Path) -> Checkpoint:
    """Read and verify a checkpoint folder without unpickling anything or sizing anything by its config before the
    config has been checked against `CONFIG_RANGES` and against the tensor shapes in the weights file's header.

    Links out of the folder are refused (a checkpoint is a self-contained folder; a link could point the reader at a
    device or at another user's file), links within it are followed.

    Raises:
        CheckpointError (a WeightsUnavailableError): one line naming the folder and what is wrong: a file is missing,
            unreadable, too large or links out of the folder; the weights' sha256 differs from the config's, or the
            config from the one the weights were saved with (either file was edited); the config is not a valid
            JSON object of known keys with values of the right types and ranges; the weights file is not
            safetensors, or its tensors' names, dtypes or shapes are not those the config builds, or hold NaN or
            infinite values.
    """
    root = directory.resolve()
    where = f"siamese@{root}"
    data, blob = _read_config(root), _read_file(root, WEIGHTS_FILE, MAX_WEIGHTS_BYTES)
    recorded, weights_sha256 = data.pop("weights_sha256", None), hashlib.sha256(blob).hexdigest()
    if recorded != weights_sha256:
        raise CheckpointError(
            f"{where}: {WEIGHTS_FILE}: sha256 does not match the one in {CONFIG_FILE} (weights modified or from "
            "another run); re-run lookalike finetune or restore the original files"
        )
    header = _safetensors_header(blob, where)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get(CONFIG_HASH_KEY) != canonical_config_hash(data):
        raise CheckpointError(
            f"{where}: {CONFIG_FILE} was edited after training (its hash differs from the one saved with the "
            "weights); restore it or re-run lookalike finetune"
        )
    try:
        config = SiameseConfig.from_dict(data)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{where}: invalid {CONFIG_FILE}: {_first_line(e)}") from e
    problem = _tensors_problem(header, expected_tensors(config))
    if problem:
        raise CheckpointError(f"{where}: {WEIGHTS_FILE} does not fit the architecture in {CONFIG_FILE}: {problem}")
    return Checkpoint(config, _load_tensors(blob, where), weights_sha256)


def _read_file(root: Path, name: str, limit: int) -> bytes:
    """A checkpoint file's bytes; refused when missing, not a regular file, linked out of `root` or over `limit`."""
    path, where = root / name, f"siamese@{root}"
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{where}: {name} is missing: siamese@DIR needs a lookalike finetune output folder")
    try:
        target = path.resolve()
        if not target.is_relative_to(root):
            raise CheckpointError(
                f"{where}: {name} links to {target}, outside the folder; copy the file itself into the folder"
            )
        if not target.is_file():
            raise CheckpointError(f"{where}: {name} is not a regular file")
        with target.open("rb") as f:
            payload = f.read(limit + 1)  # never more, even if the file grows meanwhile
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop
        raise CheckpointError(f"{where}: cannot read {name}: {_first_line(e)}") from e
    if len(payload) > limit:
        raise CheckpointError(
            f"{where}: {name} is over {limit // 2**20} MiB, larger than any checkpoint lookalike writes"
        )
    return payload


def _read_config(root: Path) -> dict[str, Any]:
    """The config file as a JSON object."""
    where = f"siamese@{root}"
    try:
        data = json.loads(_read_file(root, CONFIG_FILE, MAX_CONFIG_BYTES))
    except (ValueError, RecursionError) as e:  # RecursionError: nesting too deep for the parser
        raise CheckpointError(f"{where}: {CONFIG_FILE} is not valid JSON ({_first_line(e)})") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: {CONFIG_FILE} holds a JSON {type(data).__name__}, not an object")
    return data


def _safetensors_header(blob: bytes, where: str) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON), read without the tensors."""
    size = int.from_bytes(blob[:8], "little") if len(blob) >= 8 else -1
    if not 0 < size <= len(blob) - 8:
        raise CheckpointError(
            f"{where}: {WEIGHTS_FILE} is not a safetensors file, or is truncated ({len(blob)} bytes; "
            f"a header of {max(size, 0)} claimed)"
        )
    try:
        header = json.loads(blob[8 : 8 + size])
    except (ValueError, RecursionError) as e:
        raise CheckpointError(f"{where}: {WEIGHTS_FILE} is not a safetensors file (its header is not JSON)") from e
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: {WEIGHTS_FILE} is not a safetensors file (its header is not an object)")
    return header


def expected_tensors(config: SiameseConfig) -> dict[str, tuple[str, list[int]]]:
    """Name → (safetensors dtype, shape) of each tensor the config's model holds: built on the meta device, so
    nothing is allocated however large the config."""
    with torch.device("meta"):
        model = build_model(config)
    return {name: (_DTYPE_NAMES.get(t.dtype, str(t.dtype)), list(t.shape)) for name, t in model.state_dict().items()}


def _tensors_problem(header: Mapping[str, Any], expected: Mapping[str, tuple[str, list[int]]]) -> str:
    """How the tensors a safetensors header lists differ from `expected`, or ""."""
    found = {name: entry for name, entry in header.items() if name != "__metadata__"}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        return "; ".join(
            f"{what} tensor(s) {_names(names)}"
            for what, names in (("missing", missing), ("unexpected", extra))
            if names
        )
    for name, (dtype, shape) in expected.items():
        entry = found[name] if isinstance(found[name], dict) else {}
        if entry.get("dtype") != dtype:
            return f"{name} is {brief(entry.get('dtype'))}, expected {dtype}"
        if entry.get("shape") != shape:
            return f"{name} has shape {brief(entry.get('shape'))}, expected {shape}"
    return ""


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(brief(name) for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _load_tensors(blob: bytes, where: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file whose header has been checked; NaN or infinite values are refused (such a
    model embeds every image as NaN, or as nothing useful)."""
    try:
        state = load_safetensors(blob)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{where}: {WEIGHTS_FILE} is not a valid safetensors file ({_first_line(e)})") from e
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{where}: {WEIGHTS_FILE}: {name} holds NaN or infinite values")
    return state


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


def load_model(directory: Path, device: torch.device) -> tuple[SiameseConfig, SiameseNet]:
    """A verified checkpoint as a model in eval mode on `device`.

    Raises:
        CheckpointError: see `load_checkpoint`.
    """
    checkpoint = load_checkpoint(directory)
    return checkpoint.config, checkpoint_model(checkpoint, directory, device)


def checkpoint_model(checkpoint: Checkpoint, directory: Path, device: torch.device) -> SiameseNet:
    """A loaded checkpoint's model in eval mode on `device` (`load_checkpoint` has matched the weights' names and
    shapes to the config, so the model built here is no larger than the weights file).

    Raises:
        CheckpointError: the weights do not fit the architecture (`directory` names it in the message).
    """
    model = build_model(checkpoint.config)
    try:
        model.load_state_dict(checkpoint.state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(
            f"siamese@{directory}: weights do not fit the configured architecture ({_first_line(e)})"
        ) from e
    return model.to(device).eval()
