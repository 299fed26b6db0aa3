"""Doctored Totally-Looks-Like datasets through the real CLI: one `error:` line naming the file, exit 2, no work.

Regression (issue 16's hostile-input campaign): a left id `../../…/outside/x` read an image outside the dataset
and went into the submission; an extra `c20` column was refused only after 140 s of embedding; a candidate
repeated within a row was accepted; header-only, non-UTF-8 and folder-instead-of-file CSVs, and a --val-fraction
that leaves an empty split, ended in tracebacks. Every case here is refused before an encoder is created or the
store is opened (the encoder factory is a tripwire, and the store folder must not exist).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fakes import write_tll
from typer.testing import CliRunner, Result

from cli import app

runner = CliRunner()
OUTSIDE = "../../../outside/x"  # from <root>/test/left (or train/right …): <root>/../outside/x.jpg
TRAIN, TEST, SAMPLE = "train.csv", "test_candidates.csv", "sample-submission.csv"
Mutation = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """A doctored dataset: how to doctor it, the file the error must name, and a fragment of that error."""

    name: str
    mutate: Mutation
    names: str
    says: str
    command: tuple[str, ...] = ("submit", "tll")
    args: tuple[str, ...] = field(default_factory=tuple)


def _edit(name: str, change: Callable[[list[str]], list[str]]) -> Mutation:
    def mutate(root: Path) -> None:
        path = root / name
        path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")

    return mutate


def _replace(names: tuple[str, ...], old: str, new: str) -> Mutation:
    def mutate(root: Path) -> None:
        for name in names:
            path = root / name
            path.write_text(path.read_text().replace(old, new))

    return mutate


def _image(*parts: str) -> Mutation:
    """Put a real image at <root>/<parts…> (so the old loader, which only looked for files, accepted the id)."""

    def mutate(root: Path) -> None:
        target = root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "train" / "left" / "l000.jpg", target)

    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(root: Path) -> None:
        for mutation in mutations:
            mutation(root)

    return mutate


def _write(name: str, data: bytes) -> Mutation:
    def mutate(root: Path) -> None:
        (root / name).write_bytes(data)

    return mutate


def _extra_column(root: Path) -> None:
    _edit(TEST, lambda lines: [f"{lines[0]},c3", *(f"{line},t{i:03d}x9" for i, line in enumerate(lines[1:]))])(root)
    for i in range(4):
        _image("test", "right", f"t{i:03d}x9.jpg")(root)


def _folder(name: str) -> Mutation:
    def mutate(root: Path) -> None:
        (root / name).unlink()
        (root / name).mkdir()

    return mutate


CASES = [
    Case(
        "traversal left id in test_candidates and sample",  # the campaign's reproduction
        _all(_replace((TEST, SAMPLE), "q001", OUTSIDE), _image("..", "outside", "x.jpg")),
        SAMPLE,
        f"line 3: left id {OUTSIDE!r} is not a plain file name (it has a path separator)",
    ),
    Case(
        "traversal candidate id in test_candidates",
        _all(_replace((TEST,), "t001x1", OUTSIDE), _image("..", "outside", "x.jpg")),
        TEST,
        f"line 3: c1 id {OUTSIDE!r} is not a plain file name",
    ),
    Case(
        "traversal left id in sample-submission",
        _replace((SAMPLE,), "q002", "../left/q002"),
        SAMPLE,
        "line 4: left id '../left/q002' is not a plain file name",
    ),
    Case(
        "traversal left id in train.csv",
        _all(_replace((TRAIN,), "l003", OUTSIDE), _image("..", "outside", "x.jpg")),
        TRAIN,
        f"line 5: left id {OUTSIDE!r} is not a plain file name",
    ),
    Case(
        "absolute right id in train.csv",
        _all(
            lambda root: _replace((TRAIN,), "r004", str(root.parent / "outside" / "x"))(root),
            _image("..", "outside", "x.jpg"),
        ),
        TRAIN,
        "line 6: right id '/",
    ),
    Case(
        "backslash in a candidate id",
        _all(_replace((TEST,), "t002x0", "..\\t002x0"), _image("test", "right", "..\\t002x0.jpg")),
        TEST,
        "line 4: c0 id '..\\\\t002x0' is not a plain file name (it has a path separator)",
    ),
    Case(
        "dot-dot candidate id",
        _all(_replace((TEST,), "t000x2", ".."), _image("test", "right", "...jpg")),
        TEST,
        "line 2: c2 id '..' is not a plain file name (it names a folder)",
    ),
    Case(
        "terminal escape in a train id",
        _all(_replace((TRAIN,), "r005", "r\x1b[2Jx"), _image("train", "right", "r\x1b[2Jx.jpg")),
        TRAIN,
        "line 7: right id 'r\\x1b[2Jx' is not a plain file name (it has a control character)",
    ),
    Case(
        "NUL byte in a train id",
        _replace((TRAIN,), "l006", "l\x00006"),
        TRAIN,
        "line 8: left id 'l\\x00006' is not a plain file name (it has a control character)",
    ),
    Case(
        "extra c20 column in test_candidates",  # the campaign's reproduction, with 3 candidates instead of 20
        _extra_column,
        TEST,
        "line 1: header is 'left,c0,c1,c2,c3'; expected left,c0,c1,c2 (the columns of",
    ),
    Case(
        "missing column in test_candidates",
        _edit(TEST, lambda lines: [line.rsplit(",", 1)[0] for line in lines]),
        TEST,
        "line 1: header is 'left,c0,c1'; expected left,c0,c1,c2",
    ),
    Case(
        "candidate repeated within a row",
        _replace((TEST,), "q002,t002x0,t002x1,t002x2", "q002,t002x0,t002x1,t002x0"),
        TEST,
        "line 4: candidate 't002x0' appears twice (c0 and c2)",
    ),
    Case(
        "duplicate left id in test_candidates",
        _replace((TEST,), "q003,", "q001,"),
        TEST,
        "line 5: left id 'q001' repeats line 3",
    ),
    Case(
        "duplicate left id in train.csv",
        _replace((TRAIN,), "l007,", "l002,"),
        TRAIN,
        "line 9: left id 'l002' repeats line 4",
        command=("eval", "candidates"),
    ),
    Case("empty sample-submission", _write(SAMPLE, b""), SAMPLE, "empty file"),
    Case(
        "header-only test_candidates",
        _edit(TEST, lambda lines: lines[:1]),
        TEST,
        "header only, no data rows",
    ),
    Case(
        "header-only train.csv",
        _edit(TRAIN, lambda lines: lines[:1]),
        TRAIN,
        "header only, no data rows",
        command=("eval", "candidates"),
    ),
    Case(
        "ragged row in test_candidates",
        _edit(TEST, lambda lines: [*lines[:2], lines[2] + ",t000x0", *lines[3:]]),
        TEST,
        "line 3: 5 cells; the header has 4",
    ),
    Case(
        "ragged row in sample-submission",
        _edit(SAMPLE, lambda lines: [*lines[:2], lines[2] + ",0.5", *lines[3:]]),
        SAMPLE,
        "line 3: 5 cells; the header has 4",
    ),
    Case(
        "non-UTF-8 byte in test_candidates",
        lambda root: _write(TEST, (root / TEST).read_bytes().replace(b"q002", b"q\xff02"))(root),
        TEST,
        "line 4: byte 0xff is not UTF-8",
    ),
    Case(
        "UTF-16 train.csv",
        lambda root: _write(TRAIN, (root / TRAIN).read_text().encode("utf-16"))(root),
        TRAIN,
        "line 1: byte 0xff is not UTF-8",
        command=("eval", "candidates"),
    ),
    Case(
        "test_candidates.csv is a folder",
        _folder(TEST),
        TEST,
        "not a regular file",
    ),
    Case(
        "missing image file",
        lambda root: (root / "test" / "right" / "t001x1.jpg").unlink(),
        TEST,
        "line 3: no image for c1 id 't001x1' at ",  # then the path it expected
    ),
    Case(
        "val-fraction leaving an empty split of train.csv",
        lambda root: None,
        TRAIN,
        "holding out 0.01 of its 20 pairs leaves an empty part",
        command=("eval", "candidates"),
        args=("--val-fraction", "0.01"),
    ),
]


class EncoderFactoryReached(AssertionError):
    """Raised by the tripwire: the dataset got past the checks and an encoder was about to be created."""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "tll"
    write_tll(root, n_train=20, n_test=4, n_candidates=3)
    return root


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise EncoderFactoryReached("encoder factory reached")

    monkeypatch.setattr("commands.common.create_encoder", refuse)


def _invoke(command: tuple[str, ...], root: Path, tmp_path: Path, *args: str) -> Result:
    out = ["--out", str(tmp_path / "out" / ("sub.csv" if command[0] == "submit" else "eval"))]
    options = ["-e", "phash:8", "--workers", "0", "--no-progress", "--n-candidates", "3"]
    return runner.invoke(
        app, [*command, "--dataset", str(root), *out, *options, *args, "--store", str(tmp_path / "store")]
    )


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_doctored_dataset_is_refused_in_one_line_before_any_work(
    case: Case, template: Path, tmp_path: Path, tripwire: None
) -> None:
    root = tmp_path / "tll"
    shutil.copytree(template, root)
    case.mutate(root)
    result = _invoke(case.command, root, tmp_path, *case.args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and not isinstance(result.exception, AssertionError)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert f"{root / case.names}: " in lines[0] and case.says in lines[0], lines[0]
    assert not (tmp_path / "out").exists()  # no submission, no eval report
    assert not (tmp_path / "store").exists()  # the store was never opened: no collection, nothing embedded


BAD_OPTIONS = [
    *((("eval", "candidates"), "--val-fraction", value) for value in ("1.0", "0", "-0.2", "1.5", "nan")),
    *((("submit", "tll"), "--val-fraction", value) for value in ("1", "0.0", "-1")),
    (("eval", "candidates"), "--n-candidates", "1"),
    (("submit", "tll"), "--n-candidates", "0"),
]


@pytest.mark.parametrize(
    ("command", "option", "value"), BAD_OPTIONS, ids=[f"{' '.join(c)} {o} {v}" for c, o, v in BAD_OPTIONS]
)
def test_an_out_of_range_split_option_is_refused_at_the_edge(
    command: tuple[str, ...], option: str, value: str, template: Path, tmp_path: Path, tripwire: None
) -> None:
    # Regression (issue 16): `eval candidates --val-fraction 1.0` (and 0, negative, > 1) ended in a ValueError
    # traceback from split_train; `--n-candidates 1` in one from candidate_tasks.
    result = _invoke(command, template, tmp_path, option, value)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output and f"'{option}'" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "store").exists()


def test_the_undoctored_dataset_passes_the_checks(template: Path, tmp_path: Path, tripwire: None) -> None:
    # The control for the table above: the same dataset, untouched, gets as far as creating the encoder.
    result = _invoke(("submit", "tll"), template, tmp_path)
    assert isinstance(result.exception, EncoderFactoryReached), (result.output, result.exception)


def test_an_image_that_is_not_an_image_is_counted_not_a_traceback(template: Path, tmp_path: Path) -> None:
    # An undecodable candidate cannot be checked without decoding it (the slow part), so it is not refused up
    # front: it is counted as failed, gets no score (confidence 0) and the rest of the submission is written.
    root = tmp_path / "tll"
    shutil.copytree(template, root)
    (root / "test" / "right" / "t001x1.jpg").write_bytes(b"GIF89a, but not really")
    result = _invoke(("submit", "tll"), root, tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output and " failed 1 " in result.output
    assert (tmp_path / "out" / "sub.csv").read_text().count("\n") == 5  # header + 4 rows
