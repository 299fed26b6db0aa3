"""Issue 16: `lookalike ingest` of a hostile folder accounts for every entry, and nothing ends in a traceback.

The CLI runs in a child process with file permissions enforced (tests/hostile.py), so the mode-000 file and
folder of the corpus are really unreadable even when the tests run as root.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hostile import (
    DUPLICATE,
    FAILED,
    INGESTED,
    NON_UTF8_BAD,
    NON_UTF8_GOOD,
    SKIPPED,
    UNREADABLE_FOLDER,
    make_hostile_corpus,
    run_with_permissions,
    shown,
)

from pipeline.core.config import StoreConfig
from pipeline.store import VectorStore

# Two ingests of the same folder into one store, each writing its own report; prints what each run did as JSON.
_CHILD = """
import json, os, sys, traceback
from typer.testing import CliRunner
from cli import app

root, store, locked = sys.argv[1:4]
try:
    os.listdir(locked)
    enforced = False
except PermissionError:
    enforced = True
runs = []
for report in sys.argv[4:]:
    args = ["ingest", root, "-c", "hostile", "-e", "phash", "--workers", "0", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--report", report, "--store", store])
    crash = result.exception if not isinstance(result.exception, SystemExit) else None
    trace = "".join(traceback.format_exception(crash)) if crash else ""
    runs.append({"exit_code": result.exit_code, "output": result.output, "traceback": trace})
print(json.dumps({"enforced": enforced, "runs": runs}))
"""

_COUNTS = ("seen", "ingested", "already present", "duplicate content", "no face", "failed", "skipped")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The corpus, its expected outcomes, and two CLI ingests of it (reports and store kept for the tests)."""
    tmp = tmp_path_factory.mktemp("hostile")
    root = tmp / "corpus"
    expected = make_hostile_corpus(root)
    reports = [tmp / "first.csv", tmp / "second.csv"]
    child = run_with_permissions(
        _CHILD, str(root), str(tmp / "store"), str(root / UNREADABLE_FOLDER), *map(str, reports)
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["enforced"], "the mode-000 folder was readable: the permission cases would not be real"
    frames = [_read_report(r) for r in reports]
    return {
        "root": root,
        "expected": expected,
        "runs": result["runs"],
        "stored": _stored(tmp / "store"),
        "reports": frames,
    }


def _stored(folder: Path) -> list[str]:
    """Payload paths in the store (none if a crashed run left no collection), so each test fails for its own reason."""
    store = VectorStore.open(StoreConfig(path=str(folder)))
    try:
        return [p["path"] for _, _, p in store.scroll("hostile")] if store.has_collection("hostile") else []
    finally:
        store.close()


def _read_report(path: Path) -> pl.DataFrame:
    """The report CSV, or no rows if the run wrote none."""
    if not path.exists():
        return pl.DataFrame(schema={name: pl.String for name in ("path", "status", "reason", "point_id", "encoder")})
    return pl.read_csv(path, infer_schema=False)


def _counts(output: str) -> dict[str, int]:
    """The summary line's counts, by name."""
    found = {name: re.search(rf"\b{name} (\d+)", output) for name in _COUNTS}
    assert all(found.values()), f"no summary line in the output:\n{output}"
    return {name: int(match[1]) for name, match in found.items() if match}


def test_both_runs_exit_3_without_a_traceback(hostile_run: dict[str, Any]) -> None:
    for run in hostile_run["runs"]:
        assert run["traceback"] == "", run["traceback"]
        assert "Traceback" not in run["output"]
        assert run["exit_code"] == 3, run["output"]


def test_every_entry_is_stored_or_reported_exactly_once(hostile_run: dict[str, Any]) -> None:
    root, expected = hostile_run["root"], hostile_run["expected"]
    report = hostile_run["reports"][0]
    rows = Counter(report["path"].to_list())
    assert all(n == 1 for n in rows.values()), [p for p, n in rows.items() if n > 1]
    assert Counter(hostile_run["stored"]) == Counter(
        shown(str((root / rel).resolve())) for rel, outcome in expected.items() if outcome == INGESTED
    )
    reported = {shown(str(root / rel)): outcome for rel, outcome in expected.items() if outcome != INGESTED}
    assert set(rows) == set(reported)
    for row in report.iter_rows(named=True):
        assert row["status"] == reported[row["path"]], row
        assert row["reason"], row


def test_unreadable_folder_is_a_failed_row(hostile_run: dict[str, Any]) -> None:
    report = hostile_run["reports"][0]
    [row] = report.filter(pl.col("path") == str(hostile_run["root"] / UNREADABLE_FOLDER)).iter_rows(named=True)
    assert (row["status"], row["reason"]) == ("failed", "cannot list folder: Permission denied")


def test_non_utf8_names_are_stored_and_reported_escaped(hostile_run: dict[str, Any]) -> None:
    root = str(hostile_run["root"])
    assert NON_UTF8_GOOD.endswith("good\udcff.png") and NON_UTF8_BAD.endswith("bad\udcfe.jpg")
    assert f"{root}/names/good\\xff.png" in hostile_run["stored"]
    assert f"{root}/names/bad\\xfe.jpg" in hostile_run["reports"][0]["path"].to_list()


def test_summary_counts_add_up_to_every_entry(hostile_run: dict[str, Any]) -> None:
    expected = Counter(hostile_run["expected"].values())
    counts = _counts(hostile_run["runs"][0]["output"])
    assert counts["seen"] == len(hostile_run["expected"])
    assert counts["seen"] == sum(v for k, v in counts.items() if k != "seen")
    assert (counts["ingested"], counts["duplicate content"]) == (expected[INGESTED], expected[DUPLICATE])
    assert (counts["failed"], counts["skipped"], counts["no face"]) == (expected[FAILED], expected[SKIPPED], 0)


def test_a_rerun_accounts_for_everything_again(hostile_run: dict[str, Any]) -> None:
    first, again = (_counts(run["output"]) for run in hostile_run["runs"])
    assert again["seen"] == first["seen"]
    assert (again["ingested"], again["already present"]) == (0, first["ingested"])
    assert {k: again[k] for k in ("duplicate content", "failed", "skipped")} == {
        k: first[k] for k in ("duplicate content", "failed", "skipped")
    }
    columns = ["path", "status", "reason"]
    assert (
        hostile_run["reports"][1]
        .select(columns)
        .sort("path")
        .equals(hostile_run["reports"][0].select(columns).sort("path"))
    )
