"""How runs that compare masks name them: the unmasked model, and each mask by its run folder (a
``masks train`` run) or its file — unique within a run."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

UNMASKED = "(none)"        # the mask column of the unmasked model's rows, as in the mask report
UNMASKED_NAME = "unmasked"


def mask_name(path: str | Path) -> str:
    path = Path(path)
    return path.parent.name if path.name == "mask.safetensors" and path.parent.name else path.stem


def mask_names(paths: Sequence[str | Path | None], given: Sequence[str | None] | None = None) -> list[str]:
    """A name per mask (None = the unmasked model): ``given`` names where set, else :func:`mask_name`;
    a repeated name gets ``-2``, ``-3`` …"""
    names, seen = [], {}
    for index, path in enumerate(paths):
        name = (given[index] if given and given[index] else None) or (UNMASKED_NAME if path is None else mask_name(path))
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name}-{count}")
    return names


def resolved(path: str | Path | None) -> str:
    """A mask as stored in a run's table: its absolute path, or ``(none)``."""
    return UNMASKED if path is None else str(Path(path).expanduser().resolve())
