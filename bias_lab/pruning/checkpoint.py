"""A mask-training checkpoint (see :mod:`bias_lab.checkpoints`): the block scores, Adam's moments and
the objective's means as tensors; step, history and timing as JSON."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints import load_training_checkpoint, remove_training_checkpoint, save_training_checkpoint

_SCORES = "scores/"
_MEANS = "means"


def save_checkpoint(folder: Path, *, step: int, scores: dict, optimizer: dict, history: list[dict],
                    means: torch.Tensor | None, seconds: float) -> None:
    tensors = {f"{_SCORES}{name}": value for name, value in scores.items()}
    if means is not None:
        tensors[_MEANS] = means
    save_training_checkpoint(folder, tensors, optimizer, {"step": step, "history": history, "seconds": seconds})


def load_checkpoint(folder: Path, device: torch.device) -> dict | None:
    """The saved state as ``{step, scores, optimizer, history, means, seconds}``, or None."""
    loaded = load_training_checkpoint(folder, device)
    if loaded is None:
        return None
    tensors, optimizer, state = loaded
    scores = {name[len(_SCORES):]: value for name, value in tensors.items() if name.startswith(_SCORES)}
    return {"step": state["step"], "history": state["history"], "seconds": state["seconds"], "scores": scores,
            "optimizer": optimizer, "means": tensors.get(_MEANS)}


def remove_checkpoint(folder: Path) -> None:
    remove_training_checkpoint(folder)
