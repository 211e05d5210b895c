import copy
import json

import pytest
import torch

from bias_lab.errors import InterventionError
from bias_lab.families import adapter_for, input_columns
from bias_lab.interventions import HeadAblation, InterventionSpec, NeuronEdit, hook_count, intervene

from .conftest import ALL_FAMILIES, CAUSAL_FAMILIES, MASKED_FAMILIES

SENTENCES = ["the doctor is here .", "this young person is very kind and honest ."]


def _batch(loaded):
    return loaded.tokenizer(SENTENCES, return_tensors="pt", padding=True)


def _logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def _edited_copy(loaded, edit):
    """A deep copy of the model with ``edit(adapter)`` applied to its weights — the oracle."""
    clone = copy.deepcopy(loaded.model)
    with torch.no_grad():
        edit(adapter_for(clone))
    return clone


@pytest.mark.parametrize("family", ALL_FAMILIES)
@pytest.mark.parametrize("scale", [0.0, 2.0, -0.5])
def test_neuron_edit_at_all_positions_equals_weight_column_edit(tiny_loaded, family, scale):
    loaded = tiny_loaded(family)
    batch = _batch(loaded)
    layer, neuron = 1, 17

    def scale_column(adapter):
        projection = adapter.ffn_out(layer)
        projection.weight[input_columns(projection, neuron)] *= scale

    expected = _logits(_edited_copy(loaded, scale_column), batch)
    spec = InterventionSpec(neurons=(NeuronEdit(layer, neuron, scale),), position="all")
    with intervene(loaded, spec):
        got = _logits(loaded.model, batch)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(got, _logits(loaded.model, batch))


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_head_ablation_equals_zeroing_output_projection_columns(tiny_loaded, family):
    loaded = tiny_loaded(family)
    batch = _batch(loaded)
    layer, head, size = 0, 2, loaded.head_size

    def zero_head(adapter):
        projection = adapter.attn_out(layer)
        projection.weight[input_columns(projection, slice(head * size, (head + 1) * size))] = 0.0

    expected = _logits(_edited_copy(loaded, zero_head), batch)
    with intervene(loaded, InterventionSpec(heads=(HeadAblation(layer, head),))):
        got = _logits(loaded.model, batch)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(got, _logits(loaded.model, batch))


@pytest.mark.parametrize("family", MASKED_FAMILIES)
def test_mask_position_edits_only_the_mask(tiny_loaded, family):
    """In the last layer the FFN acts per position: a mask-position edit changes the mask row only,
    and there it equals the all-positions edit."""
    loaded = tiny_loaded(family)
    text = f"the {loaded.mask_token} is here ."
    batch = loaded.tokenizer([text, "the man is here ."], return_tensors="pt", padding=True)
    is_mask = batch["input_ids"] == loaded.mask_token_id
    assert is_mask.sum() == 1
    edit = (NeuronEdit(loaded.num_layers - 1, 5, 0.0), NeuronEdit(loaded.num_layers - 1, 9, 3.0))
    original = _logits(loaded.model, batch)
    with intervene(loaded, InterventionSpec(neurons=edit, position="mask")):
        at_mask = _logits(loaded.model, batch)
    with intervene(loaded, InterventionSpec(neurons=edit, position="all")):
        everywhere = _logits(loaded.model, batch)
    assert torch.equal(at_mask[~is_mask], original[~is_mask])
    torch.testing.assert_close(at_mask[is_mask], everywhere[is_mask], rtol=0, atol=1e-6)
    assert not torch.allclose(at_mask[is_mask], original[is_mask])


@pytest.mark.parametrize("family", CAUSAL_FAMILIES)
def test_last_position_respects_padding(tiny_loaded, family):
    loaded = tiny_loaded(family)
    batch = _batch(loaded)
    lengths = batch["attention_mask"].sum(dim=1)
    last = torch.zeros_like(batch["attention_mask"], dtype=torch.bool)
    last[torch.arange(2), lengths - 1] = True
    edit = (NeuronEdit(loaded.num_layers - 1, 3, 0.0),)
    original = _logits(loaded.model, batch)
    with intervene(loaded, InterventionSpec(neurons=edit, position="last")):
        at_last = _logits(loaded.model, batch)
    with intervene(loaded, InterventionSpec(neurons=edit, position="all")):
        everywhere = _logits(loaded.model, batch)
    assert torch.equal(at_last[~last], original[~last])
    torch.testing.assert_close(at_last[last], everywhere[last], rtol=0, atol=1e-6)


def test_hooks_are_removed_after_the_block_and_after_an_exception(tiny_loaded):
    loaded = tiny_loaded("bert")
    before = hook_count(loaded)
    spec = InterventionSpec(neurons=(NeuronEdit(0, 1, 0.0),), heads=(HeadAblation(1, 3),))
    with intervene(loaded, spec):
        assert hook_count(loaded) == before + 3
    assert hook_count(loaded) == before
    with pytest.raises(RuntimeError, match="boom"):
        with intervene(loaded, spec):
            raise RuntimeError("boom")
    assert hook_count(loaded) == before


def test_empty_spec_is_bit_identical_and_edits_compose(tiny_loaded):
    loaded = tiny_loaded("roberta")
    batch = _batch(loaded)
    original = _logits(loaded.model, batch)
    with intervene(loaded, InterventionSpec()):
        assert torch.equal(_logits(loaded.model, batch), original)
    half = InterventionSpec(neurons=(NeuronEdit(1, 4, 0.5),), position="all")
    double = InterventionSpec(neurons=(NeuronEdit(1, 4, 2.0),), position="all")
    with intervene(loaded, half), intervene(loaded, double):
        torch.testing.assert_close(_logits(loaded.model, batch), original, rtol=0, atol=1e-6)
    with intervene(loaded, half.combine(double)):
        torch.testing.assert_close(_logits(loaded.model, batch), original, rtol=0, atol=1e-6)
    heads = InterventionSpec(heads=(HeadAblation(0, 1),))
    combined = half.combine(heads)
    assert combined.heads == heads.heads and combined.neurons == half.neurons


def test_spec_round_trips_through_json(tmp_path):
    data = {"neurons": [{"layer": 3, "neuron": 17, "scale": 0.0}], "heads": [{"layer": 2, "head": 5}],
            "position": "mask"}
    spec = InterventionSpec.from_dict(data)
    assert spec.to_dict() == data
    assert InterventionSpec.from_json(spec.to_json()) == spec
    path = tmp_path / "spec.json"
    spec.save(path)
    assert json.loads(path.read_text()) == data
    assert InterventionSpec.load(path) == spec


@pytest.mark.parametrize(
    "data, message",
    [
        ({"neurons": [{"layer": 1}]}, "has no 'neuron'"),
        ({"neurons": [{"layer": "1", "neuron": 2}]}, "'layer' must be an integer"),
        ({"heads": [{"layer": 1, "head": 2, "gain": 3}]}, "unknown key 'gain'"),
        ({"neurons": [], "position": "first"}, "unknown position 'first'"),
        ({"layers": []}, "unknown key 'layers'"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_malformed_specs_are_named(data, message):
    with pytest.raises(InterventionError, match=message):
        InterventionSpec.from_dict(data)


def test_invalid_json_and_missing_file(tmp_path):
    with pytest.raises(InterventionError, match="not valid JSON"):
        InterventionSpec.from_json("{nope")
    with pytest.raises(InterventionError, match="does not exist"):
        InterventionSpec.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "spec, message",
    [
        (InterventionSpec(neurons=(NeuronEdit(2, 0, 0.0),)), r"layer 2 is out of range, valid layers are 0–1"),
        (InterventionSpec(neurons=(NeuronEdit(0, 64, 0.0),)), r"neuron 64 is out of range, valid neurons are 0–63"),
        (InterventionSpec(heads=(HeadAblation(0, -1),)), r"head -1 is out of range, valid heads are 0–3"),
    ],
)
def test_out_of_range_sites_name_the_valid_range(tiny_loaded, spec, message):
    loaded = tiny_loaded("bert")
    before = hook_count(loaded)
    with pytest.raises(InterventionError, match=message):
        with intervene(loaded, spec):
            pass
    assert hook_count(loaded) == before


def test_mask_position_on_a_model_without_mask_token(tiny_loaded):
    with pytest.raises(InterventionError, match="has none: use position 'last' or 'all'"):
        with intervene(tiny_loaded("gpt2"), InterventionSpec(neurons=(NeuronEdit(0, 0, 0.0),), position="mask")):
            pass


def test_real_minilm_neuron_suppression_matches_weight_edit():
    from bias_lab.models import load_model

    from .conftest import shared_path

    loaded = load_model(shared_path("models", "all-MiniLM-L6-v2"), device="cpu")
    batch = loaded.tokenizer(SENTENCES, return_tensors="pt", padding=True)

    def hidden(model):
        with torch.no_grad():
            return model(**batch).last_hidden_state

    def zero(adapter):
        adapter.ffn_out(4).weight[:, 100] = 0.0

    expected = hidden(_edited_copy(loaded, zero))
    with intervene(loaded, InterventionSpec(neurons=(NeuronEdit(4, 100, 0.0),), position="all")):
        got = hidden(loaded.model)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
