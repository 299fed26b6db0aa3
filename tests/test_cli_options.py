"""Out-of-range option values are refused at the CLI edge: exit 2, the option named, no traceback.

Regression (issue 16's hostile-input campaign): `query -k 0` / `-k -1`, `--batch-size 0`, `--workers -1` and
`--max-pixels 0` ended in tracebacks, and `ingest --limit -5` silently ingested all but the last 5 images.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
BAD = [
    (["query", "x.jpg", "-c", "c", "-k", "0"], "-k"),
    (["query", "x.jpg", "-c", "c", "-k", "-1"], "-k"),
    (["ingest", "imgs", "-c", "c", "--batch-size", "0"], "--batch-size"),
    (["ingest", "imgs", "-c", "c", "--workers", "-1"], "--workers"),
    (["ingest", "imgs", "-c", "c", "--max-pixels", "0"], "--max-pixels"),
    (["ingest", "imgs", "-c", "c", "--limit", "-5"], "--limit"),
    (["ingest", "imgs", "-c", "c", "--limit", "0"], "--limit"),
    (["eval", "retrieval", "--dataset", "imgs", "-e", "phash", "-k", "0"], "-k"),
    (["eval", "retrieval", "--dataset", "imgs", "-e", "phash", "--limit", "-1"], "--limit"),
    (["eval", "copies", "bench", "-e", "phash", "-k", "0"], "-k"),
    (["dedup", "-c", "c", "--k", "0"], "--k"),
    (["finetune", "--data", "imgs", "--batch-size", "0"], "--batch-size"),
]


@pytest.mark.parametrize(("args", "option"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_an_out_of_range_value_is_refused_before_any_work(args: list[str], option: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*args, "--store", str(tmp_path / "store")] if args[0] != "finetune" else args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and f"'{option}'" in result.output
    assert not (tmp_path / "store").exists()  # refused before the store was opened
