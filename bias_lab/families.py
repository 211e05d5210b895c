"""The one table of architecture sites.

Each family names, relative to the Hugging Face *base model* (``model.base_model``):
the list of transformer layers, and inside one layer the FFN output projection (its input is the
FFN neuron activations), the attention output projection (its input is the concatenated heads),
and the other prunable projections. Algorithms only ever ask an adapter for these sites, so adding
a family is adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import UnsupportedModelError


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    layers: str
    ffn_out: str
    ffn_in: tuple[str, ...]
    attn_out: str
    query: str
    key: str
    value: str
    causal: bool


FAMILIES: tuple[Family, ...] = (
    Family("bert", ("bert",), "encoder.layer", "output.dense", ("intermediate.dense",),
           "attention.output.dense", "attention.self.query", "attention.self.key", "attention.self.value", False),
    Family("roberta", ("roberta", "xlm-roberta", "camembert"), "encoder.layer", "output.dense", ("intermediate.dense",),
           "attention.output.dense", "attention.self.query", "attention.self.key", "attention.self.value", False),
    Family("distilbert", ("distilbert",), "transformer.layer", "ffn.lin2", ("ffn.lin1",),
           "attention.out_lin", "attention.q_lin", "attention.k_lin", "attention.v_lin", False),
    Family("gpt2", ("gpt2",), "h", "mlp.c_proj", ("mlp.c_fc",),
           "attn.c_proj", "attn.c_attn", "attn.c_attn", "attn.c_attn", True),
    Family("gpt-neo", ("gpt_neo",), "h", "mlp.c_proj", ("mlp.c_fc",),
           "attn.attention.out_proj", "attn.attention.q_proj", "attn.attention.k_proj", "attn.attention.v_proj", True),
    Family("llama", ("llama", "mistral", "qwen2", "qwen3"), "layers", "mlp.down_proj", ("mlp.gate_proj", "mlp.up_proj"),
           "self_attn.o_proj", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", True),
)

_BY_MODEL_TYPE = {model_type: family for family in FAMILIES for model_type in family.model_types}
FAMILY_NAMES = tuple(family.name for family in FAMILIES)


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


def projection_in_features(module: nn.Module) -> int:
    """Input width of a projection; GPT-2's ``Conv1D`` stores its weight as [in, out]."""
    if isinstance(module, nn.Linear):
        return module.in_features
    weight = getattr(module, "weight", None)
    if weight is not None and weight.dim() == 2 and type(module).__name__ == "Conv1D":
        return int(weight.shape[0])
    raise TypeError(f"cannot read the input width of {type(module).__name__}")


def linear_part(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The projection of ``x`` without bias (and without the module's hooks)."""
    if type(module).__name__ == "Conv1D":
        return x @ module.weight
    return torch.nn.functional.linear(x, module.weight)


def input_columns(module: nn.Module, columns: torch.Tensor | slice | int) -> tuple:
    """Index into a projection's weight selecting the given *input* features (for weight edits)."""
    if type(module).__name__ == "Conv1D":
        return (columns, slice(None))
    return (slice(None), columns)


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
        return {
            role: _get_submodule(self._layers[layer], getattr(self.family, role))
            for role in ("query", "key", "value")
        }


def adapter_for(model: nn.Module) -> FamilyAdapter:
    return FamilyAdapter(model, family_for_model_type(model.config.model_type))
