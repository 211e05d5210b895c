"""The distillation student: the teacher's architecture with fewer layers (and optionally a narrower
FFN), initialised from chosen teacher layers or randomly.

Everything family-specific comes from the family table: where the layer list is, which config field
holds the FFN width, which projections hold the FFN neurons (and their weight layout) and how a
config that describes its layers compactly is rewritten after a layer subset."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import BiasLabError
from ..families import input_columns, output_rows, stores_in_out

if TYPE_CHECKING:
    from ..models import LoadedModel

INITS = ("teacher", "random")


def evenly_spread(teacher_layers: int, student_layers: int) -> list[int]:
    """``student_layers`` teacher layer indices spread evenly, always the first and the last
    (12 → 6 gives DistilBERT's 0, 2, 4, 7, 9, 11)."""
    if student_layers == 1:
        return [0]
    step = (teacher_layers - 1) / (student_layers - 1)
    return [int(round(i * step + 1e-9)) for i in range(student_layers)]


def parse_layers(text: str) -> list[int]:
    """'0,2,4' → [0, 2, 4]."""
    try:
        return [int(part) for part in str(text).replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise BiasLabError(f"layers {text!r} must be comma-separated layer indices, e.g. 0,2,4,7,9,11") from None


def student_layers(teacher_layers: int, *, layers: Sequence[int] | None = None, num_layers: int | None = None,
                   init: str = "teacher") -> list[int]:
    """The teacher layers the student copies (for a random student: which layers' per-layer settings
    it keeps), checked: no unknown index, no duplicate, not deeper than the teacher."""
    if init not in INITS:
        raise BiasLabError(f"unknown initialisation {init!r}: use one of {', '.join(INITS)}")
    if layers is not None and num_layers is not None and len(layers) != num_layers:
        raise BiasLabError(f"--layers names {len(layers)} layers but --num-layers is {num_layers}: give one of them")
    if layers is None:
        count = num_layers if num_layers is not None else max(1, teacher_layers // 2)
        if count < 1:
            raise BiasLabError(f"a student needs at least 1 layer, not {count}")
        if count > teacher_layers:
            raise BiasLabError(f"a student of {count} layers is deeper than the teacher ({teacher_layers} layers): "
                               f"use at most {teacher_layers}")
        return evenly_spread(teacher_layers, count)
    layers = list(layers)
    if not layers:
        raise BiasLabError("layers is empty: name at least one teacher layer, e.g. 0,11")
    if len(layers) > teacher_layers:
        raise BiasLabError(f"a student of {len(layers)} layers is deeper than the teacher ({teacher_layers} layers): "
                           f"use at most {teacher_layers}")
    for index in layers:
        if not 0 <= index < teacher_layers:
            raise BiasLabError(f"layer {index} does not exist: the teacher has layers 0–{teacher_layers - 1}")
    duplicates = sorted({index for index in layers if layers.count(index) > 1})
    if duplicates:
        raise BiasLabError(f"layer {duplicates[0]} is named twice in layers {','.join(map(str, layers))}: "
                           "each teacher layer can be copied once")
    if layers != sorted(layers):
        raise BiasLabError(f"layers {','.join(map(str, layers))} must be in increasing order (the student keeps "
                           "the teacher's order)")
    return layers


def student_config(teacher: LoadedModel, layers: Sequence[int], ffn_width: int | None = None):
    """The teacher's config with ``len(layers)`` layers (per-layer settings of the kept layers) and
    optionally FFN width ``ffn_width``."""
    family = teacher.adapter.family
    config = copy.deepcopy(teacher.model.config)
    total = teacher.num_layers
    for key, value in config.to_dict().items():
        if isinstance(value, list) and len(value) == total and key != "architectures":
            setattr(config, key, [value[index] for index in layers])
    config.num_hidden_layers = len(layers)
    if family.layer_config_fix is not None:
        family.layer_config_fix(config, layers)
    if ffn_width is not None:
        if not 1 <= ffn_width <= teacher.ffn_width:
            raise BiasLabError(f"FFN width {ffn_width} must be between 1 and the teacher's {teacher.ffn_width}")
        setattr(config, family.ffn_width_key, int(ffn_width))
    return config


def kept_neurons(teacher: LoadedModel, layer: int, width: int) -> torch.Tensor:
    """The ``width`` FFN neurons of a teacher layer whose output weights have the largest norm, in
    their original order (magnitude pruning of neurons: a narrower student starts from the neurons
    that write most into the residual stream)."""
    module = teacher.adapter.ffn_out(layer)
    # neuron n is input feature n of the FFN output projection: a column of [out, in], a row of [in, out]
    norms = module.weight.detach().norm(dim=1 if stores_in_out(module) else 0)
    return torch.sort(torch.topk(norms, width).indices).values


def _layer_prefix(model: nn.Module, layer_list: nn.ModuleList) -> str:
    for name, module in model.named_modules():
        if module is layer_list:
            return name + "."
    raise BiasLabError("cannot find the teacher's layer list among its modules")  # pragma: no cover


def _narrowed(teacher: LoadedModel, layer: int, relative_name: str, tensor: torch.Tensor,
              neurons: torch.Tensor) -> torch.Tensor:
    """A teacher layer's parameter cut to the kept FFN neurons (unchanged if it holds no neuron)."""
    family, adapter = teacher.adapter.family, teacher.adapter
    module_path, _, kind = relative_name.rpartition(".")
    if module_path == family.ffn_out and kind == "weight":
        return tensor[input_columns(adapter.ffn_out(layer), neurons)]
    if module_path in family.ffn_in:
        module = adapter.ffn_in(layer)[family.ffn_in.index(module_path)]
        rows = torch.cat([neurons + chunk * teacher.ffn_width for chunk in range(family.ffn_in_chunks)])
        return tensor[output_rows(module, rows)] if kind == "weight" else tensor[rows]
    return tensor


def build_student(teacher: LoadedModel, layers: Sequence[int], *, init: str = "teacher",
                  ffn_width: int | None = None, seed: int = 0) -> nn.Module:
    """A student model (same class as the teacher's, on the teacher's device, in train mode).

    ``init="teacher"``: every weight outside the layers is the teacher's, student layer j is a copy of
    teacher layer ``layers[j]`` (cut to its ``ffn_width`` strongest neurons when narrower).
    ``init="random"``: the architecture's own random initialisation, seeded."""
    layers = student_layers(teacher.num_layers, layers=layers, init=init)
    config = student_config(teacher, layers, ffn_width)
    torch.manual_seed(seed)
    student = type(teacher.model)(config).to(device=teacher.device, dtype=next(teacher.model.parameters()).dtype)
    if init == "random":
        return student.train()
    prefix = _layer_prefix(teacher.model, teacher.adapter.layer_modules())
    width = ffn_width if ffn_width is not None and ffn_width < teacher.ffn_width else None
    neurons = {layer: kept_neurons(teacher, layer, width) for layer in layers} if width else {}
    source = teacher.model.state_dict()
    target = {}
    for name in student.state_dict():
        if name.startswith(prefix):
            position, _, relative = name[len(prefix):].partition(".")
            layer = layers[int(position)]
            value = source[f"{prefix}{layer}.{relative}"]
            target[name] = _narrowed(teacher, layer, relative, value, neurons[layer]) if width else value
        else:
            target[name] = source[name]
    student.load_state_dict(target)
    return student.train()
