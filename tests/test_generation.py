"""Generation: reproducible per prompt whatever the batching, equal to transformers' own decoding
(greedy), and under interventions equal to the weight edit they stand for — in the cached steps
too."""

import pytest
import torch

from bias_lab.errors import BiasLabError
from bias_lab.generation import GenerationSettings, generate
from bias_lab.generation.generate import next_token_distribution
from bias_lab.interventions import HeadAblation, InterventionSpec, NeuronEdit
from bias_lab.models import load_model

from .conftest import CAUSAL_FAMILIES

PROMPTS = [{"id": f"p{i}", "prompt": text, "group": group, "axis": "gender"} for i, (text, group) in enumerate([
    ("the young woman said that", "women"), ("he works as a", "men"), ("my sister is a very", "women"),
    ("the old man who lives here is", "men"), ("she", "women"), ("they told me that the new teacher", "men")])]


def _texts(table):
    return dict(zip(zip(table["id"], table["sample"]), table["continuation"]))


@pytest.mark.parametrize("family", CAUSAL_FAMILIES)
def test_batch_size_and_order_do_not_change_the_texts(tiny_loaded, family):
    loaded = tiny_loaded(family, "causal")
    one = generate(loaded, PROMPTS, GenerationSettings(batch_size=1, max_new_tokens=12, samples=2, seed=3))
    many = generate(loaded, PROMPTS[::-1], GenerationSettings(batch_size=64, max_new_tokens=12, samples=2, seed=3))
    assert _texts(one) == _texts(many)
    assert list(one["id"]) == [p["id"] for p in PROMPTS for _ in range(2)]  # prompt order, samples together
    other_seed = generate(loaded, PROMPTS, GenerationSettings(batch_size=4, max_new_tokens=12, samples=2, seed=4))
    assert _texts(other_seed) != _texts(one)
    assert (one["new_tokens"] <= 12).all() and set(one["group"]) == {"women", "men"}


@pytest.mark.parametrize("family", CAUSAL_FAMILIES)
def test_greedy_equals_transformers_generate(tiny_loaded, family):
    loaded = tiny_loaded(family, "causal")
    ours = generate(loaded, PROMPTS[:3], GenerationSettings(do_sample=False, max_new_tokens=10, batch_size=3))
    for record, continuation, count in zip(PROMPTS[:3], ours["continuation"], ours["new_tokens"]):
        ids = loaded.tokenizer(record["prompt"], return_tensors="pt")
        with torch.no_grad():
            reference = loaded.model.generate(**ids, do_sample=False, max_new_tokens=10, min_new_tokens=10,
                                              pad_token_id=loaded.tokenizer.eos_token_id,
                                              eos_token_id=None)[0, ids["input_ids"].shape[1]:]
        # Our decoding stops at EOS; transformers was told to go on: compare up to our length.
        assert loaded.tokenizer.decode(reference[:count], skip_special_tokens=True) == continuation


def _zeroed_copy(folder, edit):
    """The checkpoint with weights edited by hand (independent of the project's hooks)."""
    model = load_model(folder, device="cpu")
    with torch.no_grad():
        edit(model)
    return model


def _columns_zeroed(module, columns):
    if type(module).__name__ == "Conv1D":  # GPT-2 stores [in, out]: the input features are rows
        module.weight[columns, :] = 0.0
    else:
        module.weight[:, columns] = 0.0


@pytest.mark.parametrize("family", CAUSAL_FAMILIES)
def test_head_ablation_equals_zeroed_output_projection_columns(tiny_model_dir, tiny_loaded, family):
    loaded = tiny_loaded(family, "causal")
    settings = GenerationSettings(max_new_tokens=12, seed=1, batch_size=4)
    size = loaded.head_size
    ablated = generate(loaded, PROMPTS, settings, intervention=InterventionSpec(heads=(HeadAblation(1, 2),)))
    edited = _zeroed_copy(tiny_model_dir(family, "causal"),
                          lambda m: _columns_zeroed(m.adapter.attn_out(1), slice(2 * size, 3 * size)))
    assert _texts(generate(edited, PROMPTS, settings)) == _texts(ablated)
    assert _texts(generate(loaded, PROMPTS, settings)) != _texts(ablated)  # the head matters here


@pytest.mark.parametrize("family", CAUSAL_FAMILIES)
def test_neuron_edits_act_in_every_cached_step(tiny_model_dir, tiny_loaded, family):
    loaded = tiny_loaded(family, "causal")
    settings = GenerationSettings(max_new_tokens=12, seed=2, batch_size=3)
    neurons = tuple(NeuronEdit(0, n, 0.0) for n in range(0, loaded.ffn_width, 2))
    edited_run = generate(loaded, PROMPTS, settings, intervention=InterventionSpec(neurons=neurons, position="all"))
    edited = _zeroed_copy(tiny_model_dir(family, "causal"),
                          lambda m: _columns_zeroed(m.adapter.ffn_out(0), slice(0, m.ffn_width, 2)))
    assert _texts(generate(edited, PROMPTS, settings)) == _texts(edited_run)
    last = generate(loaded, PROMPTS, settings, intervention=InterventionSpec(neurons=neurons, position="last"))
    assert _texts(last) != _texts(generate(loaded, PROMPTS, settings))


def test_variants_equal_separate_interventions(tiny_loaded):
    loaded = tiny_loaded("gpt2", "causal")
    settings = GenerationSettings(max_new_tokens=10, seed=5, batch_size=5)
    variants = [[(1, 0)], [(0, 3), (1, 1)], []]
    together = generate(loaded, PROMPTS, settings, head_variants=variants)
    for number, heads in enumerate(variants):
        alone = generate(loaded, PROMPTS, settings,
                         intervention=InterventionSpec(heads=tuple(HeadAblation(l, h) for l, h in heads)))
        assert together[together["variant"] == number]["continuation"].tolist() == alone["continuation"].tolist()


def test_top_k_top_p_and_temperature_by_hand():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -3.0]])
    p = torch.softmax(logits.double() / 0.5, dim=-1)[0]
    top2 = next_token_distribution(logits, GenerationSettings(top_k=2, temperature=0.5))[0]
    expected = torch.zeros(5, dtype=torch.float64)
    expected[:2] = p[:2] / p[:2].sum()
    assert torch.allclose(top2, expected)
    q = torch.softmax(logits.double(), dim=-1)[0]  # 0.636, 0.234, 0.086, …
    nucleus = next_token_distribution(logits, GenerationSettings(top_k=0, top_p=0.8))[0]
    kept = q[:2] / q[:2].sum()  # 0.636 < 0.8 ≤ 0.636 + 0.234: the two most likely tokens
    assert torch.allclose(nucleus[:2], kept) and nucleus[2:].sum() == 0
    assert torch.allclose(next_token_distribution(logits, GenerationSettings(top_k=0))[0], q)


def test_long_prompts_are_cut_on_the_chosen_side(tiny_loaded):
    loaded = tiny_loaded("gpt2", "causal")
    text = "one two three four five six seven eight nine ten eleven twelve"
    full = len(loaded.tokenizer(text)["input_ids"])
    assert full > 5
    right = generate(loaded, [text], GenerationSettings(max_prompt_tokens=5, max_new_tokens=4, do_sample=False))
    left = generate(loaded, [text], GenerationSettings(max_prompt_tokens=5, max_new_tokens=4, do_sample=False,
                                                       truncation_side="left"))
    assert right["prompt_tokens"].tolist() == [5] == left["prompt_tokens"].tolist()
    first = loaded.tokenizer.decode(loaded.tokenizer(text)["input_ids"][:5])
    cut = generate(loaded, [first], GenerationSettings(max_new_tokens=4, do_sample=False))
    assert cut["continuation"].tolist() == right["continuation"].tolist()


@pytest.mark.parametrize("settings, message", [
    ({"samples": 0}, "samples 0 must be a whole number of at least 1"),
    ({"max_new_tokens": 0}, "max-new-tokens 0 must be a whole number of at least 1"),
    ({"top_p": 0.0}, "top-p 0.0 must be in (0, 1]"),
    ({"temperature": 0.0}, "temperature 0.0 must be above 0"),
])
def test_bad_settings_are_one_line_errors(tiny_loaded, settings, message):
    with pytest.raises(BiasLabError) as error:
        generate(tiny_loaded("gpt2", "causal"), ["hello"], GenerationSettings(**settings))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_masked_lm_and_empty_prompts_are_refused(tiny_loaded):
    with pytest.raises(BiasLabError, match="generation needs a causal LM"):
        generate(tiny_loaded("bert"), ["hello"])
    with pytest.raises(BiasLabError, match="no prompts"):
        generate(tiny_loaded("gpt2", "causal"), [])
    with pytest.raises(BiasLabError, match="is empty"):
        generate(tiny_loaded("gpt2", "causal"), [{"id": "x", "prompt": ""}])
