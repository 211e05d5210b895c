"""Reversible interventions: scale FFN neurons and ablate attention heads through forward pre-hooks.

A neuron's activation is the input of the FFN output projection; a head's output is its slice of
the input of the attention output projection. Scaling those inputs is exactly equivalent to
editing the corresponding weight columns, but leaves the checkpoint untouched and is undone by
removing the hooks.
"""

from __future__ import annotations

import json
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch

from .errors import InterventionError
from .forward import head_columns, input_ids_of, scaling_pre_hook

if TYPE_CHECKING:
    from .models import LoadedModel

POSITIONS = ("mask", "last", "all")


@dataclass(frozen=True)
class NeuronEdit:
    layer: int
    neuron: int
    scale: float = 0.0


@dataclass(frozen=True)
class HeadAblation:
    layer: int
    head: int


def _as_int(record: dict, key: str, what: str) -> int:
    if key not in record:
        raise InterventionError(f"{what} {record!r} has no {key!r}: each {what} needs {key!r}")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InterventionError(f"{what} {record!r}: {key!r} must be an integer, got {value!r}")
    return value


def _as_float(record: dict, key: str, what: str, default: float) -> float:
    value = record.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InterventionError(f"{what} {record!r}: {key!r} must be a number, got {value!r}")
    return float(value)


def _check_keys(record: object, allowed: set[str], what: str) -> dict:
    if not isinstance(record, dict):
        raise InterventionError(f"{what} must be a JSON object, got {record!r}")
    unknown = sorted(set(record) - allowed)
    if unknown:
        raise InterventionError(f"{what} has unknown key {unknown[0]!r}: allowed keys are {', '.join(sorted(allowed))}")
    return record


@dataclass(frozen=True)
class InterventionSpec:
    """A set of neuron edits and head ablations; round-trips through JSON."""

    neurons: tuple[NeuronEdit, ...] = ()
    heads: tuple[HeadAblation, ...] = ()
    position: str = "mask"
    mask: str | None = None  # a pruning-mask file (bias_lab.pruning)

    def __post_init__(self):
        if self.position not in POSITIONS:
            raise InterventionError(f"unknown position {self.position!r}: use one of {', '.join(POSITIONS)}")
        object.__setattr__(self, "neurons", tuple(self.neurons))
        object.__setattr__(self, "heads", tuple(self.heads))

    @property
    def is_empty(self) -> bool:
        return not self.neurons and not self.heads and self.mask is None

    def combine(self, other: "InterventionSpec") -> "InterventionSpec":
        """Both specs at once; a neuron edited twice gets the product of its scales."""
        if self.neurons and other.neurons and self.position != other.position:
            raise InterventionError(
                f"cannot combine neuron edits at position {self.position!r} with edits at {other.position!r}"
            )
        if self.mask and other.mask and self.mask != other.mask:
            raise InterventionError(f"cannot combine two pruning masks ({self.mask!r} and {other.mask!r})")
        position = self.position if self.neurons else other.position
        heads = tuple(dict.fromkeys(self.heads + other.heads))
        return InterventionSpec(self.neurons + other.neurons, heads, position, self.mask or other.mask)

    def to_dict(self) -> dict:
        data = {
            "neurons": [{"layer": e.layer, "neuron": e.neuron, "scale": e.scale} for e in self.neurons],
            "heads": [{"layer": h.layer, "head": h.head} for h in self.heads],
            "position": self.position,
        }
        if self.mask is not None:
            data["mask"] = self.mask
        return data

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: object) -> "InterventionSpec":
        data = _check_keys(data, {"neurons", "heads", "position", "mask"}, "intervention spec")
        neurons_data = data.get("neurons", [])
        heads_data = data.get("heads", [])
        if not isinstance(neurons_data, list) or not isinstance(heads_data, list):
            raise InterventionError("intervention spec: 'neurons' and 'heads' must be lists")
        neurons = []
        for record in neurons_data:
            _check_keys(record, {"layer", "neuron", "scale"}, "neuron edit")
            neurons.append(
                NeuronEdit(_as_int(record, "layer", "neuron edit"), _as_int(record, "neuron", "neuron edit"),
                           _as_float(record, "scale", "neuron edit", 0.0))
            )
        heads = []
        for record in heads_data:
            _check_keys(record, {"layer", "head"}, "head ablation")
            heads.append(HeadAblation(_as_int(record, "layer", "head ablation"), _as_int(record, "head", "head ablation")))
        position = data.get("position", "mask")
        mask = data.get("mask")
        if mask is not None and not (isinstance(mask, str) and mask):
            raise InterventionError(f"intervention spec: 'mask' must be the path of a mask file, got {mask!r}")
        return cls(tuple(neurons), tuple(heads), position, mask)

    @classmethod
    def from_json(cls, text: str) -> "InterventionSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InterventionError(f"intervention spec is not valid JSON: {error.msg} at line {error.lineno}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        from .store import write_text_atomic

        write_text_atomic(Path(path), self.to_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "InterventionSpec":
        path = Path(path)
        if not path.is_file():
            raise InterventionError(f"intervention spec file {str(path)!r} does not exist")
        try:
            return cls.from_json(path.read_text())
        except InterventionError as error:
            raise InterventionError(f"{path}: {error}") from None

    def validate(self, loaded: LoadedModel) -> None:
        """Raise if any edit names a layer, neuron or head the model does not have."""
        layers, neurons, heads = loaded.num_layers, loaded.ffn_width, loaded.num_heads
        for edit in self.neurons:
            _check_range("layer", edit.layer, layers, f"neuron edit {edit.layer}:{edit.neuron}")
            _check_range("neuron", edit.neuron, neurons, f"neuron edit {edit.layer}:{edit.neuron}")
        for ablation in self.heads:
            _check_range("layer", ablation.layer, layers, f"head ablation {ablation.layer}:{ablation.head}")
            _check_range("head", ablation.head, heads, f"head ablation {ablation.layer}:{ablation.head}")
        if self.mask is not None:
            from .pruning.masks import MaskSet

            MaskSet.load(self.mask).check(loaded)
        if self.neurons and self.position == "mask" and loaded.mask_token_id is None:
            raise InterventionError(
                f"position 'mask' needs a mask token, and {loaded.source!r} has none: use position 'last' or 'all'"
            )


def _check_range(what: str, value: int, size: int, context: str) -> None:
    if not 0 <= value < size:
        raise InterventionError(f"{context}: {what} {value} is out of range, valid {what}s are 0–{size - 1}")


class _PositionTracker:
    """Remembers the current batch's token ids so neuron hooks know which positions to edit."""

    def __init__(self, position: str, mask_token_id: int | None):
        self.position = position
        self.mask_token_id = mask_token_id
        self.input_ids: torch.Tensor | None = None
        self.attention_mask: torch.Tensor | None = None

    def __call__(self, module, args, kwargs):
        self.input_ids = input_ids_of(args, kwargs)
        self.attention_mask = kwargs.get("attention_mask")
        return None

    def selector(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """Boolean [batch, seq] of positions to edit."""
        if self.input_ids is None:
            raise InterventionError(
                f"position {self.position!r} needs the model to be called with input_ids; use position 'all'"
            )
        ids = self.input_ids.to(device)
        if self.position == "mask":
            return ids == self.mask_token_id
        attention = self.attention_mask
        if attention is None or attention.dim() != 2:
            attention = torch.ones_like(ids)
        # A cached generation step feeds only the new tokens; its mask also covers the past ones.
        attention = attention[:, -ids.shape[1]:].to(device)
        index = torch.arange(ids.shape[1], device=device).expand_as(ids)
        last = torch.where(attention.bool(), index, torch.full_like(index, -1)).max(dim=1).values
        return index == last[:, None]


class ActiveIntervention:
    """Hooks of one spec on one model; ``remove()`` restores the model exactly."""

    def __init__(self, loaded, spec: InterventionSpec):
        spec.validate(loaded)
        self.loaded = loaded
        self.spec = spec
        self.tracker = _PositionTracker(spec.position, loaded.mask_token_id)
        self._handles: list = []
        self._contexts = ExitStack()
        self._edited = 0  # positions the neuron hooks scaled, summed over layers and passes (kept on device)

    def attach(self) -> "ActiveIntervention":
        adapter = self.loaded.adapter
        try:
            if self.spec.neurons and self.spec.position != "all":
                self._handles.append(adapter.base.register_forward_pre_hook(self.tracker, with_kwargs=True))
            for layer, scales in self._neuron_scales().items():
                self._handles.append(adapter.ffn_out(layer).register_forward_pre_hook(self._neuron_hook(scales)))
            for layer, keep in self._head_keep().items():
                self._handles.append(adapter.attn_out(layer).register_forward_pre_hook(self._head_hook(keep)))
            if self.spec.mask is not None:
                from .pruning.masks import MaskSet, applied

                self._contexts.enter_context(applied(self.loaded, MaskSet.load(self.spec.mask)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()
        self._contexts.close()

    @property
    def edited_positions(self) -> int:
        """How many (token, layer) positions the neuron edits have scaled so far (0: they did nothing)."""
        return int(self._edited)

    def _neuron_scales(self) -> dict[int, torch.Tensor]:
        scales: dict[int, torch.Tensor] = {}
        for edit in self.spec.neurons:
            vector = scales.setdefault(edit.layer, torch.ones(self.loaded.ffn_width))
            vector[edit.neuron] *= edit.scale
        return scales

    def _head_keep(self) -> dict[int, torch.Tensor]:
        per_head: dict[int, torch.Tensor] = {}
        for ablation in self.spec.heads:
            per_head.setdefault(ablation.layer, torch.ones(self.loaded.num_heads))[ablation.head] = 0.0
        return {layer: head_columns(weights, self.loaded.head_size) for layer, weights in per_head.items()}

    def _neuron_hook(self, scales: torch.Tensor):
        position = self.spec.position
        tracker = self.tracker

        def hook(module, args):
            hidden = args[0]
            factor = scales.to(device=hidden.device, dtype=hidden.dtype)
            if position != "all":
                selected = tracker.selector(hidden.shape, hidden.device)
                factor = torch.where(selected[..., None], factor, torch.ones_like(factor))
                self._edited = self._edited + selected.sum()
            else:
                self._edited = self._edited + hidden[..., 0].numel()
            return (hidden * factor,) + tuple(args[1:])

        return hook

    @staticmethod
    def _head_hook(keep: torch.Tensor):
        return scaling_pre_hook(lambda hidden: keep.to(device=hidden.device, dtype=hidden.dtype))


@contextmanager
def intervene(loaded: LoadedModel, spec: InterventionSpec | dict | None) -> Iterator[ActiveIntervention | None]:
    """Apply ``spec`` to ``loaded`` for the duration of the block; hooks are removed on any exit."""
    if spec is None:
        yield None
        return
    if isinstance(spec, dict):
        spec = InterventionSpec.from_dict(spec)
    active = ActiveIntervention(loaded, spec).attach()
    try:
        yield active
    finally:
        active.remove()


def hook_count(loaded: LoadedModel) -> int:
    """Number of forward pre-hooks on the model (for checking that interventions clean up)."""
    return sum(len(module._forward_pre_hooks) for module in loaded.model.modules())
