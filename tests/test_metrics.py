"""Metric arithmetic against hand-computed fixtures."""

import math

import numpy as np
import pandas as pd
import pytest

from bias_lab.evaluation.crows import crows_metrics, shared_positions
from bias_lab.evaluation.seat import association, effect_size, p_value, seat_test
from bias_lab.evaluation.stereoset import fill_word, stereoset_metrics


def _stereoset_items(examples):
    rows = []
    for example_id, target, domain, stereo, anti, unrelated in examples:
        for label, score in (("stereotype", stereo), ("anti-stereotype", anti), ("unrelated", unrelated)):
            rows.append({"example_id": example_id, "target": target, "bias_type": domain, "gold_label": label,
                         "score": score})
    return pd.DataFrame(rows)


def test_stereoset_metrics_with_ties_and_per_target_averaging():
    items = _stereoset_items([
        ("e1", "nurse", "gender", 0.5, 0.3, 0.1),   # stereo > anti; both above unrelated
        ("e2", "nurse", "gender", 0.2, 0.2, 0.3),   # a tie counts as anti; both below unrelated
        ("e3", "Norway", "race", 0.1, 0.4, 0.05),   # anti wins; both above unrelated
    ])
    metrics = stereoset_metrics(items)
    # nurse: SS 50, LMS 50; Norway: SS 0, LMS 100. Averages over targets: SS 25, LMS 75.
    assert metrics["overall"] == {"ss": 25.0, "lms": 75.0, "icat": 37.5, "count": 3}
    assert metrics["gender"] == {"ss": 50.0, "lms": 50.0, "icat": 50.0, "count": 2}
    assert metrics["race"] == {"ss": 0.0, "lms": 100.0, "icat": 0.0, "count": 1}
    assert "religion" not in metrics


def test_per_target_average_differs_from_pooled_counts():
    items = _stereoset_items([("a", "t1", "race", 1, 0, 0), ("b", "t1", "race", 1, 0, 0), ("c", "t1", "race", 1, 0, 0),
                              ("d", "t2", "race", 0, 1, 0)])
    # Pooled would be 75; per target it is mean(100, 0) = 50.
    assert stereoset_metrics(items)["overall"]["ss"] == 50.0


def test_fill_word_takes_the_word_at_blank_without_punctuation():
    assert fill_word("The chess player was BLANK.", "The chess player was asian.") == "asian"
    assert fill_word("BLANK people are here.", "Crazy, people are here.") == "Crazy"


def test_crows_metric_rounds_to_three_decimals_and_counts_ties_as_neutral():
    items = pd.DataFrame({
        "bias_type": ["gender", "gender", "race"], "direction": ["stereo", "antistereo", "stereo"],
        "score_more": [-10.0004, -5.0, -7.0], "score_less": [-10.0001, -6.0, -3.0],
    })
    metrics = crows_metrics(items)
    assert metrics["overall"]["metric"] == pytest.approx(100 / 3)
    assert metrics["overall"]["neutral"] == 1 and metrics["overall"]["count"] == 3
    assert metrics["by_bias_type"]["gender"]["metric"] == 50.0
    assert metrics["by_bias_type"]["race"]["metric"] == 0.0


def test_shared_positions_follow_difflib():
    first, second = [101, 5, 6, 7, 102], [101, 5, 9, 7, 102]
    assert shared_positions(first, second) == ([0, 1, 3, 4], [0, 1, 3, 4])


def test_seat_association_and_effect_size_by_hand():
    words = np.array([[1.0, 0.0], [0.0, 2.0]])
    a, b = np.array([[3.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    # w1: cos(w1,a)=1; cos to b: 0 and 1/√2 → s = 1 − 1/(2√2). w2: 0 − (1 + 1/√2)/2.
    expected = [1 - 1 / (2 * math.sqrt(2)), -(1 + 1 / math.sqrt(2)) / 2]
    np.testing.assert_allclose(association(words, a, b), expected)
    s_x, s_y = np.array([1.0, 2.0]), np.array([0.0, -1.0])
    assert effect_size(s_x, s_y) == pytest.approx(2.0 / math.sqrt(5 / 3))


def test_seat_exact_p_value_by_hand():
    # Partitions of {1, 2, 0, −1} into two pairs: X-sums 3, 1, 0, 2, 1, −1; only the observed reaches 3.
    p, exact = p_value(np.array([1.0, 2.0]), np.array([0.0, -1.0]))
    assert exact and p == pytest.approx(1 / 6)
    # Ties count as reaching the observed sum (the conservative test).
    p, _ = p_value(np.array([1.0, 0.0]), np.array([1.0, 0.0]))
    assert p == pytest.approx(5 / 6)  # sums 1, 2, 1, 1, 0, 1 against the observed 1


def test_seat_sampled_p_value_is_seeded_and_close_to_exact():
    rng = np.random.default_rng(3)
    s_x, s_y = rng.normal(0.3, 1, 8), rng.normal(0, 1, 8)
    exact, is_exact = p_value(s_x, s_y)
    assert is_exact  # C(16, 8) = 12870 ≤ 100000
    sampled, is_exact = p_value(s_x, s_y, samples=5000, seed=1)
    assert not is_exact and abs(sampled - exact) < 0.03
    assert p_value(s_x, s_y, samples=5000, seed=1) == (sampled, False)


def test_seat_test_reports_sizes():
    rng = np.random.default_rng(0)
    vectors = {"targ1": rng.normal(size=(3, 4)), "targ2": rng.normal(size=(3, 4)),
               "attr1": rng.normal(size=(2, 4)), "attr2": rng.normal(size=(5, 4))}
    result = seat_test(vectors)
    assert result["n_target"] == 6 and result["n_attribute"] == 7 and result["exact"]
    s_x = association(vectors["targ1"], vectors["attr1"], vectors["attr2"])
    s_y = association(vectors["targ2"], vectors["attr1"], vectors["attr2"])
    assert result["effect_size"] == pytest.approx(effect_size(s_x, s_y))


def test_winobias_preference_by_hand():
    from bias_lab.evaluation.winobias import winobias_metrics

    items = pd.DataFrame({"type": [1, 1, 1, 2, 2], "split": ["dev", "dev", "test", "dev", "test"],
                          "score_pro": [-1.0, -2.0, -3.0, -4.0, -5.0], "score_anti": [-2.0, -1.0, -3.0, -5.0, -6.0]})
    metrics = winobias_metrics(items)
    # Pro wins in pairs 0, 3, 4; pair 2 is a tie (no preference for pro).
    assert metrics["overall"] == {"preference": 60.0, "count": 5}
    assert metrics["type1-dev"] == {"preference": 50.0, "count": 2}
    assert metrics["type1"] == {"preference": pytest.approx(100 / 3), "count": 3}
    assert metrics["type2"] == {"preference": 100.0, "count": 2}
