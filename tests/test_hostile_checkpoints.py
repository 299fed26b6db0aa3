"""Issue 16: tampered `siamese@DIR` checkpoints end in one line naming the folder and the reason, never a traceback,
never run code and never allocate what their config claims before it has been checked against the weights.

Most tamperings are *re-signed* the way a forger would (`_forge`: each file's hash recorded in the other), so they
get past the integrity checks and only the content checks can refuse them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from fakes import write_noise_images
from safetensors.torch import save as save_safetensors
from typer.testing import CliRunner

from cli import app
from pipeline.core.errors import LookalikeError
from pipeline.encoders import create_encoder
from pipeline.encoders.siamese.checkpoint import canonical_config_hash, write_checkpoint
from pipeline.encoders.siamese.model import CONFIG_FILE, CONFIG_HASH_KEY, WEIGHTS_FILE, SiameseConfig, build_model

MAX_HEAD_DEPTH = 8  # pipeline.encoders.siamese.encoder.MAX_HEAD_DEPTH (not imported: the test also runs on older code)

ROOT = Path(__file__).resolve().parents[1]
CNN = SiameseConfig("cnn", 16, input_size=20, channels=1, width=4, blocks=(1, 1), mean=(0.8,), std=(0.3,))
HEAD = SiameseConfig("head", 8, backbone="phash", input_dim=64, hidden_dim=8)  # phash: 64-d, no weights
MARKER = "PWNED"  # what the pickled "weights" would create next to the checkpoint if they were ever unpickled


@dataclass(frozen=True)
class Good:
    """A real checkpoint as `lookalike finetune` writes it: its folder, config dict (without the weights' hash) and
    tensors, which a tampering edits."""

    directory: Path
    data: dict[str, Any]
    state: dict[str, torch.Tensor]
    blob: bytes


def _good(root: Path, config: SiameseConfig, name: str = "ckpt") -> Good:
    torch.manual_seed(0)
    state = build_model(config).state_dict()
    directory = write_checkpoint(root / name, config, state).resolve()
    data = json.loads((directory / CONFIG_FILE).read_text())
    del data["weights_sha256"]
    return Good(directory, data, {k: v.clone() for k, v in state.items()}, (directory / WEIGHTS_FILE).read_bytes())


def _forge(directory: Path, data: dict[str, Any], weights: dict[str, torch.Tensor] | bytes) -> None:
    """Write any config and weights with each file's hash recorded in the other, as a forger would."""
    if isinstance(weights, dict):
        weights = save_safetensors(weights, metadata={CONFIG_HASH_KEY: canonical_config_hash(data)})
    (directory / WEIGHTS_FILE).write_bytes(weights)
    (directory / CONFIG_FILE).write_text(json.dumps({**data, "weights_sha256": hashlib.sha256(weights).hexdigest()}))


Tamper = Callable[[Good], object]


def config(**changes: Any) -> Tamper:
    """Re-signed config edits; the weights stay those of the good checkpoint."""
    return lambda g: _forge(g.directory, {**g.data, **changes}, g.state)


def head_config(**changes: Any) -> Tamper:
    """Re-signed head config edits with weights that fit them (only the backbone is wrong)."""

    def tamper(g: Good) -> None:
        data = {**g.data, **changes}
        data["backbone"] = data["backbone"].replace("SELF", str(g.directory)).replace("SIBLING", str(_sibling(g)))
        torch.manual_seed(0)
        _forge(g.directory, data, build_model(SiameseConfig.from_dict(data)).state_dict())

    return tamper


def _sibling(g: Good) -> Path:
    """A second head, B, whose backbone is the checkpoint under test, A (for the A → B → A cycle)."""
    other = g.directory.parent / "sibling"
    if not other.exists():
        _forge(write_checkpoint(other, HEAD, g.state), {**g.data, "backbone": f"siamese@{g.directory}"}, g.state)
    return other


def tensors(edit: Callable[[dict[str, torch.Tensor]], object]) -> Tamper:
    """Re-signed weights edits."""

    def tamper(g: Good) -> None:
        state = dict(g.state)
        edit(state)
        _forge(g.directory, g.data, state)

    return tamper


def weights_bytes(make: Callable[[Good], bytes]) -> Tamper:
    """Re-signed raw weights bytes."""
    return lambda g: _forge(g.directory, g.data, make(g))


def raw(name: str, payload: bytes) -> Tamper:
    """A file replaced, not re-signed."""
    return lambda g: (g.directory / name).write_bytes(payload)


class _Marker:
    """Unpickling this creates a file: proof that nothing in a checkpoint is ever unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def _torch_pickle(g: Good) -> bytes:
    target = g.directory / "pickle.pt"
    torch.save({"body.embed.weight": _Marker(g.directory.parent / MARKER)}, target)
    return target.read_bytes()


def _link(target: Callable[[Good], Path]) -> Tamper:
    def tamper(g: Good) -> None:
        (g.directory / WEIGHTS_FILE).unlink()
        (g.directory / WEIGHTS_FILE).symlink_to(target(g))

    return tamper


def _outside(g: Good) -> Path:
    copy = g.directory.parent / "elsewhere.safetensors"
    copy.write_bytes(g.blob)
    return copy


def _set(name: str, value: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(state: dict[str, torch.Tensor]) -> None:
        state[name] = value(state[name]).contiguous()

    return edit


def _nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = math.nan
    return t


def _replace_weights_with_a_folder(g: Good) -> None:
    (g.directory / WEIGHTS_FILE).unlink()
    (g.directory / WEIGHTS_FILE).mkdir()


def _edit_config_unsigned(g: Good) -> None:
    """A config edit that keeps the weights' sha256 but not the config hash the weights' metadata holds."""
    data = {**g.data, "width": 8, "weights_sha256": hashlib.sha256(g.blob).hexdigest()}
    (g.directory / CONFIG_FILE).write_text(json.dumps(data))


def _drop_embedding_dim(g: Good) -> None:
    _forge(g.directory, {k: v for k, v in g.data.items() if k != "embedding_dim"}, g.state)


@dataclass(frozen=True)
class Case:
    id: str
    tamper: Tamper
    reason: str
    base: SiameseConfig = CNN


CASES = [
    Case("weights-missing", lambda g: (g.directory / WEIGHTS_FILE).unlink(), "model.safetensors is missing"),
    Case("config-missing", lambda g: (g.directory / CONFIG_FILE).unlink(), "config.json is missing"),
    Case("weights-empty", weights_bytes(lambda g: b""), "not a safetensors file"),
    Case("weights-truncated", weights_bytes(lambda g: g.blob[: len(g.blob) - 100]), "not a valid safetensors file"),
    Case("weights-header-truncated", weights_bytes(lambda g: g.blob[:40]), "not a safetensors file"),
    Case("weights-header-size-2**60", weights_bytes(lambda g: (2**60).to_bytes(8, "little") + g.blob[8:]), "truncated"),
    Case("weights-header-not-json", weights_bytes(lambda g: g.blob[:8] + b"\xff" * (len(g.blob) - 8)), "not JSON"),
    Case("weights-garbage", weights_bytes(lambda g: bytes(range(256)) * 8), "not a safetensors file"),
    Case("weights-pickle", weights_bytes(lambda g: pickle.dumps(_Marker(g.directory.parent / MARKER))), "safetensors"),
    Case("weights-torch-save-pickle", weights_bytes(_torch_pickle), "not a safetensors file"),
    Case("weights-edited-unsigned", raw(WEIGHTS_FILE, b"x" * 64), "sha256 does not match"),
    Case("weights-a-folder", _replace_weights_with_a_folder, "not a regular file"),
    Case("weights-linked-outside", _link(_outside), "outside the folder"),
    Case("weights-link-loop", _link(lambda g: g.directory / WEIGHTS_FILE), "model.safetensors"),
    Case("config-edited-unsigned", _edit_config_unsigned, "edited after training"),
    Case("config-not-json", raw(CONFIG_FILE, b"{not json"), "config.json is not valid JSON"),
    Case("config-a-list", raw(CONFIG_FILE, b"[1, 2]"), "holds a JSON list, not an object"),
    Case("config-nested-200000-deep", raw(CONFIG_FILE, b"[" * 200_000), "config.json is not valid JSON"),
    Case("config-over-1-MiB", raw(CONFIG_FILE, b"{}" + b" " * 2**20), "config.json is over 1 MiB"),
    Case("config-unknown-key", config(evil=1), "unknown key(s) evil"),
    Case("config-missing-key", _drop_embedding_dim, "missing key(s) embedding_dim"),
    Case("width-a-string", config(width="4"), "width = '4' is not an integer"),
    Case("width-a-boolean", config(width=True), "width = True is not an integer"),
    Case("blocks-not-a-list", config(blocks="11"), "blocks = '11' is not a list of integers"),
    Case("metrics-not-an-object", config(metrics=[1]), "metrics = [1] is not an object"),
    Case(
        "embedding-dim-negative", config(embedding_dim=-16), "embedding_dim = -16 is out of range (allowed 1 to 4096)"
    ),
    Case("input-size-huge", config(input_size=10**30), "input_size = 1000000000000000000000000000000 is out of range"),
    Case("local-weight-nan", config(local_weight=math.nan), "local_weight = nan is not a finite number"),
    Case("mean-infinite", config(mean=[math.inf]), "mean = [inf] is not a list of finite numbers"),
    Case("std-negative", config(std=[-0.3]), "std = [-0.3] is out of range"),
    Case("stem-too-large", config(input_size=512, width=256), "width × input_size²"),
    Case("architecture-unknown", config(architecture="transformer"), "unknown architecture 'transformer'"),
    Case("format-unknown", config(format="lookalike-siamese/9"), "format 'lookalike-siamese/9'"),
    Case("distance-unknown", config(distance="euclid"), "distance 'euclid'"),
    Case("tensor-missing", tensors(lambda s: s.pop("body.embed.bias")), "missing tensor(s) 'body.embed.bias'"),
    Case("tensor-extra", tensors(lambda s: s.update(evil=torch.zeros(1))), "unexpected tensor(s) 'evil'"),
    Case("tensor-wrong-shape", tensors(_set("body.embed.weight", lambda t: t[:, :-1])), "body.embed.weight has shape"),
    Case("tensor-wrong-dtype", tensors(_set("scale", lambda t: t.half())), "scale is 'F16', expected F32"),
    Case("tensor-nan", tensors(_set("body.embed.weight", _nan)), "body.embed.weight holds NaN or infinite values"),
    Case("tensor-inf", tensors(_set("scale", lambda t: t * math.inf)), "scale holds NaN or infinite values"),
    Case("backbone-itself", head_config(backbone="siamese@SELF"), "comes back to a folder already being loaded", HEAD),
    Case("backbone-cycle-a-b-a", head_config(backbone="siamese@SIBLING"), "-> siamese@", HEAD),
    Case("backbone-unknown-encoder", head_config(backbone="nosuch"), "backbone 'nosuch' cannot be used", HEAD),
    Case("backbone-nul-byte", head_config(backbone="siamese@/tmp/a\x00b"), "cannot be used", HEAD),
    Case("backbone-missing-folder", head_config(backbone="siamese@/nonexistent/x"), "no such folder", HEAD),
    Case("backbone-dim-differs", head_config(input_dim=32), "gives 64-d vectors, but the head takes 32-d", HEAD),
    Case("backbone-empty", config(backbone=""), "head needs backbone", HEAD),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_tampered_checkpoint_is_refused_in_one_line(tmp_path: Path, case: Case) -> None:
    good = _good(tmp_path, case.base)
    case.tamper(good)
    with pytest.raises(LookalikeError) as caught:
        create_encoder(f"siamese@{good.directory}")
    message = str(caught.value)
    assert "\n" not in message and f"siamese@{good.directory}" in message and case.reason in message, message
    assert not (tmp_path / MARKER).exists()


def test_cycle_names_the_whole_loop(tmp_path: Path) -> None:
    good = _good(tmp_path, HEAD)
    head_config(backbone="siamese@SIBLING")(good)
    with pytest.raises(LookalikeError) as caught:
        create_encoder(f"siamese@{good.directory}")
    a, b = f"siamese@{good.directory}", f"siamese@{tmp_path / 'sibling'}"
    assert f"({a} -> {b} -> {a})" in str(caught.value)


def test_a_multivector_backbone_is_refused(tmp_path: Path) -> None:
    cnn = _good(tmp_path, CNN, "cnn")
    good = _good(tmp_path, HEAD)
    head_config(backbone=f"siamese:local@{cnn.directory}", input_dim=32)(good)  # local: 2 × 16-d per row
    with pytest.raises(LookalikeError, match="gives multivectors"):
        create_encoder(f"siamese@{good.directory}")


def test_pickled_weights_are_never_unpickled(tmp_path: Path) -> None:
    good = _good(tmp_path, CNN)
    payload = pickle.dumps(_Marker(tmp_path / MARKER))
    _forge(good.directory, good.data, payload)
    with pytest.raises(LookalikeError):
        create_encoder(f"siamese@{good.directory}")
    assert not (tmp_path / MARKER).exists()
    pickle.loads(payload)  # the marker works: unpickling it is what would have created the file
    assert (tmp_path / MARKER).exists()


def test_links_within_the_folder_are_followed(tmp_path: Path) -> None:
    good = _good(tmp_path, CNN)
    (good.directory / "weights.bin").write_bytes(good.blob)
    _link(lambda g: g.directory / "weights.bin")(good)
    assert create_encoder(f"siamese@{good.directory}").dim == 16


def test_an_untampered_head_still_loads(tmp_path: Path) -> None:
    assert create_encoder(f"siamese@{_good(tmp_path, HEAD).directory}").dim == 8


# Run in a child process under an address-space limit, so that the old code (which built the forged network first)
# fails fast instead of taking the machine's memory; ru_maxrss there tells how much the load allocated.
_MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    torch.set_num_threads(1)
    import pipeline.encoders.siamese.encoder
    from pipeline.encoders import create_encoder

    vm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmSize:"))
    limit = (vm_kb + 4 * 2**20) * 1024  # 4 GiB more than now: the forged networks need tens of GB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = {}
    for directory in sys.argv[1:]:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            create_encoder(f"siamese@{directory}")
            outcome = "loaded"
        except Exception as e:
            outcome = f"{type(e).__name__}: {e}".splitlines()[0]
        out[directory] = [outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before]
    print(json.dumps(out))
    """
)


def test_forged_sizes_allocate_nothing_before_being_refused(tmp_path: Path) -> None:
    forgeries = {
        "huge": ({"width": 4096, "blocks": [64, 64, 64]}, "width = 4096 is out of range (allowed 1 to 256)"),
        "in-range": ({"width": 256, "blocks": [16] * 6}, "does not fit the architecture"),  # caught by the meta build
    }
    folders = {}
    for name, (changes, _) in forgeries.items():
        good = _good(tmp_path, CNN, name)
        config(**changes)(good)
        folders[name] = good.directory
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    child = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, folders.values())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    results = json.loads(child.stdout.splitlines()[-1])
    for name, (_, reason) in forgeries.items():
        outcome, grown_kb = results[str(folders[name])]
        assert outcome.startswith("CheckpointError") and reason in outcome and str(folders[name]) in outcome, outcome
        assert grown_kb < 200 * 1024, f"{name}: peak memory grew {grown_kb // 1024} MB"


runner = CliRunner()

CLI_CASES = [
    Case("backbone-itself", head_config(backbone="siamese@SELF"), "comes back to a folder", HEAD),
    Case("weights-pickle", weights_bytes(lambda g: pickle.dumps(_Marker(g.directory.parent / MARKER))), "safetensors"),
    Case("tensor-nan", tensors(_set("scale", _nan)), "scale holds NaN"),
    Case("width-a-boolean", config(width=True), "width = True is not an integer"),
    Case("weights-linked-outside", _link(_outside), "outside the folder"),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_prints_one_error_line_and_exits_2(tmp_path: Path, case: Case) -> None:
    good = _good(tmp_path, case.base)
    case.tamper(good)
    write_noise_images(tmp_path / "imgs", 2)
    args = ["ingest", str(tmp_path / "imgs"), "-c", "x", "-e", f"siamese@{good.directory}", "--workers", "0"]
    result = runner.invoke(app, [*args, "--no-progress", "--store", str(tmp_path / "qdrant")])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert f"siamese@{good.directory}" in result.stderr and case.reason in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / MARKER).exists()


def test_heads_on_heads_load_up_to_the_depth_limit(tmp_path: Path) -> None:
    head = SiameseConfig("head", 64, backbone="phash", input_dim=64, hidden_dim=4)  # 64 in, 64 out: stackable
    backbone = "phash"
    for i in range(MAX_HEAD_DEPTH + 1):
        torch.manual_seed(i)
        config = replace(head, backbone=backbone)
        directory = write_checkpoint(tmp_path / f"h{i}", config, build_model(config).state_dict()).resolve()
        backbone = f"siamese@{directory}"
    assert create_encoder(f"siamese@{tmp_path / f'h{MAX_HEAD_DEPTH - 1}'}").dim == 64  # 8 heads deep: fine
    with pytest.raises(LookalikeError, match=f"more than {MAX_HEAD_DEPTH} heads deep") as caught:
        create_encoder(backbone)  # 9
    assert f"siamese@{tmp_path / f'h{MAX_HEAD_DEPTH}'}:" in str(caught.value)
