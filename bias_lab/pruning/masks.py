"""Masked forward passes, trainable scores with a straight-through threshold, and mask files.

A masked matrix computes with ``W ⊙ M`` (its bias entry masked too when the whole output row is),
through a per-instance forward that leaves the module's parameters — and so the checkpoint —
untouched; removing it restores the original forward bit for bit. While training, ``M =
1[σ(S) > τ]`` in the forward pass and the gradient reaches the scores S straight through."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pandas as pd
import torch
from torch import nn

from ..errors import BiasLabError
from ..families import stores_in_out
from .layout import Site, block_shape, expand, parse_block, pruned_sites

if TYPE_CHECKING:
    from ..models import LoadedModel


class _ThresholdSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores: torch.Tensor, threshold: float) -> torch.Tensor:
        return (torch.sigmoid(scores) > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output, None


def binarize(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """1[σ(S) > τ] with the gradient passed straight through to S."""
    return _ThresholdSTE.apply(scores, threshold)


def threshold_schedule(step: int, total: int, *, initial: float = 0.0, final: float = 0.1, warmup: int = 0,
                       cooldown: int = 0) -> float:
    """Cubic schedule: τ stays at ``initial`` for ``warmup`` steps, rises as
    final + (initial − final)·(1 − progress)³, and stays at ``final`` for the last ``cooldown`` steps."""
    span = max(1, total - warmup - cooldown)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    return final + (initial - final) * (1.0 - progress) ** 3


def _patch(site: Site, matrix_mask: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """Give ``site.module`` a forward that uses its weight times the mask; return the undo."""
    module = site.module
    transposed = stores_in_out(module)

    def forward(x):
        mask = matrix_mask().to(module.weight.dtype)
        weight = module.weight * (mask.T if transposed else mask)
        bias = module.bias
        if bias is not None:
            bias = bias * (mask.amax(dim=1) > 0).to(bias.dtype)
        if transposed:
            out = x.reshape(-1, x.shape[-1]) @ weight
            out = out + bias if bias is not None else out
            return out.reshape(*x.shape[:-1], weight.shape[1])
        return nn.functional.linear(x, weight, bias)

    module.forward = forward

    def undo():
        del module.forward

    return undo


@dataclass
class MaskSet:
    """Block masks (bool) for the prunable matrices of one model, with their metadata."""

    block: int | str
    masks: dict[str, torch.Tensor]
    metadata: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        from ..store import write_safetensors_atomic

        metadata = {**{k: json.dumps(v) for k, v in self.metadata.items()}, "block": json.dumps(self.block)}
        write_safetensors_atomic(Path(path), {k: v.to(torch.uint8) for k, v in self.masks.items()}, metadata)

    @classmethod
    def load(cls, path: str | Path) -> "MaskSet":
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise BiasLabError(f"mask file {str(path)!r} does not exist")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                masks = {key: handle.get_tensor(key).bool() for key in handle.keys()}
        except Exception as error:
            raise BiasLabError(f"{path} is not a mask file: {error}") from None
        if "block" not in metadata:
            raise BiasLabError(f"{path} is not a bias-lab mask file (no 'block' in its metadata)")
        decoded = {k: json.loads(v) for k, v in metadata.items()}
        return cls(decoded.pop("block"), masks, decoded)

    def check(self, loaded: LoadedModel) -> list[Site]:
        """The sites this mask prunes, after checking that it fits the model."""
        by_key = {site.key: site for site in pruned_sites(loaded, self.block, tuple(self.metadata.get("head_roles", ["value"])))}
        chosen = []
        for key, mask in self.masks.items():
            site = by_key.get(key)
            if site is None:
                raise BiasLabError(f"mask entry {key!r} has no matrix in {loaded.source!r} (a mask of another model?)")
            expected = block_shape(site.shape, self.block, site, loaded.num_heads)
            if tuple(mask.shape) != tuple(expected):
                raise BiasLabError(f"mask entry {key!r} has shape {tuple(mask.shape)}, the model needs {tuple(expected)}")
            chosen.append(site)
        return chosen


@contextmanager
def applied(loaded: LoadedModel, masks: MaskSet) -> Iterator[None]:
    """The model computes with the mask inside the block; outside, exactly as before."""
    undo = []
    try:
        for site in masks.check(loaded):
            block_mask = masks.masks[site.key].to(loaded.device)
            matrix = expand(block_mask.float(), site.shape, masks.block, site, loaded.head_size)
            undo.append(_patch(site, lambda matrix=matrix: matrix))
        yield
    finally:
        for restore in reversed(undo):
            restore()


class Scores(nn.Module):
    """Trainable scores, one per block of each pruned matrix (initialised to ``init``)."""

    def __init__(self, loaded, block: int | str, *, init: float = 0.0, head_roles: tuple[str, ...] = ("value",)):
        super().__init__()
        self.block = parse_block(block)
        self.head_roles = head_roles
        self.sites = pruned_sites(loaded, self.block, head_roles)
        self.head_size, self.num_heads = loaded.head_size, loaded.num_heads
        self.scores = nn.ParameterDict({
            site.key.replace(".", "__"): nn.Parameter(torch.full(block_shape(site.shape, self.block, site, loaded.num_heads),
                                                                 float(init), device=loaded.device))
            for site in self._score_sites()})
        self.threshold = 0.0
        self.suspended = False

    @contextmanager
    def suspend(self) -> Iterator[None]:
        """Inside, the attached model computes as the original (every mask entry 1)."""
        self.suspended = True
        try:
            yield
        finally:
            self.suspended = False

    def _score_sites(self) -> list[Site]:
        if self.block != "neuron":
            return self.sites
        return [s for s in self.sites if s.role == "ffn_in"]  # ffn_out shares its layer's ffn_in scores

    def _scores_for(self, site: Site) -> torch.Tensor:
        key = site.key if not (self.block == "neuron" and site.role.startswith("ffn")) else f"layer{site.layer}.ffn_in"
        return self.scores[key.replace(".", "__")]

    @contextmanager
    def attached(self) -> Iterator[None]:
        """Forward passes inside use the binarized scores at the current ``threshold``."""
        undo = []
        try:
            for site in self.sites:
                def matrix(site=site):
                    if self.suspended:
                        return torch.ones(site.shape, device=site.module.weight.device)
                    return expand(binarize(self._scores_for(site), self.threshold), site.shape, self.block, site,
                                  self.head_size)
                undo.append(_patch(site, matrix))
            yield
        finally:
            for restore in reversed(undo):
                restore()

    def to_masks(self, metadata: dict | None = None) -> MaskSet:
        with torch.no_grad():
            masks = {site.key: (torch.sigmoid(self._scores_for(site)) > self.threshold).cpu() for site in self.sites}
        return MaskSet(self.block, masks, {"head_roles": list(self.head_roles), **(metadata or {})})


def densities(loaded: LoadedModel, masks: MaskSet) -> pd.DataFrame:
    """Percentage of weights kept per layer and module (unmasked matrices count as 100 %)."""
    rows = []
    masked = {site.key: site for site in masks.check(loaded)}
    for site in pruned_sites(loaded, "unstructured"):
        rows_count, columns = site.shape
        total = rows_count * columns
        if site.key in masked:
            matrix = expand(masks.masks[site.key].float(), site.shape, masks.block, site, loaded.head_size)
            kept = int(matrix.sum())
        else:
            kept = total
        rows.append({"layer": site.layer, "module": site.role, "kept": kept, "total": total,
                     "density": 100.0 * kept / total})
    return pd.DataFrame(rows)


def overall_density(table: pd.DataFrame) -> float:
    """Percentage of weights kept over the rows of a :func:`densities` table (all of it, a layer, …)."""
    return float(100.0 * table["kept"].sum() / table["total"].sum())


def surviving_heads(loaded: LoadedModel, masks: MaskSet) -> pd.DataFrame:
    """Layer × head table: a head is pruned when every value row of it is masked out."""
    masked = {site.key: site for site in masks.check(loaded)}
    size, rows = loaded.head_size, []
    for layer in range(loaded.num_layers):
        site = masked.get(f"layer{layer}.value") or masked.get(f"layer{layer}.query")
        if site is not None:
            matrix = expand(masks.masks[site.key].float(), site.shape, masks.block, site, loaded.head_size)
            if site.role == "query" and loaded.adapter.family.qkv_layout == "stacked":  # fused QKV: the value rows
                matrix = matrix[loaded.adapter.head_rows(layer, "value")[1]]
        for head in range(loaded.num_heads):
            alive = True if site is None else bool(matrix[head * size:(head + 1) * size].any())
            rows.append({"layer": layer, "head": head, "alive": alive})
    return pd.DataFrame(rows)
