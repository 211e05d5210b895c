import copy

import pandas as pd
import pytest
import torch

from bias_lab.errors import BiasLabError
from bias_lab.families import adapter_for
from bias_lab.interventions import InterventionSpec, intervene
from bias_lab.models import load_model
from bias_lab.pruning.layout import expand, logical_shape, parse_block, pruned_sites
from bias_lab.pruning.masks import MaskSet, Scores, applied, densities, surviving_heads, threshold_schedule

from .conftest import ALL_FAMILIES

SENTENCES = ["the doctor is here .", "this young person is very kind and honest ."]


def _logits(loaded):
    batch = loaded.tokenizer(SENTENCES, return_tensors="pt", padding=True)
    with torch.no_grad():
        return loaded.model(**batch).logits


def _random_masks(loaded, block, seed=0, keep=0.6):
    generator = torch.Generator().manual_seed(seed)
    scores = Scores(loaded, block)
    with torch.no_grad():
        for parameter in scores.scores.values():
            parameter.copy_(torch.rand(parameter.shape, generator=generator) - (1 - keep))
    scores.threshold = 0.5
    return scores.to_masks({"model": loaded.source})


def _weight_edited(loaded, masks):
    """A copy of ``loaded`` whose weights are multiplied by the mask (a bias entry zeroed with its row)."""
    clone = copy.copy(loaded)
    clone.model = copy.deepcopy(loaded.model)
    clone.adapter = adapter_for(clone.model)
    with torch.no_grad():
        for site in pruned_sites(clone, "unstructured"):
            if site.key in masks.masks:
                matrix = expand(masks.masks[site.key].float(), site.shape, masks.block, site, loaded.head_size)
                site.module.weight.mul_(matrix.T if type(site.module).__name__ == "Conv1D" else matrix)
                if site.module.bias is not None:
                    site.module.bias.mul_((matrix.amax(dim=1) > 0).float())
    return clone


@pytest.mark.parametrize("family", ALL_FAMILIES)
@pytest.mark.parametrize("block", [4, "unstructured", "neuron"])
def test_mask_round_trip_equals_weight_edit_and_unloads_bit_identically(tiny_loaded, tmp_path, family, block):
    loaded = tiny_loaded(family)
    original = _logits(loaded)
    masks = _random_masks(loaded, block)
    path = tmp_path / "mask.safetensors"
    masks.save(path)
    again = MaskSet.load(path)
    assert again.block == block and set(again.masks) == set(masks.masks)
    assert all(torch.equal(again.masks[k], masks.masks[k]) for k in masks.masks)

    clone = copy.deepcopy(loaded.model)
    clone_loaded = copy.copy(loaded)
    clone_loaded.model, clone_loaded.adapter = clone, adapter_for(clone)
    with torch.no_grad():
        for site in pruned_sites(clone_loaded, parse_block(block)):
            if site.key not in again.masks:
                continue
            matrix = expand(again.masks[site.key].float(), site.shape, again.block, site, loaded.head_size)
            weight = site.module.weight
            weight.mul_(matrix.T if type(site.module).__name__ == "Conv1D" else matrix)
            if site.module.bias is not None:
                site.module.bias.mul_((matrix.amax(dim=1) > 0).float())
    expected = _logits(clone_loaded)
    with applied(loaded, again):
        masked = _logits(loaded)
    torch.testing.assert_close(masked, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(masked, original)
    assert torch.equal(_logits(loaded), original)
    with intervene(loaded, InterventionSpec(mask=str(path))):
        torch.testing.assert_close(_logits(loaded), masked, rtol=0, atol=0)
    assert torch.equal(_logits(loaded), original)
    assert not any("forward" in vars(module) for module in loaded.model.modules())  # every patch undone


def test_head_block_pruning_zeroes_the_heads_output(tiny_loaded):
    loaded = tiny_loaded("bert")
    scores = Scores(loaded, "head")
    with torch.no_grad():
        scores.scores["layer1__value"][2] = -10.0  # σ = 0 < τ: pruned
    scores.threshold = 0.1
    masks = scores.to_masks()
    assert surviving_heads(loaded, masks).query("not alive")[["layer", "head"]].values.tolist() == [[1, 2]]
    captured = {}
    handle = loaded.adapter.attn_out(1).register_forward_pre_hook(lambda m, a: captured.update(x=a[0].clone()))
    _logits(loaded)
    unmasked = captured["x"]
    with applied(loaded, masks):
        _logits(loaded)
    handle.remove()
    size = loaded.head_size
    assert torch.count_nonzero(captured["x"][..., 2 * size:3 * size]) == 0
    others = torch.cat([torch.arange(2 * size), torch.arange(3 * size, loaded.num_heads * size)])
    assert torch.count_nonzero(unmasked[..., others]) > 0
    torch.testing.assert_close(captured["x"][..., others], unmasked[..., others], rtol=0, atol=0)  # other heads intact


@pytest.mark.parametrize("family", ["gpt2", "modernbert"])
def test_head_blocks_are_refused_where_query_key_and_value_are_one_projection(tiny_loaded, family):
    with pytest.raises(BiasLabError, match=f"head blocks need separate Q/K/V projections; {family} fuses them"):
        Scores(tiny_loaded(family), "head")


def test_density_arithmetic_on_a_hand_made_mask(tiny_loaded):
    loaded = tiny_loaded("bert")  # hidden 32, FFN 64
    masks = MaskSet("neuron", {"layer0.ffn_in": torch.tensor([True] * 48 + [False] * 16),
                               "layer0.ffn_out": torch.tensor([True] * 48 + [False] * 16)})
    table = densities(loaded, masks).set_index(["layer", "module"])
    assert table.loc[(0, "ffn_in"), "density"] == 75.0 and table.loc[(0, "ffn_in"), "kept"] == 48 * 32
    assert table.loc[(0, "ffn_out"), "density"] == 75.0
    assert table.loc[(1, "ffn_in"), "density"] == 100.0 and table.loc[(0, "query"), "density"] == 100.0
    square = MaskSet(16, {"layer1.attn_out": torch.tensor([[True, False], [False, False]])})
    assert densities(loaded, square).set_index(["layer", "module"]).loc[(1, "attn_out"), "density"] == 25.0


def test_threshold_schedule_values():
    assert threshold_schedule(0, 100) == 0.0
    assert threshold_schedule(100, 100) == pytest.approx(0.1)
    assert threshold_schedule(50, 100) == pytest.approx(0.1 * (1 - 0.5 ** 3))
    assert threshold_schedule(5, 100, warmup=10) == 0.0
    assert threshold_schedule(95, 100, cooldown=10) == pytest.approx(0.1)


def test_straight_through_gradient_reaches_scores_and_never_weights(tiny_model_dir):
    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    weights = {name: p.detach().clone() for name, p in loaded.model.named_parameters()}
    for parameter in loaded.model.parameters():
        parameter.requires_grad_(False)
    scores = Scores(loaded, 8)
    optimizer = torch.optim.SGD(scores.parameters(), lr=50.0)
    batch = loaded.tokenizer(SENTENCES, return_tensors="pt", padding=True)
    masks = []
    with scores.attached():
        for step in range(3):
            scores.threshold = 0.5 - 1e-3  # σ(0) = 0.5: a score that falls below 0 prunes its block
            loss = loaded.model(**batch, labels=batch["input_ids"]).loss
            optimizer.zero_grad()
            loss.backward()
            assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in scores.parameters())
            optimizer.step()
            masks.append(scores.to_masks())
    assert any(not bool(m.all()) for m in masks[-1].masks.values())  # blocks were pruned by the scores
    for name, parameter in loaded.model.named_parameters():
        assert torch.equal(parameter, weights[name]), name


def test_mask_of_another_model_is_refused(tiny_loaded, tmp_path):
    masks = _random_masks(tiny_loaded("bert"), 4)
    path = tmp_path / "m.safetensors"
    masks.save(path)
    with pytest.raises(BiasLabError, match="has no matrix in"):
        with intervene(tiny_loaded("gpt2"), InterventionSpec(mask=str(path))):
            pass
    with pytest.raises(BiasLabError, match="does not exist"):
        MaskSet.load(tmp_path / "none.safetensors")
    spec = InterventionSpec.from_dict({"neurons": [], "heads": [], "position": "mask", "mask": str(path)})
    assert InterventionSpec.from_json(spec.to_json()).mask == str(path)
    assert logical_shape(tiny_loaded("gpt2").adapter.attn_out(0)) == (32, 32)


def test_evaluation_under_a_mask(tiny_loaded, tmp_path):
    from bias_lab.evaluation import evaluate

    from .test_evaluation import PAIRS

    loaded = tiny_loaded("roberta")
    path = tmp_path / "m.safetensors"
    _random_masks(loaded, "unstructured").save(path)
    before = evaluate(loaded, "crows", PAIRS).items
    after = evaluate(loaded, "crows", PAIRS, intervention={"mask": str(path)}).items
    expected = evaluate(_weight_edited(loaded, MaskSet.load(path)), "crows", PAIRS).items
    for column in ("score_more", "score_less"):
        pd.testing.assert_series_equal(after[column], expected[column], rtol=1e-5)
    assert not before["score_more"].equals(after["score_more"])  # the mask changes the scores
    pd.testing.assert_frame_equal(evaluate(loaded, "crows", PAIRS).items, before)
