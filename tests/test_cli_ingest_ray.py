"""`lookalike ingest --ray` (issue 20): the output, report and points of the plain command, on a local Ray shared by
the session; without Ray installed a one-line hint; and the plain command never imports Ray."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from pipeline.store import VectorStore
from pipeline.store.edge import EdgeBackend

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install 'lookalike[ray]'"
)


@pytest.fixture(scope="session")
def local_ray() -> Iterator[Any]:
    """One local Ray (2 CPUs) for the session; `--ray local` uses the one this process started already."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()


def _ingest(source: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    args = ["ingest", str(source), "-c", "imgs", "-e", "phash", "--workers", "0", "--no-progress", *extra]
    result = runner.invoke(app, [*args, "--report", str(out / "report.csv"), "--store", str(out / "qdrant")])
    untimed = re.sub(r"\([\d.]+ img/s, [\d.]+ s\)", "(…)", result.output.replace(str(out), "OUT"))
    return result.exit_code, untimed, (out / "report.csv").read_text()


def _points(folder: Path) -> list[tuple[str, Any, dict[str, Any]]]:
    with VectorStore(EdgeBackend(folder)) as store:
        return sorted((pid, v.tolist(), p) for pid, v, p in store.scroll("imgs", "phash-8"))  # type: ignore[union-attr]


@needs_ray
def test_ingest_on_ray_prints_reports_and_stores_what_the_plain_command_does(
    local_ray: Any, mixed_image_folder: Any, tmp_path: Path
) -> None:
    plain = _ingest(mixed_image_folder.root, tmp_path / "plain")
    on_ray = _ingest(mixed_image_folder.root, tmp_path / "ray", "--ray", "local")
    assert on_ray[1] == plain[1]  # what it printed, timings aside
    assert on_ray[2] == plain[2]  # the report, byte for byte
    assert on_ray[0] == plain[0] == 3  # some inputs failed
    assert "ingested 7" in plain[1] and "truncated.jpg" in plain[2]
    assert _points(tmp_path / "ray" / "qdrant") == _points(tmp_path / "plain" / "qdrant")


def test_ingest_on_ray_without_ray_installed_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "imgs").mkdir()
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    args = ["ingest", str(tmp_path / "imgs"), "-c", "c", "--ray", "local", "-e", "phash"]
    result = runner.invoke(app, [*args, "--store", str(tmp_path / "store")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "pip install 'lookalike[ray]'" in result.output
    assert not (tmp_path / "store").exists()  # said before the store was opened


def test_the_plain_ingest_never_imports_ray(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    code = (
        "import sys; from typer.testing import CliRunner; from cli import app; "
        f"r = CliRunner().invoke(app, ['ingest', {str(tmp_path / 'imgs')!r}, '-c', 'c', '-e', 'phash', '--store', "
        f"{str(tmp_path / 'store')!r}, '--no-progress']); "
        "print(r.exit_code, 'ray' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    assert done.stdout.split()[-2:] == ["0", "False"]
