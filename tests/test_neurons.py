import pandas as pd
import pytest
import torch

from bias_lab.neurons import IG2Settings, attribute_ig2
from bias_lab.errors import BiasLabError
from bias_lab.models import load_model
from bias_lab.neurons import (SelectionSettings, compare_layer_distributions, gaps, intersection_statistics,
                              neuron_spec, neurons_per_dimension, neurons_per_layer, select_bias_neurons, union_ig,
                              verify_neurons)
from bias_lab.neurons.prompts import ig2_prompts, prepare_prompts

from .planting import plant_bias_neuron

LAYERS, NEURONS = 2, 4


def _frame(bags: list[str], templates: list[int] | None = None, pair=("female", "male"), kind="N"):
    n = len(bags)
    return pd.DataFrame({"id": [f"p{i}" for i in range(n)], "d1": [pair[0]] * n, "d2": [pair[1]] * n,
                         "modifier_type": [kind] * n, "modifier": bags, "dimension": ["gender"] * n,
                         "template": templates or list(range(1, n + 1))})


def _scores(entries: list[dict[tuple[int, int], float]]) -> torch.Tensor:
    scores = torch.full((len(entries), LAYERS, NEURONS), 0.01)
    for row, values in enumerate(entries):
        for (layer, neuron), value in values.items():
            scores[row, layer, neuron] = value
    return scores


def test_selection_on_a_hand_computed_fixture():
    # Bag A: (0,0) in all three prompts; (1,2) in two; (1,3) in one. "Never fewer than 3 prompts"
    # keeps only (0,0), however far p is lowered. Bag B: (1,1) and (0,3) in all three prompts.
    entries = [
        {(0, 0): 1.0, (1, 2): 0.5}, {(0, 0): 1.0, (1, 2): 0.1, (1, 3): 0.3}, {(0, 0): 0.8, (1, 2): 0.9},
        {(1, 1): 1.0, (0, 3): 0.5}, {(1, 1): 1.0, (0, 3): 0.5}, {(1, 1): 1.0, (0, 3): 0.5},
    ]
    scores = _scores(entries)
    table = select_bias_neurons(scores, _frame(["a", "a", "a", "b", "b", "b"]))
    assert set(zip(table["layer"], table["neuron"])) == {(0, 0), (1, 1), (0, 3)}
    assert (table["frequency"] == 0.5).all() and (table["bags"] == 1).all() and (table["jut"] == "N:female-male").all()
    row = table[(table["layer"] == 0) & (table["neuron"] == 0)].iloc[0]
    assert row["mean_score"] == pytest.approx((1.0 + 1.0 + 0.8 + 3 * 0.01) / 6)
    # With a JUT threshold above one bag in two, nothing survives.
    assert select_bias_neurons(scores, _frame(["a"] * 3 + ["b"] * 3), SelectionSettings(jut_ratio=0.6)).empty


def test_adaptive_bag_threshold_moves_toward_two_to_five_neurons():
    # Ten prompts of one bag; neurons 0..6 are present in 10, 9, 8, 7, 7, 7, 6 prompts.
    presence = [10, 9, 8, 7, 7, 7, 6]
    entries = []
    for prompt in range(10):
        entries.append({(1 if j >= 4 else 0, j % 4): 1.0 for j, count in enumerate(presence) if prompt < count})
    scores = _scores(entries)
    table = select_bias_neurons(scores, _frame(["x"] * 10))
    # p = 70 % → 6 neurons (too many) → p = 75 % → 8 prompts needed → neurons present in 10, 9, 8.
    assert sorted(zip(table["layer"], table["neuron"])) == [(0, 0), (0, 1), (0, 2)]
    lenient = select_bias_neurons(scores, _frame(["x"] * 10), SelectionSettings(bag_max_neurons=6))
    assert len(lenient) == 6


def test_prompt_ratio_is_relative_to_the_prompts_maximum():
    scores = _scores([{(0, 0): 10.0, (0, 1): 2.0, (0, 2): 1.99}] * 3)
    table = select_bias_neurons(scores, _frame(["a"] * 3))
    assert sorted(table["neuron"]) == [0, 1]


def test_bad_settings_and_shapes():
    with pytest.raises(BiasLabError, match="prompt-ratio 1.5 must be in"):
        select_bias_neurons(_scores([{}]), _frame(["a"]), SelectionSettings(prompt_ratio=1.5))
    with pytest.raises(BiasLabError, match="do not match 2 prompts"):
        select_bias_neurons(_scores([{}]), _frame(["a", "b"]))


def test_analyses():
    table = pd.DataFrame({"jut": ["N:a-b", "N:a-b", "P:a-b"], "layer": [0, 1, 1], "neuron": [3, 2, 2],
                          "frequency": [1, 1, 1], "bags": [1, 1, 1], "mean_score": [1, 1, 1]})
    assert neurons_per_layer(table, 3)["count"].tolist() == [1, 1, 0]
    per_layer, summary = compare_layer_distributions({"m1": table, "m2": table[table["layer"] == 1]}, 3, edge=1)
    assert per_layer[per_layer["model"] == "m2"]["count"].tolist() == [0, 1, 0]
    assert summary.set_index("model").loc["m1", "shallow_share"] == 0.5
    prompts = pd.DataFrame({"d1": ["a", "a"], "d2": ["b", "b"], "modifier_type": ["N", "P"], "dimension": ["age", "age"]})
    assert neurons_per_dimension(table, prompts).to_dict("records") == [{"dimension": "age", "juts": 2, "mean_neurons": 1.5}]


def test_intersection_statistics_on_the_fixture():
    entries = [{(0, 0): 1.0}] * 3 + [{(1, 1): 1.0}] * 3
    frame = pd.concat([_frame(["a", "b", "c"], [1, 1, 2]), _frame(["a", "b", "c"], [1, 1, 2], kind="P")],
                      ignore_index=True)
    stats = intersection_statistics(_scores(entries), frame, SelectionSettings(bag_min_prompts=1)).set_index("statistic")
    # Within each JUT both templates select the same single neuron; the two JUTs share nothing.
    assert stats.loc["avg_intra", "mean_intersection"] == 1.0 and stats.loc["avg_intra", "mean_jaccard"] == 1.0
    assert stats.loc["avg_inter", "mean_intersection"] == 0.0


@pytest.fixture
def planted(tiny_model_dir):
    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    prepared = prepare_prompts(loaded, ig2_prompts("gender", "N", "female", "male", limit_modifiers=3)).prompts
    site = plant_bias_neuron(loaded, [p.text for p in prepared], prepared[0].d1_id)
    return loaded, prepared, site


def test_selection_and_verification_on_a_planted_neuron(planted):
    loaded, prepared, (layer, neuron) = planted
    results = attribute_ig2(loaded, prepared, IG2Settings(steps=10))
    scores = torch.stack([r.scores for r in results])
    frame = pd.DataFrame([r.prompt.to_dict() for r in results])
    table = select_bias_neurons(scores, frame)
    assert (layer, neuron) in set(zip(table["layer"], table["neuron"]))
    assert table.iloc[0][["layer", "neuron"]].tolist() == [layer, neuron]
    verification = verify_neurons(loaded, prepared, table, draws=3, seed=1).set_index(["mode", "method"])
    assert verification.loc[("suppress", "ig2"), "change_pct_mean"] < -90
    assert len({p.prompt.jut for p in prepared}) == 1
    before = gaps(loaded, prepared).double().sum()
    for mode, scale in (("suppress", 0.0), ("amplify", 2.0)):  # 100·(Σ after − Σ before) / Σ before, one JUT
        after = gaps(loaded, prepared, neuron_spec(table, scale)).double().sum()
        expected = float(100 * (after - before) / before)
        assert verification.loc[(mode, "ig2"), "change_pct_mean"] == pytest.approx(expected, rel=1e-6)
    assert verification.loc[("amplify", "ig2"), "prompts"] == len(prepared)
    assert abs(verification.loc[("suppress", "random"), "change_pct_mean"]) < 20
    assert verification.loc[("suppress", "random"), "draws"] == 3
    spec = neuron_spec(table, 2.0)
    assert spec.position == "mask" and {e.scale for e in spec.neurons} == {2.0}


def test_union_ig_contains_the_planted_neuron(planted):
    loaded, prepared, (layer, neuron) = planted
    frame = pd.DataFrame([p.prompt.to_dict() for p in prepared])
    per_target = {t: torch.stack([r.scores for r in attribute_ig2(loaded, prepared, IG2Settings(steps=8, target=t))])
                  for t in ("d1", "d2")}
    table = union_ig(per_target["d1"], per_target["d2"], frame)
    assert (layer, neuron) in set(zip(table["layer"], table["neuron"]))
    assert set(table["source"]) <= {"d1", "d2", "d1+d2"}
