"""Prunable matrices of a model and their block layouts.

Every prunable matrix is seen in its logical [out, in] orientation (a family whose weight layout is
``in_out``, GPT-2, stores [in, out]). A layout maps a small score/mask tensor (one entry per block)
onto the full matrix: square B×B blocks, whole heads (the head_size rows of the value projection —
optionally of Q, K, V too), FFN neurons (a neuron's row in the FFN input projection — its input and
gate rows in a fused input-gate projection — and its column in the output projection share one
entry) or single weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import BiasLabError
from ..families import logical_shape

if TYPE_CHECKING:
    from ..models import LoadedModel

MODULES = ("query", "key", "value", "attn_out", "ffn_in", "ffn_out")
BLOCKS_HELP = "a block size (32, 64, 128, …), 'head', 'neuron' or 'unstructured'"


def parse_block(block: str | int) -> int | str:
    if isinstance(block, int) or str(block).isdigit():
        size = int(block)
        if size < 1:
            raise BiasLabError(f"block size {size} must be at least 1")
        return size
    if block in ("head", "neuron", "unstructured"):
        return block
    raise BiasLabError(f"unknown block {block!r}: use {BLOCKS_HELP}")


@dataclass(frozen=True)
class Site:
    """One prunable matrix: its layer, its role and the module."""

    key: str
    layer: int
    role: str
    module: nn.Module
    # The output rows split into this many equal chunks with one row of each per FFN neuron: 2 for a
    # fused input-gate projection (ModernBERT's Wi), otherwise 1.
    neuron_chunks: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        return logical_shape(self.module)


def sites(loaded: LoadedModel, roles: tuple[str, ...] = MODULES) -> list[Site]:
    """Distinct prunable modules (a fused QKV projection appears once, as ``query``)."""
    unknown = [r for r in roles if r not in MODULES]
    if unknown:
        raise BiasLabError(f"unknown module {unknown[0]!r}: use some of {', '.join(MODULES)}")
    adapter, found, seen = loaded.adapter, [], set()
    ffn_in_chunks = adapter.family.ffn_in_chunks
    for layer in range(adapter.num_layers):
        candidates = []
        projections = adapter.attention_projections(layer)
        for role in ("query", "key", "value"):
            candidates.append((role, projections[role]))
        candidates.append(("attn_out", adapter.attn_out(layer)))
        for index, module in enumerate(adapter.ffn_in(layer)):
            candidates.append(("ffn_in" if index == 0 else f"ffn_in{index + 1}", module))
        candidates.append(("ffn_out", adapter.ffn_out(layer)))
        for role, module in candidates:
            base_role = "ffn_in" if role.startswith("ffn_in") else role
            if base_role not in roles or id(module) in seen:
                continue
            seen.add(id(module))
            chunks = ffn_in_chunks if base_role == "ffn_in" else 1
            found.append(Site(f"layer{layer}.{role}", layer, role, module, chunks))
    return found


def expand(block_mask: torch.Tensor, shape: tuple[int, int], block: int | str, site: Site, head_size: int) -> torch.Tensor:
    """The [out, in] matrix mask of a block mask."""
    rows, columns = shape
    if block == "unstructured":
        return block_mask
    if isinstance(block, int):
        return block_mask.repeat_interleave(block, 0)[:rows].repeat_interleave(block, 1)[:, :columns]
    if block == "head":
        return block_mask.repeat_interleave(head_size)[:, None].expand(rows, columns)
    if block == "neuron":
        if site.role == "ffn_out":
            return block_mask[None, :].expand(rows, columns)
        return block_mask.repeat(site.neuron_chunks)[:, None].expand(rows, columns)
    raise BiasLabError(f"unknown block {block!r}: use {BLOCKS_HELP}")


def block_shape(shape: tuple[int, int], block: int | str, site: Site, num_heads: int) -> tuple[int, ...]:
    rows, columns = shape
    if block == "unstructured":
        return (rows, columns)
    if isinstance(block, int):
        return (-(-rows // block), -(-columns // block))
    if block == "head":
        return (num_heads,)
    return (columns,) if site.role == "ffn_out" else (rows // site.neuron_chunks,)


def pruned_sites(loaded: LoadedModel, block: int | str, head_roles: tuple[str, ...] = ("value",)) -> list[Site]:
    """The matrices a block kind prunes: heads → the value (or Q/K/V) projections; neurons → the
    FFN projections; square blocks and single weights → every prunable matrix."""
    if block == "head":
        if loaded.adapter.family.qkv_layout == "stacked":
            raise BiasLabError(f"head blocks need separate Q/K/V projections; {loaded.family} fuses them: use square blocks")
        return sites(loaded, head_roles)
    if block == "neuron":
        return sites(loaded, ("ffn_in", "ffn_out"))
    return sites(loaded)
