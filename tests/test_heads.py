import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch

from bias_lab.families import adapter_for, input_columns
from bias_lab.heads.ablation import ablated_value, score_heads
from bias_lab.heads.importance import gradient_importance, iterative_pruning
from bias_lab.heads.metrics import HeadMetric, bias_metric, perf_metric
from bias_lab.heads.selection import (baseline, effect_correlations, fasp, fasp_grid_sets, grid_matrix, head_magnitudes,
                                      pruned_spec)
from bias_lab.models import load_model
from bias_lab.neurons.prompts import ig2_prompts

from .conftest import ALL_FAMILIES, MASKED_FAMILIES, shared_path
from .planting import plant_bias_head

TEXTS = ["the doctor is here and she is very kind .", "this young person is honest .",
         "a man and a woman work in the city .", "the old farmer drives a car .", "they are happy people ."]


def _perf(loaded):
    return perf_metric(loaded, "mlm-loss", TEXTS) if loaded.kind == "masked" else perf_metric(loaded, "perplexity", TEXTS, max_length=16, stride=8)


def _zeroed_copy(loaded, layer, head):
    clone = copy.copy(loaded)
    clone.model = copy.deepcopy(loaded.model)
    clone.adapter = adapter_for(clone.model)
    projection = clone.adapter.attn_out(layer)
    size = loaded.head_size
    with torch.no_grad():
        projection.weight[input_columns(projection, slice(head * size, (head + 1) * size))] = 0.0
    return clone


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_ablation_score_equals_the_metric_of_a_zeroed_copy(tiny_loaded, family):
    loaded = tiny_loaded(family)
    perf = _perf(loaded)
    scores = score_heads(loaded, perf)
    assert len(scores.table) == loaded.num_layers * loaded.num_heads
    assert scores.baseline["perf"] == pytest.approx(perf(loaded))
    for layer, head in [(0, 1), (1, 3)]:
        row = scores.table[(scores.table["layer"] == layer) & (scores.table["head"] == head)].iloc[0]
        expected = perf(_zeroed_copy(loaded, layer, head))
        assert row["perf"] == pytest.approx(expected, rel=1e-5)
        assert row["perf_delta"] == pytest.approx(expected - scores.baseline["perf"], abs=1e-5)


@pytest.mark.parametrize("family", ["bert", "roberta", "gpt2", "llama", "modernbert"])
def test_cached_prefix_scoring_equals_full_forward_scoring(tiny_model_dir, family):
    loaded = load_model(tiny_model_dir(family, layers=3), device="cpu")
    perf = _perf(loaded)
    bias = bias_metric(loaded, "ig2-gap", ig2_prompts("gender", "N", "female", "male", limit_modifiers=1)) \
        if loaded.kind == "masked" else None
    naive = score_heads(loaded, perf, bias, use_prefix_cache=False, ablations_per_pass=1).table
    cached = score_heads(loaded, perf, bias, use_prefix_cache=True, ablations_per_pass=1).table
    pd.testing.assert_frame_equal(cached, naive, check_exact=True)
    for per_pass in (4, 3):  # all heads of a layer in one replicated pass; passes of 3 and 1
        batched = score_heads(loaded, perf, bias, use_prefix_cache=True, ablations_per_pass=per_pass).table
        pd.testing.assert_frame_equal(batched, naive, check_exact=False, rtol=1e-5, atol=1e-9)
    uncached_batched = score_heads(loaded, perf, bias, use_prefix_cache=False, ablations_per_pass=4).table
    pd.testing.assert_frame_equal(uncached_batched, naive, check_exact=False, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("family", MASKED_FAMILIES)
def test_planted_head_is_ranked_first_and_ablating_it_removes_the_effect(tiny_model_dir, family):
    from bias_lab.neurons.prompts import prepare_prompts

    loaded = load_model(tiny_model_dir(family), device="cpu")
    prompts = ig2_prompts("gender", "N", "female", "male", limit_modifiers=2)
    prepared = prepare_prompts(loaded, prompts).prompts
    site = plant_bias_head(loaded, [p.text for p in prepared], prepared[0].d1_id)
    bias = bias_metric(loaded, "ig2-gap", prompts)
    planted = bias(loaded)
    assert planted > 0.5
    scores = score_heads(loaded, perf_metric(loaded, "mlm-loss", TEXTS), bias).table
    first = scores.sort_values("bias_delta").iloc[0]
    assert (int(first["layer"]), int(first["head"])) == site
    assert first["bias"] <= 0.1 * planted


def test_fasp_on_the_published_gpt2_scores():
    data = json.loads(shared_path("data", "fasp", "head_contributions.json").read_text())["gpt2"]
    table = pd.DataFrame({"layer": [i // 12 for i in range(144)], "head": [i % 12 for i in range(144)],
                          "perf": data["cont_to_ppl"], "bias": data["cont_to_gender_and_sex_bias"]})
    grid = fasp(table, alpha=0.1, gamma=0.3)
    # By hand from the rule: ⌊0.3·144⌋ = 43 heads with the highest perplexity after removal are
    # protected (the 43rd has 45.106, the 44th 45.069); of the other 101, the ⌊0.1·144⌋ = 14 with the
    # lowest gender-and-sex bias after removal are pruned (the 14th 0.39201, the 15th 0.39230).
    expected = [11, 26, 49, 55, 57, 71, 89, 92, 99, 104, 118, 133, 135, 137]
    pruned = grid[grid["status"] == "pruned"]
    assert sorted((pruned["layer"] * 12 + pruned["head"]).tolist()) == expected
    assert (grid["status"] == "protected").sum() == 43
    spec = pruned_spec(grid)
    assert [(h.layer, h.head) for h in spec.heads][:3] == [(0, 11), (2, 2), (4, 1)]
    assert grid_matrix(grid).shape == (12, 12)
    sets = fasp_grid_sets(table, [0.0, 0.1], [0.3, 0.5])
    assert sets.set_index(["alpha", "gamma"]).loc[(0.1, 0.3), "count"] == 14
    assert sets.set_index(["alpha", "gamma"]).loc[(0.0, 0.5), "count"] == 0
    correlations = effect_correlations(pd.DataFrame({k: data[f"cont_to_{k}_bias"] for k in ("gender_and_sex", "race_ethnicity")}),
                                       ["gender_and_sex", "race_ethnicity"])
    assert correlations.shape == (2, 2) and correlations.iloc[0, 0] == pytest.approx(1.0)


def test_baselines():
    table = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "perf": [5.0, 1.0, 3.0, 2.0],
                          "bias": [0.1, 0.4, 0.3, 0.2]})
    assert baseline(table, "performance", 0.5).query("status == 'pruned'")["perf"].tolist() == [1.0, 2.0]
    assert baseline(table, "bias", 0.25).query("status == 'pruned'")["bias"].tolist() == [0.1]
    first = baseline(table, "random", 0.5, seed=3).query("status == 'pruned'").index.tolist()
    assert sorted(first) == sorted(table.sample(n=2, random_state=3).index.tolist())  # ⌊0.5·4⌋ rows, seed 3
    magnitude = baseline(table, "magnitude", 0.25, magnitudes=pd.Series([4.0, 3.0, 0.5, 9.0]))
    assert magnitude.query("status == 'pruned'")[["layer", "head"]].values.tolist() == [[1, 0]]
    with pytest.raises(Exception, match="alpha 1.5 must be between 0 and 1"):
        fasp(table, 1.5, 0.1)
    with pytest.raises(Exception, match="select more than the 4 heads"):
        fasp(table, 0.75, 0.5)


def test_head_magnitudes_by_hand(tiny_loaded):
    loaded = tiny_loaded("gpt2")  # Conv1D stores [in, out]: a head is a block of rows
    magnitudes = head_magnitudes(loaded)
    weight = loaded.adapter.attn_out(1).weight.detach()
    assert magnitudes[loaded.num_heads + 2] == pytest.approx(float(weight[16:24].norm()))


def test_michel_importance_normalised_and_pruned_heads(tiny_model_dir):
    # The values themselves are checked against finite differences of head weight columns in
    # tests/test_oracles_methods.py; here: the normalised range and pruned heads left out.
    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    normalized = gradient_importance(loaded, TEXTS[:2], batch_size=1)
    assert normalized["importance"].min() == pytest.approx(0) and normalized["importance"].max() == pytest.approx(1)
    pruned = gradient_importance(loaded, TEXTS[:2], pruned=[(0, 1)])
    assert np.isnan(pruned.loc[1, "importance"]) and pruned["importance"].notna().sum() == 7


def test_iterative_pruning_curve(tiny_loaded):
    loaded = tiny_loaded("gpt2")
    perf = perf_metric(loaded, "perplexity", TEXTS, max_length=16, stride=8)
    bias = HeadMetric("toy", lambda owner: perf(owner) / 10)
    curve = iterative_pruning(loaded, TEXTS, perf, bias, fraction=0.25, steps=3)
    assert curve["pruned"].tolist() == [0, 2, 4, 6]
    assert curve.loc[0, "perf"] == pytest.approx(perf(loaded))
    last = curve.iloc[-1]["heads"]
    assert len(set(map(tuple, last))) == 6
    assert curve.loc[3, "perf"] == pytest.approx(ablated_value(loaded, perf, [tuple(h) for h in last]))


def test_iterative_pruning_by_ablation_removes_the_cheapest_heads(tiny_loaded):
    loaded = tiny_loaded("bert")
    perf = perf_metric(loaded, "mlm-loss", TEXTS)
    curve = iterative_pruning(loaded, TEXTS, perf, fraction=0.25, steps=1, scores="ablation")
    single = score_heads(loaded, perf).table.sort_values(["perf", "layer", "head"])
    expected = [(int(r.layer), int(r.head)) for r in single.head(2).itertuples()]
    assert [tuple(h) for h in curve.iloc[1]["heads"]] == expected


def test_fasp_tradeoff_evaluates_each_pruned_set_once(tiny_loaded):
    from bias_lab.heads.selection import fasp_tradeoff

    loaded = tiny_loaded("bert")
    perf = perf_metric(loaded, "mlm-loss", TEXTS)
    calls = []
    bias = HeadMetric("toy", lambda owner: calls.append(1) or perf(owner) / 2)
    table = score_heads(loaded, perf, bias).table
    calls.clear()
    points = fasp_tradeoff(loaded, table, perf, bias, alphas=[0.0, 0.125, 0.25], gammas=[0.25, 0.5])
    assert len(points) == 6 and len(calls) == len({tuple(map(tuple, p)) for p in points["pruned"]})
    row = points[(points["alpha"] == 0.25) & (points["gamma"] == 0.25)].iloc[0]
    assert row["perf"] == pytest.approx(ablated_value(loaded, perf, [tuple(h) for h in row["pruned"]]))
    assert points[points["alpha"] == 0.0]["perf"].nunique() == 1
