"""TLL submissions on a small synthetic dataset: format, order, calibration, and refusal of malformed input."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from fakes import GreyEncoder, TinyEncoder, write_tll

from pipeline.bench.tll_submit import SubmitConfig, check_submission, submit_tll
from pipeline.core.errors import DatasetError, LookalikeError, SubmissionError
from pipeline.evaluation.setup import EvalSetup, Scoring
from pipeline.index.collection import IndexedCollection
from pipeline.search.fusion import Calibration
from pipeline.store import VectorStore

N_CAND = 3


@pytest.fixture
def tll(tmp_path: Path) -> tuple[Path, list[int]]:
    root = tmp_path / "tll"
    return root, write_tll(root, n_train=20, n_test=5, n_candidates=N_CAND)


def _setup(store: VectorStore, tmp: Path, fused: bool = True) -> EvalSetup:
    index = IndexedCollection(
        store,
        "tll-test",
        (TinyEncoder(), GreyEncoder()) if fused else (TinyEncoder(),),
        torch.device("cpu"),
        batch_size=8,
        workers=0,
        progress=False,
        report_dir=tmp / "reports",
    )
    return EvalSetup(index)


def _config(tmp: Path, **kw: object) -> SubmitConfig:
    return SubmitConfig(tmp / "out" / "sub.csv", n_candidates=N_CAND, **kw)  # type: ignore[arg-type]


def test_submission_format_order_and_calibration(
    tll: tuple[Path, list[int]], vector_store: VectorStore, tmp_path: Path
) -> None:
    root, answers = tll
    result = submit_tll(_setup(vector_store, tmp_path), root, _config(tmp_path, validate=True))
    frame = pl.read_csv(result.out, infer_schema=False)
    sample = pl.read_csv(root / "sample-submission.csv", infer_schema=False)
    assert frame.columns == sample.columns == ["left", "c0", "c1", "c2"]
    assert frame["left"].to_list() == sample["left"].to_list() == [f"q{i:03d}" for i in range(5)]
    values = frame.drop("left").cast(pl.Float64).to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    np.testing.assert_allclose(values.sum(axis=1), 1.0, atol=1e-6)
    assert values.argmax(axis=1).tolist() == answers  # the noisy copy of the left image wins every row
    assert result.checked_against == str(root / "sample-submission.csv")
    loaded = Calibration.load(result.calibration_path)
    assert loaded.encoders == ("tiny:thumb8", "grey:4") and loaded.split["tasks"] == 16  # 20 pairs − 4 held out
    assert result.validation is not None and result.validation["tasks"] == 4
    assert {"top1", "top2", "top1[tiny:thumb8]", "top2[grey:4]"} <= set(result.validation)
    assert (tmp_path / "out" / "sub.run.json").is_file()


def test_a_saved_calibration_is_reused(tll: tuple[Path, list[int]], vector_store: VectorStore, tmp_path: Path) -> None:
    root, _ = tll
    first = submit_tll(_setup(vector_store, tmp_path), root, _config(tmp_path))
    again = SubmitConfig(tmp_path / "again.csv", n_candidates=N_CAND, calibration=first.calibration_path)
    second = submit_tll(_setup(vector_store, tmp_path), root, again)
    assert second.calibration == first.calibration
    assert pl.read_csv(second.out)["left"].equals(pl.read_csv(first.out)["left"])
    np.testing.assert_allclose(  # float32 similarities, sharpened by a small temperature
        pl.read_csv(second.out).drop("left").to_numpy(), pl.read_csv(first.out).drop("left").to_numpy(), rtol=1e-4
    )
    with pytest.raises(LookalikeError, match="was fitted for tiny:thumb8,grey:4, not tiny:thumb8"):
        submit_tll(_setup(vector_store, tmp_path, fused=False), root, again)
    with pytest.raises(LookalikeError, match=r"weights 'fit' \(fit new fusion weights\) with the saved calibration"):
        submit_tll(replace(_setup(vector_store, tmp_path), scoring=Scoring(fit_weights=True)), root, again)
    with pytest.raises(LookalikeError, match=r"fitted on scores with hubness correction 0, not 0\.25"):
        submit_tll(_setup(vector_store, tmp_path).with_hubness(0.25), root, again)


def test_single_encoder_submission(tll: tuple[Path, list[int]], vector_store: VectorStore, tmp_path: Path) -> None:
    root, answers = tll
    result = submit_tll(_setup(vector_store, tmp_path, fused=False), root, _config(tmp_path))
    values = pl.read_csv(result.out).drop("left").to_numpy()
    assert values.argmax(axis=1).tolist() == answers and result.calibration.weights == (1.0,)


def test_missing_image_is_named_and_nothing_is_written(
    tll: tuple[Path, list[int]], vector_store: VectorStore, tmp_path: Path
) -> None:
    root, _ = tll
    (root / "test" / "right" / "t002x1.jpg").unlink()
    with pytest.raises(DatasetError, match=r"t002x1\.jpg"):
        submit_tll(_setup(vector_store, tmp_path), root, _config(tmp_path))
    assert not (tmp_path / "out").exists()


def test_duplicate_left_id_is_refused(tll: tuple[Path, list[int]], vector_store: VectorStore, tmp_path: Path) -> None:
    root, _ = tll
    lines = (root / "test_candidates.csv").read_text().splitlines()
    (root / "test_candidates.csv").write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(DatasetError, match=r"test_candidates\.csv: line 7: left id 'q000' repeats line 2$"):
        submit_tll(_setup(vector_store, tmp_path), root, _config(tmp_path))


def test_sample_submission_mismatch_is_refused_before_any_work(
    tll: tuple[Path, list[int]], vector_store: VectorStore, tmp_path: Path
) -> None:
    root, _ = tll
    lines = (root / "sample-submission.csv").read_text().splitlines()
    (root / "sample-submission.csv").write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")
    with pytest.raises(SubmissionError, match=r"row 1: 'q000' vs 'q001'"):
        submit_tll(_setup(vector_store, tmp_path), root, _config(tmp_path))
    assert not vector_store.has_collection("tll-test") and not (tmp_path / "out").exists()


def test_extra_candidate_column_is_refused_before_any_work(
    tll: tuple[Path, list[int]], vector_store: VectorStore, tmp_path: Path
) -> None:
    # Regression (issue 16): an extra c20 column in test_candidates.csv was refused only when the finished
    # submission was checked against the sample, after all the embedding (140 s on the real dataset).
    root, _ = tll
    lines = (root / "test_candidates.csv").read_text().splitlines()
    extra = [f"{lines[0]},c3", *(f"{line},x{i}" for i, line in enumerate(lines[1:]))]
    (root / "test_candidates.csv").write_text("\n".join(extra) + "\n")
    header = (
        r"line 1: header is 'left,c0,c1,c2,c3'; expected left,c0,c1,c2 \(the columns of .*sample-submission\.csv\)$"
    )
    with pytest.raises(DatasetError, match=header):
        submit_tll(_setup(vector_store, tmp_path), root, _config(tmp_path))
    assert not vector_store.has_collection("tll-test") and not (tmp_path / "out").exists()


def test_too_few_right_images_for_validation_is_refused_before_any_work(
    tll: tuple[Path, list[int]], vector_store: VectorStore, tmp_path: Path
) -> None:
    root, _ = tll  # 20 pairs: 4 held out cannot make 5-candidate tasks; found before calibration, not after
    config = SubmitConfig(tmp_path / "out" / "sub.csv", n_candidates=5, validate=True)
    with pytest.raises(DatasetError, match="4 distinct right images cannot make 5-candidate tasks"):
        submit_tll(_setup(vector_store, tmp_path), root, config)
    assert not vector_store.has_collection("tll-test") and not (tmp_path / "out").exists()


def _frame(values: list[list[float]], lefts: tuple[str, ...] = ("a", "b")) -> pl.DataFrame:
    return pl.DataFrame({"left": list(lefts), **{f"c{j}": [row[j] for row in values] for j in range(2)}})


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_frame([[0.5, 0.5], [float("nan"), 1.0]]), "NaN or outside"),
        (_frame([[0.5, 0.5], [1.5, 0.0]]), r"row b column c0 = 1.5"),
        (_frame([[0.5, 0.5], [0.5, 0.5]], ("a", "a")), "repeats left ids: a"),
        (_frame([[0.5, 0.5], [0.5, 0.5]]).rename({"c1": "x"}), "columns left,c0,x"),
    ],
)
def test_check_submission_refuses_malformed_frames(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(SubmissionError, match=message):
        check_submission(frame, None)


def test_check_submission_against_a_sample(tmp_path: Path) -> None:
    sample = tmp_path / "sample.csv"
    sample.write_text("left,c0,c1\na,0.1,0.9\nb,0.3,0.7\n")
    check_submission(_frame([[0.5, 0.5], [0.2, 0.8]]), sample)
    with pytest.raises(SubmissionError, match="submission has 1 rows"):
        check_submission(_frame([[0.5, 0.5]], ("a",)), sample)
    with pytest.raises(SubmissionError, match="columns left,c0 != expected left,c0,c1"):
        check_submission(_frame([[0.5, 0.5], [0.2, 0.8]]).drop("c1"), sample)
    sample.write_text("left,c0,c1\na,0.1,0.9\nb,0.3\n")  # a ragged sample: one line, no polars message
    with pytest.raises(DatasetError, match=r"sample\.csv: line 3: 2 cells; the header has 3$"):
        check_submission(_frame([[0.5, 0.5], [0.2, 0.8]]), sample)
