import pytest
import torch

from bias_lab.errors import BiasLabError
from bias_lab.interventions import InterventionSpec, NeuronEdit
from bias_lab.neurons.live import parse_neurons, predict_mask


def test_prediction_matches_a_forward_pass(tiny_loaded):
    loaded = tiny_loaded("bert")
    result = predict_mask(loaded, "the [MASK] is here .", "man", "woman", top_k=5)
    batch = loaded.tokenizer("the [MASK] is here .", return_tensors="pt")
    with torch.no_grad():
        probabilities = loaded.model(**batch).logits[0, 2].softmax(-1)
    man, woman = loaded.tokenizer.convert_tokens_to_ids(["man", "woman"])
    assert result.p_d1 == pytest.approx(float(probabilities[man]), rel=1e-5)
    assert result.gap == pytest.approx(abs(float(probabilities[man] - probabilities[woman])), rel=1e-4)
    assert result.top["probability"].iloc[0] == pytest.approx(float(probabilities.max()), rel=1e-5)
    assert len(result.top) == 5 and result.top["probability"].is_monotonic_decreasing


def test_intervention_changes_the_gap(tiny_loaded):
    loaded = tiny_loaded("roberta")
    before = predict_mask(loaded, "the [MASK] is here .", "man", "woman")
    spec = InterventionSpec(tuple(NeuronEdit(1, n, 3.0) for n in range(16)), position="mask")
    after = predict_mask(loaded, "the [MASK] is here .", "man", "woman", spec)
    assert after.p_d1 != before.p_d1


def test_bad_live_input(tiny_loaded):
    loaded = tiny_loaded("bert")
    with pytest.raises(BiasLabError, match="needs exactly one \\[MASK\\] where the model fills in a word; it has none"):
        predict_mask(loaded, "no mask", "man", "woman")
    with pytest.raises(BiasLabError, match="'middle-aged' is"):
        predict_mask(loaded, "the [MASK] person", "young", "middle-aged")
    assert [(e.layer, e.neuron) for e in parse_neurons("1:3, 0:7").neurons] == [(1, 3), (0, 7)]
    with pytest.raises(BiasLabError, match="'x' is not layer:neuron"):
        parse_neurons("x")


def test_prediction_equals_the_raw_model(tiny_loaded):
    import torch

    loaded = tiny_loaded("bert")
    text = "the [MASK] is here ."
    batch = loaded.tokenizer([text], return_tensors="pt")
    position = int((batch["input_ids"][0] == loaded.tokenizer.mask_token_id).nonzero()[0, 0])
    with torch.no_grad():
        probabilities = loaded.model(**batch).logits[0, position].double().softmax(-1)
    he, she = loaded.tokenizer.convert_tokens_to_ids(["he", "she"])
    prediction = predict_mask(loaded, text, "he", "she", top_k=5)
    assert prediction.p_d1 == pytest.approx(float(probabilities[he]), rel=1e-5)
    assert prediction.p_d2 == pytest.approx(float(probabilities[she]), rel=1e-5)
    expected = loaded.tokenizer.convert_ids_to_tokens(probabilities.topk(5).indices.tolist())
    assert prediction.top["token"].tolist() == expected
