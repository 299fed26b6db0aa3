"""Fusion maths against hand-computed values; calibration fitting and its JSON round trip."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import LookalikeError
from pipeline.search.fusion import (
    Calibration,
    confidences,
    fit_calibration,
    fit_normalisation,
    fit_temperature,
    fit_weights,
    fuse_scores,
    label_free_calibration,
    nll,
    parse_encoder_list,
    parse_weights,
    parse_weights_or_fit,
)

NAN = np.nan
# Two encoders, two queries, four candidates. Row 0: A scores c0, c1; B scores c0, c1, c2; nobody scores c3.
# Row 1: the query has no vector for either encoder.
SCORES = np.array(
    [
        [[1.0, 0.5, NAN, NAN], [NAN, NAN, NAN, NAN]],  # encoder A
        [[0.2, 0.6, 0.4, NAN], [NAN, NAN, NAN, NAN]],  # encoder B
    ]
)
MEAN, STD, WEIGHTS = (0.5, 0.4), (0.25, 0.1), (0.25, 0.75)


def test_fuse_by_hand() -> None:
    # z_A = (2, 0, -, -), z_B = (-2, 2, 0, -)
    # c0: 0.25·2 + 0.75·(−2) = −1 · c1: 0.25·0 + 0.75·2 = 1.5 · c2: only B → 0.75·0 / 0.75 = 0 · c3: nobody → NaN
    fused = fuse_scores(SCORES, MEAN, STD, WEIGHTS)
    np.testing.assert_allclose(fused[0, :3], [-1.0, 1.5, 0.0])
    assert math.isnan(fused[0, 3]) and np.isnan(fused[1]).all()


def test_no_face_leaves_the_other_encoder_to_decide_alone() -> None:
    only_b = SCORES.copy()
    only_b[0] = NAN  # encoder A has no vector anywhere (e.g. no face in any image)
    fused = fuse_scores(only_b, MEAN, STD, WEIGHTS)
    np.testing.assert_allclose(fused[0, :3], [(0.2 - 0.4) / 0.1, (0.6 - 0.4) / 0.1, 0.0])


def test_a_zero_weight_encoder_alone_gives_no_score() -> None:
    fused = fuse_scores(SCORES, MEAN, STD, (1.0, 0.0))
    np.testing.assert_allclose(fused[0, :2], [2.0, 0.0])
    assert math.isnan(fused[0, 2])  # only B scored it, and B weighs nothing


def test_confidences_by_hand() -> None:
    fused = fuse_scores(SCORES, MEAN, STD, WEIGHTS)
    conf = confidences(fused, temperature=0.5)
    e = np.exp([-2.0, 3.0, 0.0])  # fused / T
    np.testing.assert_allclose(conf[0], [*(e / e.sum()), 0.0])  # unscored → 0, the lowest
    np.testing.assert_allclose(conf[1], [0.25] * 4)  # no score at all → uniform
    assert np.isfinite(conf).all() and (conf >= 0).all() and (conf <= 1).all()


def test_confidences_do_not_overflow() -> None:
    conf = confidences(np.array([[1e6, -1e6, 0.0]]), temperature=1e-3)
    np.testing.assert_allclose(conf, [[1.0, 0.0, 0.0]])


def test_normalisation_is_per_encoder_over_finite_scores() -> None:
    mean, std = fit_normalisation(SCORES)
    assert mean == pytest.approx((0.75, 0.4)) and std == pytest.approx((0.25, np.std([0.2, 0.6, 0.4])))
    assert fit_normalisation(np.full((1, 2, 3), 0.7)) == ((pytest.approx(0.7),), (1.0,))  # constant → std 1
    assert fit_normalisation(np.full((1, 2, 3), NAN)) == ((0.0,), (1.0,))


def test_temperature_fit_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    fused = rng.normal(size=(4000, 20))
    true_t = 0.5
    answers = np.argmax(fused / true_t + rng.gumbel(size=fused.shape), axis=1)  # samples from softmax(f / T)
    temperature, loss = fit_temperature(fused, answers)
    assert temperature == pytest.approx(true_t, rel=0.1)
    assert loss is not None and loss < nll(fused, answers, 1.0) and loss < nll(fused, answers, 0.25)


def test_temperature_fit_without_usable_rows_is_neutral() -> None:
    assert fit_temperature(np.full((3, 4), NAN), np.zeros(3, dtype=int)) == (1.0, None)


def test_fit_calibration_and_json_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(300, 10))
    answers = signal.argmax(axis=1)
    noise = rng.normal(scale=0.5, size=(2, *signal.shape))
    scores = np.stack([10 * (signal + noise[0]), 0.1 * (signal + noise[1])])  # same signal, scales 100× apart
    calibration = fit_calibration(scores, answers, ("a", "b"), (0.5, 0.5), seed=3, split={"tasks": 300})
    assert calibration.std == pytest.approx(
        (10 * math.sqrt(1.25), 0.1 * math.sqrt(1.25)), rel=0.1
    )  # each scale taken out
    fused_top1 = (calibration.confidences(scores).argmax(axis=1) == answers).mean()
    alone_top1 = [(layer.argmax(axis=1) == answers).mean() for layer in scores]
    assert fused_top1 > max(alone_top1)  # independent noise averages out
    loaded = Calibration.load(calibration.write_json(tmp_path / "cal.json"))
    assert loaded == calibration
    np.testing.assert_allclose(loaded.confidences(scores), calibration.confidences(scores))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(LookalikeError, match="cannot read calibration"):
        Calibration.load(tmp_path / "bad.json")


def test_label_free_calibration_takes_each_scale_out_without_answers() -> None:
    rng = np.random.default_rng(2)
    signal = rng.normal(size=(300, 10))
    answers = signal.argmax(axis=1)
    noise = rng.normal(scale=0.5, size=(2, *signal.shape))
    scores = np.stack([10 * (signal + noise[0]) + 3, 0.1 * (signal + noise[1])])
    calibration = label_free_calibration(scores, ("a", "b"), (0.5, 0.5))
    assert calibration.mean[0] == pytest.approx(3, abs=0.5) and calibration.std[1] == pytest.approx(0.112, rel=0.1)
    assert calibration.temperature == 1.0 and "without their answers" in calibration.split["source"]
    fused_top1 = (calibration.fuse(scores).argmax(axis=1) == answers).mean()
    assert fused_top1 > max((layer.argmax(axis=1) == answers).mean() for layer in scores)


def test_parse_weights() -> None:
    assert parse_weights(None, 2) == (0.5, 0.5)
    assert parse_weights("1,3", 2) == (0.25, 0.75)
    assert parse_weights("0.34,0.66", 2) == pytest.approx((0.34, 0.66))
    for bad, message in [("1", "1 weights for 2"), ("a,b", "numbers"), ("-1,2", "≥ 0"), ("0,0", "not all 0")]:
        with pytest.raises(LookalikeError, match=message):
            parse_weights(bad, 2)


def test_fitted_weights_favour_the_informative_encoder() -> None:
    rng = np.random.default_rng(2)
    signal = rng.normal(size=(500, 10))
    answers = signal.argmax(axis=1)
    scores = np.stack([signal + 0.5 * rng.normal(size=signal.shape), rng.normal(size=signal.shape)])  # B is noise
    mean, std = fit_normalisation(scores)
    weights, temperature, loss = fit_weights(scores, answers, mean, std)
    assert weights[0] > 0.9 and sum(weights) == pytest.approx(1.0) and temperature > 0
    assert loss is not None and loss < nll(fuse_scores(scores, mean, std, (0.5, 0.5)), answers, temperature)
    calibration = fit_calibration(scores, answers, ("a", "b"), None)
    assert calibration.weights_fitted and calibration.weights == pytest.approx(weights)


def test_weights_fit_is_parsed_only_where_it_can_be_fitted() -> None:
    assert parse_weights_or_fit("fit", 2) is None and parse_weights_or_fit("1,1", 2) == (0.5, 0.5)
    with pytest.raises(LookalikeError, match="weights 'fit' needs training pairs"):
        parse_weights("fit", 2)


def test_parse_encoder_list() -> None:
    assert parse_encoder_list("dlib, clip:ViT-B-32@none") == ("dlib", "clip:ViT-B-32@none")
    for bad in ("dlib,,phash", "dlib,dlib", ""):
        with pytest.raises(LookalikeError, match="distinct comma-separated"):
            parse_encoder_list(bad)
