"""A fine-tuning checkpoint (the shared pickle-free pair of :mod:`bias_lab.checkpoints`): the trained
modules' parameters (model weights, scores), each optimizer's moments and the random-number state
as tensors; the step, the history and the optimizers' settings as JSON. Resuming from it continues
the very run that was interrupted (same batches, same dropout)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ..checkpoints import optimizer_state, optimizer_tensors, read_checkpoint, write_checkpoint


def save_checkpoint(folder: Path, *, step: int, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], history: list[dict], seconds: float) -> None:
    """Save the trained ``modules`` (their parameters), ``optimizers`` and the RNG state after ``step`` steps."""
    tensors = {}
    for name, module in modules.items():
        for key, value in module.named_parameters():
            tensors[f"{name}/{key}"] = value.detach().cpu().contiguous()
    layouts = {}
    for name, optimizer in optimizers.items():
        moments, layouts[name] = optimizer_tensors(optimizer.state_dict(), f"optimizer:{name}")
        tensors.update(moments)
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    write_checkpoint(folder, tensors, {"step": step, "history": history, "seconds": seconds,
                                       "modules": sorted(modules), "optimizers": layouts})


def load_checkpoint(folder: Path, *, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer]) -> dict | None:
    """Restore a checkpoint into ``modules`` and ``optimizers`` (and the RNG state); return
    ``{step, history, seconds}``, or None when there is no complete checkpoint."""
    found = read_checkpoint(folder)
    if found is None:
        return None
    tensors, state = found
    if sorted(modules) != state["modules"] or sorted(optimizers) != sorted(state["optimizers"]):
        return None  # a checkpoint of another kind of training (e.g. without scores): start again
    with torch.no_grad():
        for name, module in modules.items():
            for key, parameter in module.named_parameters():
                parameter.copy_(tensors[f"{name}/{key}"].to(parameter.device, parameter.dtype))
    for name, optimizer in optimizers.items():
        optimizer.load_state_dict(optimizer_state(tensors, state["optimizers"][name], f"optimizer:{name}"))
    torch.set_rng_state(tensors["rng/cpu"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    return {"step": state["step"], "history": state["history"], "seconds": state["seconds"]}


def remove_checkpoint(folder: Path) -> None:
    """Remove the checkpoint's own folder (fine-tuning keeps each checkpoint in a folder of its own)."""
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
