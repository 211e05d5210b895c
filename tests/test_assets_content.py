"""The content of assets/: classroom prompt sets, group prompts, the mask corpus, example specs, the
page defaults, the logo and the theme — each read the way the library and the app read it."""

import json
import tomllib
from pathlib import Path

import pytest

from bias_lab.assets import asset_path, list_assets, page_defaults, read_asset_json
from bias_lab.errors import BiasLabError
from bias_lab.interventions import InterventionSpec
from bias_lab.metrics import BENCHMARKS
from bias_lab.neurons.prompts import MASK, load_prompt_file

from .conftest import BERT_VOCAB, ROOT

PROMPT_SETS = ("gender", "religion", "ethnicity", "age", "occupation")


def test_every_classroom_prompt_set_loads_with_20_to_40_prompts():
    for name in PROMPT_SETS:
        prompts = load_prompt_file(asset_path("prompts", f"{name}.jsonl"))
        assert 20 <= len(prompts) <= 40, name
        assert all(p.prompt.count(MASK) == 1 for p in prompts), name
        assert all(p.d1 != p.d2 and p.d1 == p.d1.lower() and p.d2 == p.d2.lower() for p in prompts), name
        assert len({p.prompt for p in prompts}) == len(prompts), f"{name}: a prompt appears twice"


def test_the_prompt_sets_are_those_the_bias_neurons_page_offers():
    offered = page_defaults("bias_neurons")["prompt_sets"]
    assert list(offered) == list(PROMPT_SETS)
    assert [Path(path).name for path in offered.values()] == [f"{name}.jsonl" for name in PROMPT_SETS]
    shipped = {path.stem for path in list_assets("prompts", pattern="*.jsonl")}
    assert shipped == set(PROMPT_SETS) | {"group_prompts"}


def test_every_demographic_word_is_one_bert_token(tmp_path):
    """With bert-base-uncased's vocabulary (MiniLM shares it), preparing the prompts skips nothing."""
    if not BERT_VOCAB.is_file():
        pytest.skip(f"{BERT_VOCAB} is absent (../shared not available)")
    from bias_lab.models import load_model
    from bias_lab.neurons.prompts import prepare_prompts
    from bias_lab.tiny import build_tiny_model

    loaded = load_model(build_tiny_model("bert", tmp_path / "bert", vocab_file=BERT_VOCAB), device="cpu")
    for name in PROMPT_SETS:
        prompts = load_prompt_file(asset_path("prompts", f"{name}.jsonl"))
        preparation = prepare_prompts(loaded, prompts)
        assert not preparation.skipped, f"{name}: {preparation.describe_skipped()}"
        assert len(preparation.prompts) == len(prompts), name


def test_the_group_prompts_measure_a_gap_on_gender_and_religion():
    from bias_lab.data.groups import check_groups, load_group_prompts
    from bias_lab.evaluation import load_benchmark_data

    path = asset_path("prompts", "group_prompts.jsonl")
    prompts = load_group_prompts(path)
    assert 20 <= len(prompts) <= 40
    counts = check_groups(prompts)
    assert set(counts) == {"gender", "religion"}
    assert all(len(groups) >= 2 for groups in counts.values())
    # what `bias-lab evaluate toxicity-gap --data FILE` and the Evaluate page load
    assert len(load_benchmark_data("toxicity-gap", str(path))) == len(prompts)


def test_the_classroom_corpus_feeds_the_kaneko_objective():
    from bias_lab.data import load_text
    from bias_lab.pruning.kaneko import builtin_word_lists, tag_sentences

    tagged = tag_sentences(load_text(asset_path("prompts", "classroom_corpus.txt")), builtin_word_lists())
    kinds = [sentence.kind for sentence in tagged]
    assert kinds.count("male") >= 10 and kinds.count("female") >= 10 and kinds.count("target") >= 10


def test_every_example_spec_loads_and_they_cover_neurons_heads_and_both():
    specs = {path.stem: InterventionSpec.load(path) for path in list_assets("specs", pattern="*.json")}
    assert len(specs) >= 3
    assert any(s.neurons and not s.heads for s in specs.values())
    assert any(s.heads and not s.neurons for s in specs.values())
    assert any(s.heads and s.neurons for s in specs.values())
    for name, spec in specs.items():
        assert spec.mask is None, name  # no example names a mask file that is not shipped
        # small enough for a BERT-base model and for six-layer ones (MiniLM): 6 layers, 12 heads, 1536 neurons
        assert all(e.layer < 6 and e.neuron < 1536 for e in spec.neurons), name
        assert all(h.layer < 6 and h.head < 12 for h in spec.heads), name


def test_every_spec_acts_on_a_model(tiny_loaded):
    """A spec's edits fit a model of that size (checked on a tiny BERT with the same numbers scaled down)."""
    from bias_lab.interventions import HeadAblation, NeuronEdit

    loaded = tiny_loaded("bert")
    for path in list_assets("specs", pattern="*.json"):
        spec = InterventionSpec.load(path)
        scaled = InterventionSpec(
            tuple(NeuronEdit(e.layer % loaded.num_layers, e.neuron % loaded.ffn_width, e.scale) for e in spec.neurons),
            tuple(HeadAblation(h.layer % loaded.num_layers, h.head % loaded.num_heads) for h in spec.heads),
            spec.position)
        scaled.validate(loaded)


def test_page_defaults_name_real_sources_for_every_benchmark():
    defaults = page_defaults("evaluate")
    assert set(defaults["data"]) == set(BENCHMARKS)
    hub_ids = {"stereoset": "McGill-NLP/stereoset", "crows": "nyu-mll/crows_pairs", "perplexity": "wikitext",
               "mlm-loss": "wikitext"}
    for benchmark, value in defaults["data"].items():
        if benchmark in hub_ids:
            assert value == hub_ids[benchmark]
        elif benchmark in ("seat", "winobias"):
            assert value == "" and "no default" in defaults["why"][benchmark]
        else:  # a classroom file of assets/
            assert Path(value).is_file() and Path(value).is_relative_to(ROOT / "assets"), benchmark
    from bias_lab.evaluation import load_benchmark_data

    assert len(load_benchmark_data("ig2-gap", defaults["data"]["ig2-gap"])) >= 20
    assert Path(page_defaults("pruning_masks")["corpus"]).is_file()
    for page in ("neuron_lab", "heads", "bias_neurons"):
        values = page_defaults(page)
        assert values["prompt"].count(MASK) == 1 and len(values["pair"]) == 2, page
    with pytest.raises(BiasLabError, match="no page defaults for 'nope'"):
        page_defaults("nope")
    assert "asset:" not in json.dumps([page_defaults(page) for page in ("evaluate", "bias_neurons", "pruning_masks")])


def test_the_logo_icon_favicon_and_theme():
    import xml.etree.ElementTree as ElementTree

    for name in ("logo.svg", "icon.svg"):
        root = ElementTree.parse(asset_path("app", name)).getroot()
        assert root.tag.endswith("svg") and root.get("viewBox"), name
    assert asset_path("app", "favicon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    theme = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["theme"]
    assert theme["base"] == "light"
    for key in ("primaryColor", "backgroundColor", "secondaryBackgroundColor", "textColor"):
        assert theme[key].startswith("#") and len(theme[key]) == 7, key
    from streamlit import config

    config.get_config_options()
    for key in theme:
        config.get_option(f"theme.{key}")  # an option Streamlit does not know raises


def test_the_defaults_file_is_valid_json_with_an_about_line():
    data = read_asset_json("app", "defaults.json")
    assert "_about" in data
