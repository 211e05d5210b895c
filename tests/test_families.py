"""The family table: entries are built by name, new families register at run time, and no other
module of the library knows an architecture by name or by class."""

import dataclasses
import re

import pytest
import torch

from bias_lab import families
from bias_lab.errors import BiasLabError, UnsupportedModelError
from bias_lab.families import FAMILIES, Family, family_for_model_type, family_named, register_family
from bias_lab.interventions import InterventionSpec, NeuronEdit, intervene
from bias_lab.models import load_model
from bias_lab.tiny import build_tiny_model

from .conftest import BERT_VOCAB, ROOT


@pytest.fixture
def scratch_table(monkeypatch):
    """Registrations inside the test are undone after it."""
    monkeypatch.setattr(families, "_TABLE", list(families._TABLE))
    monkeypatch.setattr(families, "_BY_MODEL_TYPE", dict(families._BY_MODEL_TYPE))


def _megatron_bert() -> Family:
    """The BERT entry under Megatron-BERT's model type: its modules have BERT's names."""
    bert = family_named("bert")
    tiny = dataclasses.replace(bert.tiny, config_class="MegatronBertConfig",
                               model_classes={"masked": "MegatronBertForMaskedLM", "encoder": "MegatronBertModel"})
    return dataclasses.replace(bert, name="megatron-bert", model_types=("megatron-bert",), tiny=tiny)


def test_a_registered_family_loads_and_resolves_its_sites(scratch_table, tmp_path):
    with pytest.raises(UnsupportedModelError, match="'megatron-bert' is not supported"):
        family_for_model_type("megatron-bert")
    entry = register_family(_megatron_bert())
    assert FAMILIES[-1] is entry and family_for_model_type("megatron-bert") is entry
    assert "megatron-bert" in [f.name for f in FAMILIES]

    vocab = BERT_VOCAB if BERT_VOCAB.is_file() else None
    folder = build_tiny_model("megatron-bert", tmp_path / "megatron", vocab_file=vocab)
    loaded = load_model(folder, device="cpu")
    assert (loaded.family, loaded.kind, loaded.model.config.model_type) == ("megatron-bert", "masked", "megatron-bert")
    assert type(loaded.model).__name__ == "MegatronBertForMaskedLM"
    modules = dict(loaded.model.named_modules())
    adapter = loaded.adapter
    assert (adapter.num_layers, adapter.num_heads, adapter.head_size, adapter.ffn_width) == (2, 4, 8, 64)
    for layer in range(2):
        prefix = f"bert.encoder.layer.{layer}."
        assert adapter.ffn_out(layer) is modules[prefix + "output.dense"]
        assert adapter.ffn_in(layer) == [modules[prefix + "intermediate.dense"]]
        assert adapter.attn_out(layer) is modules[prefix + "attention.output.dense"]
        assert adapter.attention_projections(layer)["value"] is modules[prefix + "attention.self.value"]
    # The adapter's sites are live: a neuron edit through them changes the output, and is undone.
    batch = loaded.tokenizer([f"the {loaded.mask_token} is here ."], return_tensors="pt")
    with torch.no_grad():
        before = loaded.model(**batch).logits
        with intervene(loaded, InterventionSpec(neurons=(NeuronEdit(1, 3, 0.0),), position="all")):
            edited = loaded.model(**batch).logits
        assert not torch.allclose(edited, before)
        assert torch.equal(loaded.model(**batch).logits, before)


def test_a_duplicate_name_or_model_type_is_refused(scratch_table):
    bert = family_named("bert")
    with pytest.raises(UnsupportedModelError, match="family 'bert' is already registered"):
        register_family(dataclasses.replace(bert, model_types=("another-type",)))
    with pytest.raises(UnsupportedModelError, match="model type 'camembert' already belongs to family 'roberta'"):
        register_family(dataclasses.replace(bert, name="bert-2", model_types=("bert-2", "camembert")))
    with pytest.raises(BiasLabError, match="needs a Family"):
        register_family("bert")
    assert [f.name for f in FAMILIES].count("bert") == 1 and family_for_model_type("camembert").name == "roberta"


def test_entries_are_built_by_name_and_checked():
    with pytest.raises(TypeError):
        Family("bert", ("bert",), False, "encoder.layer", "output.dense", ("intermediate.dense",),
               "attention.output.dense", "attention.self.query", "attention.self.key", "attention.self.value")
    sites = dict(layers="h", ffn_out="mlp.out", ffn_in=("mlp.in",), attn_out="attn.out", query="attn.qkv",
                 key="attn.qkv", value="attn.qkv")
    entry = Family(name="toy", model_types=("toy",), causal=True, qkv_layout="stacked", **sites)
    assert (entry.weight_layout, entry.ffn_in_layout, entry.leading_space, entry.position_offset, entry.tiny) == \
        ("out_in", "plain", False, 0, None)
    with pytest.raises(BiasLabError, match="unknown weight_layout 'in-out'"):
        Family(name="toy", model_types=("toy",), causal=True, qkv_layout="stacked", weight_layout="in-out", **sites)
    with pytest.raises(BiasLabError, match="exactly when qkv_layout is 'stacked'"):
        Family(name="toy", model_types=("toy",), causal=True, **sites)
    with pytest.raises(BiasLabError, match="input_gate FFN has one input projection, not 2"):
        Family(name="toy", model_types=("toy",), causal=True, qkv_layout="stacked", ffn_in_layout="input_gate",
               **dict(sites, ffn_in=("mlp.in", "mlp.gate")))


def test_family_capabilities_of_the_built_in_entries():
    roberta, gpt2, modernbert = family_named("roberta"), family_named("gpt2"), family_named("modernbert")
    assert (roberta.leading_space, roberta.position_offset) == (True, 2)
    assert (gpt2.weight_layout, gpt2.qkv_layout) == ("in_out", "stacked")
    assert (modernbert.qkv_layout, modernbert.ffn_in_layout, modernbert.ffn_in_chunks) == ("stacked", "input_gate", 2)
    assert all(f.tiny is not None for f in FAMILIES)


def test_modernbert_rows_of_a_head_and_of_a_neuron(tiny_loaded):
    adapter = tiny_loaded("modernbert").adapter  # hidden 32, 4 heads of 8, FFN 64
    wqkv = adapter.attention_projections(1)["query"]
    assert adapter.head_rows(1, "query", 2) == (wqkv, slice(16, 24))
    assert adapter.head_rows(1, "key", 2) == (wqkv, slice(48, 56))
    assert adapter.head_rows(1, "value", 2) == (wqkv, slice(80, 88))
    assert adapter.head_rows(1, "value") == (wqkv, slice(64, 96))
    [(wi, rows)] = adapter.neuron_rows(1, 7)
    assert wi is adapter.ffn_in(1)[0] and rows == [7, 71]


def test_separate_projections_rows_of_a_head_and_of_a_neuron(tiny_loaded):
    adapter = tiny_loaded("llama").adapter
    value = adapter.attention_projections(0)["value"]
    assert adapter.head_rows(0, "value", 1) == (value, slice(8, 16))
    assert [(m, rows) for m, rows in adapter.neuron_rows(0, 9)] == [(m, [9]) for m in adapter.ffn_in(0)]


# Architecture knowledge outside families.py: a family compared by name, or GPT-2's Conv1D by class.
FORBIDDEN = re.compile(r"\"roberta\"|'roberta'|Conv1D")


def test_only_the_family_table_knows_architectures():
    sources = sorted((ROOT / "bias_lab").rglob("*.py"))
    assert len(sources) > 20
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in sources if path.name != "families.py" or path.parent.name != "bias_lab"
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if FORBIDDEN.search(line)]
    assert offenders == []
