"""The one table of architectures: everything bias lab knows about a model family is its entry here.

Each family names, relative to the Hugging Face *base model* (``model.base_model``): the list of
transformer layers, and inside one layer the FFN output projection (its input is the FFN neuron
activations), the attention output projection (its input is the concatenated heads), and the other
prunable projections. It also says how those projections are laid out (a fused query/key/value
projection, a fused FFN input-and-gate projection, GPT-2's transposed weights), what its tokenizer
and position table need, and how :mod:`bias_lab.tiny` builds a tiny random model of it. Algorithms
only ever ask an adapter or the helpers below, so adding a family is adding one entry here (or
calling :func:`register_family`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import BiasLabError, UnsupportedModelError

ATTENTION_ROLES = ("query", "key", "value")
# "out_in": the weight is [out, in] (torch's Linear); "in_out": it is [in, out] (GPT-2's Conv1D).
WEIGHT_LAYOUTS = ("out_in", "in_out")
# "separate": one projection per role; "stacked": one projection whose output is [q; k; v], each
# num_heads·head_size wide with the heads in order (GPT-2's c_attn, ModernBERT's Wqkv).
QKV_LAYOUTS = ("separate", "stacked")
# "plain": every FFN input projection has one output per neuron (Llama's gate and up projections
# are two such); "input_gate": one projection whose output is chunked into [input; gate] and neuron
# n is act(input_n)·gate_n, so it owns rows n and ffn_width + n (ModernBERT's Wi).
FFN_IN_LAYOUTS = ("plain", "input_gate")
# "wordpiece": BERT's lower-cased WordPiece; "roberta-bpe": byte-level BPE with <s>, </s> and a
# <mask> that absorbs the space before it; "gpt2-bpe": byte-level BPE with <|endoftext|>.
TINY_TOKENIZERS = ("wordpiece", "roberta-bpe", "gpt2-bpe")


@dataclass(frozen=True)
class TinySizes:
    layers: int
    hidden: int
    heads: int
    ffn: int


@dataclass(frozen=True, kw_only=True)
class TinyRecipe:
    """How :mod:`bias_lab.tiny` builds a small random model of a family, offline."""

    tokenizer: str  # one of TINY_TOKENIZERS
    config_class: str  # a transformers config class
    # The config's arguments for these sizes and this tokenizer (vocabulary size, special token ids).
    config: Callable[[TinySizes, Any], dict]
    # Model kind (masked, causal, encoder, …) → transformers model class.
    model_classes: Mapping[str, str] = field(hash=False)

    def __post_init__(self):
        if self.tokenizer not in TINY_TOKENIZERS:
            raise BiasLabError(f"unknown tiny tokenizer {self.tokenizer!r}: use one of {', '.join(TINY_TOKENIZERS)}")


@dataclass(frozen=True, kw_only=True)
class Family:
    """One architecture: its sites (module paths) and how they are laid out, built by field name."""

    name: str
    model_types: tuple[str, ...]  # config.model_type values that belong to this family
    causal: bool  # a decoder (causal LM); otherwise an encoder (masked LM)
    layers: str  # the list of transformer layers, relative to the base model
    # Inside one layer:
    ffn_out: str
    ffn_in: tuple[str, ...]
    attn_out: str
    query: str
    key: str
    value: str
    qkv_layout: str = "separate"  # one of QKV_LAYOUTS
    ffn_in_layout: str = "plain"  # one of FFN_IN_LAYOUTS
    weight_layout: str = "out_in"  # one of WEIGHT_LAYOUTS, for every projection above
    # The tokenizer marks a word's leading space (RoBERTa's "Ġword"), so a fill word is encoded with
    # the space it has in a sentence; harmless for tokenizers that drop the space.
    leading_space: bool = False
    # Rows of the position table the model never uses for tokens (RoBERTa reserves two, counting
    # from the padding index).
    position_offset: int = 0
    # The config field holding the FFN width (a narrower distilled student sets it).
    ffn_width_key: str = "intermediate_size"
    # Rewrites config fields that describe the layers in a compact form, after a layer subset has
    # been taken of the per-layer lists (GPT-Neo's attention_types); None when there are none.
    layer_config_fix: Callable[[Any, Sequence[int]], None] | None = None
    tiny: TinyRecipe | None = None

    def __post_init__(self):
        for what, value, allowed in (("qkv_layout", self.qkv_layout, QKV_LAYOUTS),
                                     ("ffn_in_layout", self.ffn_in_layout, FFN_IN_LAYOUTS),
                                     ("weight_layout", self.weight_layout, WEIGHT_LAYOUTS)):
            if value not in allowed:
                raise BiasLabError(f"family {self.name!r}: unknown {what} {value!r}: use one of {', '.join(allowed)}")
        if not self.name or not self.model_types or isinstance(self.model_types, str):
            raise BiasLabError(f"family {self.name!r} needs a name and a tuple of model types")
        if isinstance(self.ffn_in, str) or not self.ffn_in:
            raise BiasLabError(f"family {self.name!r}: ffn_in must be a tuple of module paths")
        fused = self.query == self.key == self.value
        if fused != (self.qkv_layout == "stacked"):
            raise BiasLabError(f"family {self.name!r}: query, key and value name one module exactly when "
                               f"qkv_layout is 'stacked' (got {self.qkv_layout!r})")
        if self.ffn_in_layout == "input_gate" and len(self.ffn_in) != 1:
            raise BiasLabError(f"family {self.name!r}: an input_gate FFN has one input projection, "
                               f"not {len(self.ffn_in)}")
        if self.position_offset < 0:
            raise BiasLabError(f"family {self.name!r}: position_offset {self.position_offset} must be at least 0")

    @property
    def ffn_in_chunks(self) -> int:
        """How many ffn_width-row chunks each FFN input projection's output has (a neuron owns one row of each)."""
        return 2 if self.ffn_in_layout == "input_gate" else 1


# --- tiny test configurations ---------------------------------------------------------------------


def _bert_tiny(size: TinySizes, tokenizer) -> dict:
    return dict(vocab_size=len(tokenizer), hidden_size=size.hidden, num_hidden_layers=size.layers,
                num_attention_heads=size.heads, intermediate_size=size.ffn, max_position_embeddings=128,
                pad_token_id=tokenizer.pad_token_id)


def _roberta_tiny(size: TinySizes, tokenizer) -> dict:
    # 130 positions: 128 tokens after the two reserved rows (position_offset).
    return dict(vocab_size=len(tokenizer), hidden_size=size.hidden, num_hidden_layers=size.layers,
                num_attention_heads=size.heads, intermediate_size=size.ffn, max_position_embeddings=130,
                type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)


def _distilbert_tiny(size: TinySizes, tokenizer) -> dict:
    return dict(vocab_size=len(tokenizer), dim=size.hidden, n_layers=size.layers, n_heads=size.heads,
                hidden_dim=size.ffn, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)


def _gpt2_tiny(size: TinySizes, tokenizer) -> dict:
    eos = tokenizer.eos_token_id
    return dict(vocab_size=len(tokenizer), n_embd=size.hidden, n_layer=size.layers, n_head=size.heads,
                n_inner=size.ffn, n_positions=128, bos_token_id=eos, eos_token_id=eos)


def _gpt_neo_tiny(size: TinySizes, tokenizer) -> dict:
    eos = tokenizer.eos_token_id
    layers = size.layers
    return dict(vocab_size=len(tokenizer), hidden_size=size.hidden, num_layers=layers, num_heads=size.heads,
                intermediate_size=size.ffn, max_position_embeddings=128, window_size=16,
                attention_types=[[["global", "local"], max(1, layers // 2)]] if layers % 2 == 0
                else [[["global"], layers]], bos_token_id=eos, eos_token_id=eos)


def _llama_tiny(size: TinySizes, tokenizer) -> dict:
    eos = tokenizer.eos_token_id
    return dict(vocab_size=len(tokenizer), hidden_size=size.hidden, num_hidden_layers=size.layers,
                num_attention_heads=size.heads, num_key_value_heads=max(1, size.heads // 2),
                intermediate_size=size.ffn, max_position_embeddings=128,
                bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)


def _modernbert_tiny(size: TinySizes, tokenizer) -> dict:
    # Global and local (sliding-window) attention layers alternate as in the real model (every
    # third layer global); a 16-token window makes the local layers local even in short tests.
    # Real ModernBERT has no biases: the tiny one has them so that planted-site tests can make a
    # neuron or a head fire constantly, and pruning's bias masking is exercised.
    return dict(vocab_size=len(tokenizer), hidden_size=size.hidden, num_hidden_layers=size.layers,
                num_attention_heads=size.heads, intermediate_size=size.ffn, max_position_embeddings=128,
                local_attention=16, attention_bias=True, mlp_bias=True,
                pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
                sep_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
                eos_token_id=tokenizer.sep_token_id)


def _gpt_neo_layer_config(config, layers: Sequence[int]) -> None:
    # attention_layers (already subset) is expanded from attention_types when a config is built, so
    # the compact form must say the same: each kept layer's type once.
    config.attention_types = [[list(config.attention_layers), 1]]


# --- the table --------------------------------------------------------------------------------------

_BUILT_IN: tuple[Family, ...] = (
    Family(name="bert", model_types=("bert",), causal=False,
           layers="encoder.layer", ffn_out="output.dense", ffn_in=("intermediate.dense",),
           attn_out="attention.output.dense",
           query="attention.self.query", key="attention.self.key", value="attention.self.value",
           tiny=TinyRecipe(tokenizer="wordpiece", config_class="BertConfig", config=_bert_tiny,
                           model_classes={"masked": "BertForMaskedLM", "encoder": "BertModel",
                                          "pretraining": "BertForPreTraining",
                                          "classifier": "BertForSequenceClassification"})),
    Family(name="roberta", model_types=("roberta", "xlm-roberta", "camembert"), causal=False,
           layers="encoder.layer", ffn_out="output.dense", ffn_in=("intermediate.dense",),
           attn_out="attention.output.dense",
           query="attention.self.query", key="attention.self.key", value="attention.self.value",
           leading_space=True, position_offset=2,
           tiny=TinyRecipe(tokenizer="roberta-bpe", config_class="RobertaConfig", config=_roberta_tiny,
                           model_classes={"masked": "RobertaForMaskedLM", "encoder": "RobertaModel"})),
    Family(name="distilbert", model_types=("distilbert",), causal=False,
           layers="transformer.layer", ffn_out="ffn.lin2", ffn_in=("ffn.lin1",), ffn_width_key="hidden_dim",
           attn_out="attention.out_lin", query="attention.q_lin", key="attention.k_lin", value="attention.v_lin",
           tiny=TinyRecipe(tokenizer="wordpiece", config_class="DistilBertConfig", config=_distilbert_tiny,
                           model_classes={"masked": "DistilBertForMaskedLM", "encoder": "DistilBertModel"})),
    Family(name="gpt2", model_types=("gpt2",), causal=True,
           layers="h", ffn_out="mlp.c_proj", ffn_in=("mlp.c_fc",),
           attn_out="attn.c_proj", query="attn.c_attn", key="attn.c_attn", value="attn.c_attn",
           qkv_layout="stacked", weight_layout="in_out", ffn_width_key="n_inner",
           tiny=TinyRecipe(tokenizer="gpt2-bpe", config_class="GPT2Config", config=_gpt2_tiny,
                           model_classes={"causal": "GPT2LMHeadModel", "encoder": "GPT2Model"})),
    Family(name="gpt-neo", model_types=("gpt_neo",), causal=True,
           layers="h", ffn_out="mlp.c_proj", ffn_in=("mlp.c_fc",),
           attn_out="attn.attention.out_proj", query="attn.attention.q_proj",
           key="attn.attention.k_proj", value="attn.attention.v_proj", layer_config_fix=_gpt_neo_layer_config,
           tiny=TinyRecipe(tokenizer="gpt2-bpe", config_class="GPTNeoConfig", config=_gpt_neo_tiny,
                           model_classes={"causal": "GPTNeoForCausalLM", "encoder": "GPTNeoModel"})),
    Family(name="llama", model_types=("llama", "mistral", "qwen2", "qwen3"), causal=True,
           layers="layers", ffn_out="mlp.down_proj", ffn_in=("mlp.gate_proj", "mlp.up_proj"),
           attn_out="self_attn.o_proj", query="self_attn.q_proj",
           key="self_attn.k_proj", value="self_attn.v_proj",
           tiny=TinyRecipe(tokenizer="gpt2-bpe", config_class="LlamaConfig", config=_llama_tiny,
                           model_classes={"causal": "LlamaForCausalLM", "encoder": "LlamaModel"})),
    # ModernBERT's MLP computes Wo(act(input) · gate) with [input; gate] = Wi(x).chunk(2), and its
    # attention splits Wqkv(x) into [q; k; v] (each heads × head size, heads in order).
    Family(name="modernbert", model_types=("modernbert",), causal=False,
           layers="layers", ffn_out="mlp.Wo", ffn_in=("mlp.Wi",), ffn_in_layout="input_gate",
           attn_out="attn.Wo", query="attn.Wqkv", key="attn.Wqkv", value="attn.Wqkv", qkv_layout="stacked",
           # The real tokenizer is a byte-level BPE whose mask absorbs the space before it, as RoBERTa's.
           leading_space=True,
           tiny=TinyRecipe(tokenizer="wordpiece", config_class="ModernBertConfig", config=_modernbert_tiny,
                           model_classes={"masked": "ModernBertForMaskedLM", "encoder": "ModernBertModel",
                                          "classifier": "ModernBertForSequenceClassification"})),
)

_TABLE: list[Family] = []
_BY_MODEL_TYPE: dict[str, Family] = {}


class _FamilyTable(Sequence):
    """The registered families in registration order; read-only (add one with :func:`register_family`).
    A live view rather than a tuple, so that a module that imported ``FAMILIES`` sees later registrations."""

    def __getitem__(self, index):
        return _TABLE[index]

    def __len__(self) -> int:
        return len(_TABLE)

    def __iter__(self) -> Iterator[Family]:
        return iter(list(_TABLE))

    def __repr__(self) -> str:
        return f"FAMILIES({', '.join(f.name for f in _TABLE)})"


FAMILIES = _FamilyTable()


def register_family(family: Family) -> Family:
    """Add ``family`` to the table; refuse a name or model type another family already has."""
    if not isinstance(family, Family):
        raise BiasLabError(f"register_family needs a Family, got {type(family).__name__}")
    for other in _TABLE:
        if other.name == family.name:
            raise UnsupportedModelError(f"family {family.name!r} is already registered: choose another name")
    for model_type in family.model_types:
        if model_type in _BY_MODEL_TYPE:
            raise UnsupportedModelError(f"model type {model_type!r} already belongs to family "
                                        f"{_BY_MODEL_TYPE[model_type].name!r}: a model type has one family")
    if len(set(family.model_types)) != len(family.model_types):
        raise UnsupportedModelError(f"family {family.name!r} lists a model type twice")
    _TABLE.append(family)
    for model_type in family.model_types:
        _BY_MODEL_TYPE[model_type] = family
    return family


for _family in _BUILT_IN:
    register_family(_family)


def family_names() -> list[str]:
    return [family.name for family in _TABLE]


def masked_families() -> list[str]:
    """Names of the encoder (masked-LM) families, in table order."""
    return [family.name for family in _TABLE if not family.causal]


def causal_families() -> list[str]:
    """Names of the decoder (causal-LM) families, in table order."""
    return [family.name for family in _TABLE if family.causal]


def family_named(name: str) -> Family:
    for family in _TABLE:
        if family.name == name:
            return family
    raise UnsupportedModelError(f"unknown family {name!r}: use one of {', '.join(family_names())}")


def family_for_model_type(model_type: str) -> Family:
    try:
        return _BY_MODEL_TYPE[model_type]
    except KeyError:
        supported = ", ".join(sorted(_BY_MODEL_TYPE))
        raise UnsupportedModelError(
            f"model type {model_type!r} is not supported: supported model types are {supported}"
        ) from None


def _get_submodule(root: nn.Module, path: str) -> nn.Module:
    module = root
    for part in path.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module


# --- projections by their weight layout --------------------------------------------------------------


def weight_layout_of(module: nn.Module) -> str:
    """``in_out`` for GPT-2's ``Conv1D`` (weight [in, out]), ``out_in`` for everything else (torch's Linear)."""
    return "in_out" if type(module).__name__ == "Conv1D" else "out_in"


def stores_in_out(module: nn.Module) -> bool:
    return weight_layout_of(module) == "in_out"


def logical_shape(module: nn.Module) -> tuple[int, int]:
    """(out, in) of a projection's weight, whatever its storage order."""
    rows, columns = module.weight.shape
    return (columns, rows) if stores_in_out(module) else (rows, columns)


def projection_in_features(module: nn.Module) -> int:
    """Input width of a projection; GPT-2's ``Conv1D`` stores its weight as [in, out]."""
    if isinstance(module, nn.Linear):
        return module.in_features
    weight = getattr(module, "weight", None)
    if weight is not None and weight.dim() == 2 and stores_in_out(module):
        return int(weight.shape[0])
    raise TypeError(f"cannot read the input width of {type(module).__name__}")


def linear_part(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The projection of ``x`` without bias (and without the module's hooks)."""
    if stores_in_out(module):
        return x @ module.weight
    return torch.nn.functional.linear(x, module.weight)


def input_columns(module: nn.Module, columns: torch.Tensor | slice | int) -> tuple:
    """Index into a projection's weight selecting the given *input* features (for weight edits)."""
    if stores_in_out(module):
        return (columns, slice(None))
    return (slice(None), columns)


def output_rows(module: nn.Module, rows: torch.Tensor | slice | int | list) -> tuple:
    """Index into a projection's weight selecting the given *output* features (the bias takes ``rows`` as is)."""
    if stores_in_out(module):
        return (slice(None), rows)
    return (rows, slice(None))


class FamilyAdapter:
    """A family entry bound to one model instance: resolves sites to modules."""

    def __init__(self, model: nn.Module, family: Family):
        self.model = model
        self.family = family
        self.base = model.base_model
        self._layers = _get_submodule(self.base, family.layers)
        config = model.config
        self.num_layers = len(self._layers)
        self.num_heads = int(config.num_attention_heads)
        self.ffn_width = projection_in_features(self.ffn_out(0))
        attn_width = projection_in_features(self.attn_out(0))
        if attn_width % self.num_heads:
            raise UnsupportedModelError(
                f"attention output width {attn_width} is not divisible by {self.num_heads} heads"
            )
        self.head_size = attn_width // self.num_heads
        self.hidden_size = int(config.hidden_size)
        self._check_entry()

    def _check_entry(self) -> None:
        """The entry's layouts agree with the modules of layer 0 (a wrong entry fails here, not in an algorithm)."""
        name = self.family.name
        modules = [self.ffn_out(0), self.attn_out(0), *self.ffn_in(0), *self.attention_projections(0).values()]
        for module in modules:
            if weight_layout_of(module) != self.family.weight_layout:
                raise UnsupportedModelError(f"family {name!r} declares weight layout {self.family.weight_layout!r} "
                                            f"but has a {type(module).__name__} ({weight_layout_of(module)!r})")
        if self.family.qkv_layout == "stacked":
            rows = logical_shape(self.attention_projections(0)["query"])[0]
            if rows != 3 * self.num_heads * self.head_size:
                raise UnsupportedModelError(f"family {name!r}: its stacked query/key/value projection has {rows} "
                                            f"outputs, not 3 × {self.num_heads} heads × {self.head_size}")
        for module in self.ffn_in(0):
            rows, chunks = logical_shape(module)[0], self.family.ffn_in_chunks
            if rows != chunks * self.ffn_width:
                raise UnsupportedModelError(f"family {name!r}: its FFN input projection has {rows} outputs, not "
                                            f"{chunks} × {self.ffn_width} ({self.family.ffn_in_layout})")

    @property
    def name(self) -> str:
        return self.family.name

    def layer(self, index: int) -> nn.Module:
        return self._layers[index]

    def layer_modules(self) -> nn.ModuleList:
        return self._layers

    def ffn_out(self, layer: int) -> nn.Module:
        return _get_submodule(self._layers[layer], self.family.ffn_out)

    def ffn_in(self, layer: int) -> list[nn.Module]:
        return [_get_submodule(self._layers[layer], path) for path in self.family.ffn_in]

    def attn_out(self, layer: int) -> nn.Module:
        return _get_submodule(self._layers[layer], self.family.attn_out)

    def attention_projections(self, layer: int) -> dict[str, nn.Module]:
        return {role: _get_submodule(self._layers[layer], getattr(self.family, role)) for role in ATTENTION_ROLES}

    def head_rows(self, layer: int, role: str, head: int | None = None) -> tuple[nn.Module, slice]:
        """The projection of ``role`` (query, key or value) and its output rows that belong to head
        ``head`` (all of the role's rows when None), in the logical [out, in] orientation. A stacked
        projection holds [q; k; v], so the value rows of head h start at 2·heads·head_size + h·head_size."""
        if role not in ATTENTION_ROLES:
            raise BiasLabError(f"unknown attention role {role!r}: use one of {', '.join(ATTENTION_ROLES)}")
        module = self.attention_projections(layer)[role]
        if self.family.qkv_layout == "stacked":
            width = self.num_heads * self.head_size
            start = ATTENTION_ROLES.index(role) * width
        else:
            width, start = logical_shape(module)[0], 0
        if head is None:
            return module, slice(start, start + width)
        return module, slice(start + head * self.head_size, start + (head + 1) * self.head_size)

    def neuron_rows(self, layer: int, neuron: int) -> list[tuple[nn.Module, list[int]]]:
        """Each FFN input projection of ``layer`` with its output rows that feed FFN neuron ``neuron``
        (logical [out, in] orientation): one row per plain projection, the input and the gate row of
        an input_gate projection."""
        return [(module, [chunk * self.ffn_width + neuron for chunk in range(self.family.ffn_in_chunks)])
                for module in self.ffn_in(layer)]


def adapter_for(model: nn.Module) -> FamilyAdapter:
    return FamilyAdapter(model, family_for_model_type(model.config.model_type))
