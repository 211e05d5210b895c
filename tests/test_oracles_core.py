"""Oracles for core quantities a mutation slipped past: the verification gap is |P(d1) − P(d2)|
whatever the pair's order (recomputed from the raw model's softmax at the mask)."""

import pytest
import torch

from bias_lab.neurons import gaps
from bias_lab.neurons.prompts import Prompt, prepare_prompts

TEXTS = ["the [MASK] is here .", "a [MASK] works at the old bank today ."]


def _raw_probabilities(loaded, text: str, words: tuple[str, str]) -> tuple[float, float]:
    text = text.replace("[MASK]", loaded.tokenizer.mask_token)
    batch = loaded.tokenizer([text], return_tensors="pt")
    position = int((batch["input_ids"][0] == loaded.tokenizer.mask_token_id).nonzero()[0, 0])
    with torch.no_grad():
        probabilities = loaded.model(**batch).logits[0, position].double().softmax(-1)
    first, second = loaded.tokenizer.convert_tokens_to_ids(list(words))
    return float(probabilities[first]), float(probabilities[second])


@pytest.mark.parametrize("pair", [("he", "she"), ("she", "he")])
def test_verification_gap_is_absolute_in_either_order(tiny_loaded, pair):
    loaded = tiny_loaded("bert")
    prepared = prepare_prompts(loaded, [Prompt(f"p{i}", text, *pair) for i, text in enumerate(TEXTS)]).prompts
    expected = []
    for text in TEXTS:
        p1, p2 = _raw_probabilities(loaded, text, pair)
        expected.append(abs(p1 - p2))
    assert min(expected) > 0  # a real gap, so the two orders give opposite signed differences
    assert gaps(loaded, prepared).tolist() == pytest.approx(expected, rel=1e-4)


def test_fasp_on_a_hand_made_grid():
    """γN heads with the highest performance score are protected; of the rest, the αN whose removal
    leaves the least bias are pruned (worked out by hand)."""
    import pandas as pd

    from bias_lab.heads.selection import fasp

    table = pd.DataFrame({"layer": [0, 0, 0, 1, 1], "head": [0, 1, 2, 0, 1],
                          "perf": [5.0, 4.0, 3.0, 2.0, 1.0], "bias": [0.05, 0.5, 0.2, 0.9, 0.3]})
    statuses = fasp(table, alpha=0.4, gamma=0.2)["status"].tolist()
    assert statuses == ["protected", "kept", "pruned", "kept", "pruned"]


def test_seat_last_pooling_is_the_same_with_left_padding(tiny_model_dir):
    """A causal checkpoint may ship a tokenizer that pads on the left: 'last' must still be the
    sentence's own last token (each sentence alone, no padding, is the oracle)."""
    import numpy as np

    from bias_lab.evaluation.seat import embed
    from bias_lab.models import load_model

    loaded = load_model(tiny_model_dir("gpt2"), device="cpu")
    loaded.tokenizer.padding_side = "left"
    sentences = ["the man works here every day .", "she is here .", "a doctor ."]
    alone = []
    for sentence in sentences:
        with torch.no_grad():
            hidden = loaded.adapter.base(**loaded.tokenizer([sentence], return_tensors="pt")).last_hidden_state
        alone.append(hidden[0, -1].double().numpy())
    np.testing.assert_allclose(embed(loaded, sentences, pooling="last", batch_size=3), np.stack(alone), atol=1e-5)


def test_inputs_longer_than_the_models_positions_are_refused_in_one_line(tiny_loaded):
    from bias_lab.data.crows import CrowsPair
    from bias_lab.errors import BiasLabError
    from bias_lab.evaluation import evaluate

    long = " ".join(["the man is here"] * 60) + " ."  # far beyond the tiny models' 128 positions
    pairs = [CrowsPair("0", long, long.replace("man", "woman", 1), "stereo", "gender")]
    for family in ("bert", "gpt2"):
        with pytest.raises(BiasLabError, match=r"tokens long, more than the 128 positions"):
            evaluate(tiny_loaded(family), "crows", pairs)
