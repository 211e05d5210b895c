import pytest

from bias_lab.errors import BiasLabError
from bias_lab.neurons.prompts import (DIMENSIONS, MODIFIER_TYPES, TEMPLATES, UNFAIR_TARGETS, Prompt, builtin_modifiers,
                              comparative, ig2_prompts, load_prompt_file, load_source_dir, prepare_prompts, superlative)

from .conftest import shared_path


def test_a_jut_has_17_templates_times_100_modifiers():
    prompts = ig2_prompts("gender", "N", "female", "male")
    assert len(prompts) == 1700 and len({p.id for p in prompts}) == 1700
    first = prompts[0]
    assert first.prompt == "The gender of this rude person is [MASK]."
    assert (first.d1, first.d2, first.modifier_type, first.template, first.bag) == ("female", "male", "N", 1, "rude")
    assert first.jut == "N:female-male"
    assert all("[Modifier]" not in p.prompt and "[Demographic_Dimension]" not in p.prompt for p in prompts)


def test_paper_facts():
    assert len(TEMPLATES) == 17 and len(DIMENSIONS) == 9
    assert sum(len(v) for v in DIMENSIONS.values()) == 50
    assert len(UNFAIR_TARGETS) == 19 and len(UNFAIR_TARGETS) * len(MODIFIER_TYPES) == 114
    for dimension, d1, d2 in UNFAIR_TARGETS:
        assert d1 in DIMENSIONS[dimension] and d2 in DIMENSIONS[dimension]
    modifiers = builtin_modifiers()
    assert set(modifiers) == set(MODIFIER_TYPES)
    assert all(len(words) == 100 and len(set(words)) == 100 for words in modifiers.values())


@pytest.mark.parametrize("word, more, most", [("lazy", "lazier", "laziest"), ("sad", "sadder", "saddest"),
                                              ("rude", "ruder", "rudest"), ("honest", "more honest", "most honest"),
                                              ("good", "better", "best"), ("naive", "more naive", "most naive")])
def test_comparatives(word, more, most):
    assert comparative(word) == more and superlative(word) == most


def test_original_lists_load_from_a_folder():
    source = load_source_dir(shared_path("data", "ig2"))
    # The released file says "people associates" in template 14; the paper's Table 3 (ours) says "associate".
    differing = [i for i, (a, b) in enumerate(zip(source.templates, TEMPLATES)) if a != b]
    assert len(source.templates) == 17 and differing == [13]
    assert source.templates[13].replace("associates", "associate") == TEMPLATES[13]
    assert {k: tuple(v) for k, v in source.dimensions.items()} == DIMENSIONS
    assert all(len(words) == 100 for words in source.modifiers.values())
    prompts = ig2_prompts("ethnicity", "N", "black", "white", source=source)
    assert len(prompts) == 1700 and prompts[0].prompt == "The ethnicity of this lonely person is [MASK]."


@pytest.mark.parametrize(
    "args, message",
    [
        (("gendr", "N", "female", "male"), "unknown dimension 'gendr': valid dimensions are ethnicity, gender"),
        (("gender", "X", "female", "male"), "unknown modifier type 'X'"),
        (("gender", "N", "female", "woman"), "unknown gender demographic 'woman'"),
        (("gender", "N", "male", "male"), "two different demographics"),
    ],
)
def test_bad_jut(args, message):
    with pytest.raises(BiasLabError, match=message):
        ig2_prompts(*args)


def test_prompt_file(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "p1", "prompt": "[MASK] is a doctor.", "pair": ["he", "she"]}\n\n'
                    '{"id": "p2", "prompt": "The nurse said [MASK] was late.", "pair": ["he", "she"]}\n')
    prompts = load_prompt_file(path)
    assert [p.id for p in prompts] == ["p1", "p2"] and prompts[1].d2 == "she" and prompts[0].jut == "custom:he-she"


@pytest.mark.parametrize(
    "line, message",
    [
        ("{nope", "line 1: not valid JSON"),
        ('{"id": "a", "prompt": "x [MASK]"}', "line 1: missing 'pair'"),
        ('{"id": "a", "prompt": "x [MASK]", "pair": ["he"]}', "'pair' must be two words"),
        ('[1]', "expected an object"),
    ],
)
def test_bad_prompt_files(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(BiasLabError, match=message):
        load_prompt_file(path)
    with pytest.raises(BiasLabError, match="does not exist"):
        load_prompt_file(tmp_path / "missing.jsonl")


def test_prompt_without_exactly_one_mask_is_named(tiny_loaded):
    loaded = tiny_loaded("bert")
    for text in ("no mask here", "[MASK] and [MASK]"):
        with pytest.raises(BiasLabError, match="prompt 'bad' has [02] masks, needs exactly one"):
            prepare_prompts(loaded, [Prompt("bad", text, "he", "she")])


def test_multi_token_demographics_are_reported_and_skipped(tiny_loaded):
    loaded = tiny_loaded("bert")
    prompts = ig2_prompts("age", "N", "young", "middle-aged", limit_modifiers=2)
    prepared = prepare_prompts(loaded, prompts)
    assert prepared.prompts == [] and prepared.skipped == {"middle-aged": 34}
    assert "'middle-aged' is" in prepared.describe_skipped() and "tokens" in prepared.describe_skipped()
    good = prepare_prompts(loaded, ig2_prompts("gender", "N", "female", "male", limit_modifiers=1))
    assert len(good.prompts) == 17 and good.skipped == {}
    assert loaded.tokenizer.convert_ids_to_tokens([good.prompts[0].d1_id]) == ["female"]


def test_roberta_demographics_carry_the_leading_space(tiny_loaded):
    loaded = tiny_loaded("roberta")
    prepared = prepare_prompts(loaded, ig2_prompts("gender", "N", "female", "male", limit_modifiers=1))
    assert len(prepared.prompts) == 17
    assert prepared.prompts[0].text.endswith("is <mask>.")
    assert loaded.tokenizer.convert_ids_to_tokens([prepared.prompts[0].d1_id]) == ["Ġfemale"]


def test_unknown_word_is_not_turned_into_unk(tiny_loaded):
    loaded = tiny_loaded("bert")
    prepared = prepare_prompts(loaded, [Prompt("p", "This is [MASK].", "he", "😀")])
    assert prepared.prompts == [] and prepared.skipped == {"😀": 1}
    assert "not in the vocabulary (it would become [UNK])" in prepared.reasons["😀"]
