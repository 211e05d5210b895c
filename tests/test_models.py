import time

import pytest
import torch

from bias_lab import models
from bias_lab.device import resolve_device, resolve_dtype
from bias_lab.errors import BiasLabError, ModelLoadError, UnsupportedModelError
from bias_lab.families import FAMILIES, family_for_model_type
from bias_lab.models import default_model, load_model

from .conftest import ALL_FAMILIES, CAUSAL_FAMILIES, MASKED_FAMILIES, MINILM, shared_path


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_every_family_loads_with_its_facts(tiny_loaded, family):
    loaded = tiny_loaded(family)
    assert loaded.family == family
    assert loaded.kind == ("causal" if family in CAUSAL_FAMILIES else "masked")
    assert (loaded.num_layers, loaded.num_heads, loaded.head_size, loaded.ffn_width) == (2, 4, 8, 64)
    assert loaded.device == torch.device("cpu")
    summary = loaded.summary()
    assert summary["parameters"] == sum(p.numel() for p in loaded.model.parameters())
    assert summary["memory_mb"] > 0
    if family in MASKED_FAMILIES:
        assert loaded.mask_token in ("[MASK]", "<mask>")
    else:
        assert loaded.mask_token is None and loaded.tokenizer.pad_token is not None


def test_table_has_one_entry_per_family():
    names = [f.name for f in FAMILIES]
    assert names == list(ALL_FAMILIES) and len(set(names)) == len(names)
    assert names[:7] == ["bert", "roberta", "distilbert", "gpt2", "gpt-neo", "llama", "modernbert"]
    assert family_for_model_type("modernbert").name == "modernbert"
    for model_type in ("mistral", "qwen2"):
        assert family_for_model_type(model_type).name == "llama"
    with pytest.raises(UnsupportedModelError, match="'t5' is not supported: supported model types are .*bert"):
        family_for_model_type("t5")


def test_encoder_checkpoint_loads_as_encoder_and_refuses_masked(tiny_model_dir):
    folder = tiny_model_dir("bert", "encoder")
    assert load_model(folder).kind == "encoder"
    with pytest.raises(ModelLoadError, match="no trained masked-LM head .*kind 'encoder'"):
        load_model(folder, kind="masked")


def test_causal_model_cannot_be_loaded_as_masked(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="causal gpt2 model"):
        load_model(tiny_model_dir("gpt2"), kind="masked")


def test_attention_weights_use_eager_attention(tiny_model_dir):
    loaded = load_model(tiny_model_dir("bert"), attention_weights=True)
    assert loaded.model.config._attn_implementation == "eager"
    batch = loaded.tokenizer(["the man is here ."], return_tensors="pt")
    attentions = loaded.model(**batch, output_attentions=True).attentions
    assert len(attentions) == 2 and attentions[0].shape[1] == 4


def test_bfloat16_load(tiny_model_dir):
    loaded = load_model(tiny_model_dir("gpt2"), dtype="bfloat16")
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    assert loaded.summary()["dtype"] == "bfloat16"


@pytest.mark.parametrize(
    "source, message",
    [
        ("/definitely/not/here", "model folder '/definitely/not/here' does not exist"),
        ("./relative/missing", "does not exist"),
        ("", "no model given"),
    ],
)
def test_bad_sources_give_one_line_errors(source, message):
    with pytest.raises(ModelLoadError, match=message) as info:
        load_model(source)
    assert "\n" not in str(info.value)


def test_folder_without_config_and_file(tmp_path):
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_model(tmp_path)
    file = tmp_path / "weights.bin"
    file.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(file)


def test_offline_hub_id_fails_fast_with_local_folder_hint(monkeypatch):
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(models, "_hub_cached", lambda repo: False)
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="cannot fetch model 'bert-base-uncased' .* local model folder"):
        load_model("bert-base-uncased")
    assert time.perf_counter() - start < 5


def test_unknown_kind_and_device_and_dtype():
    with pytest.raises(ModelLoadError, match="unknown model kind 'seq2seq'"):
        load_model("x", kind="seq2seq")
    with pytest.raises(BiasLabError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(BiasLabError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", torch.device("cpu"))
    with pytest.raises(BiasLabError, match="float16' needs a GPU"):
        resolve_dtype("float16", torch.device("cpu"))


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("bias_lab.device._mps_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr("bias_lab.device._mps_available", lambda: False)
    assert resolve_device("auto").type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    with pytest.raises(BiasLabError, match="MPS is not available"):
        resolve_device("mps")


def test_default_model_follows_environment(monkeypatch):
    assert default_model() == "bert-base-uncased"
    monkeypatch.setenv("BIAS_LAB_MODEL", "/models/my-bert")
    assert default_model() == "/models/my-bert"


def test_real_minilm_encoder_loads():
    folder = shared_path("models", "all-MiniLM-L6-v2")
    loaded = load_model(folder, device="cpu")
    assert loaded.kind == "encoder" and loaded.family == "bert"
    assert (loaded.num_layers, loaded.num_heads, loaded.head_size, loaded.ffn_width) == (6, 12, 32, 1536)
    assert loaded.parameter_count == 22_713_216
    batch = loaded.tokenizer(["The doctor is here."], return_tensors="pt")
    with torch.no_grad():
        hidden = loaded.model(**batch).last_hidden_state
    assert hidden.shape == (1, batch["input_ids"].shape[1], 384)
    assert torch.isfinite(hidden).all()
    assert MINILM.is_dir()
