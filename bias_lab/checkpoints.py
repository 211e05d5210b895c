"""Training checkpoints without pickle, shared by every training loop (mask training, distillation).

A checkpoint is two files in the run folder: ``checkpoint.safetensors`` (every tensor: weights or
scores, the optimizer's moments, anything else a loop keeps) and ``checkpoint.json`` (step, history,
optimizer settings and which tensors belong to which optimizer slot). Both carry the same random
token: a crash between the two writes leaves files that disagree, which count as no checkpoint
rather than as tensors of one step read with the history of another."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import torch

from .store import write_json_atomic, write_safetensors_atomic

TENSORS = "checkpoint.safetensors"
STATE = "checkpoint.json"
_OPTIMIZER = "optimizer"
_TOKEN = "checkpoint_token"


def optimizer_tensors(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """An optimizer's ``state_dict()`` as named tensors plus the slot layout JSON can hold."""
    tensors, slots = {}, {}
    for index, state in state_dict["state"].items():
        slots[str(index)] = sorted(state)
        for key, value in state.items():
            tensors[f"{_OPTIMIZER}/{index}/{key}"] = torch.as_tensor(value).detach().cpu()
    return tensors, slots


def optimizer_state(tensors: dict[str, torch.Tensor], slots: dict[str, list[str]], param_groups: list) -> dict:
    """The inverse of :func:`optimizer_tensors`: a ``state_dict`` for ``optimizer.load_state_dict``."""
    state = {int(index): {key: tensors[f"{_OPTIMIZER}/{index}/{key}"] for key in keys} for index, keys in slots.items()}
    for slot in state.values():  # Adam keeps its step count on the CPU
        if "step" in slot:
            slot["step"] = slot["step"].cpu()
    return {"state": state, "param_groups": param_groups}


def save_training_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], optimizer: dict, state: dict) -> None:
    """Write ``tensors`` (names without '/' prefixes of 'optimizer/'), the optimizer's state dict and the
    JSON-able ``state`` (step, history, …)."""
    moments, slots = optimizer_tensors(optimizer)
    # clone: tied weights share storage, which safetensors refuses
    named = {name: value.detach().cpu().clone() for name, value in tensors.items()}
    token = secrets.token_hex(8)
    write_safetensors_atomic(folder / TENSORS, {**named, **moments}, metadata={_TOKEN: token})
    write_json_atomic(folder / STATE, {**state, "slots": slots, "param_groups": optimizer["param_groups"], _TOKEN: token})


def load_training_checkpoint(folder: Path, device: torch.device | str) -> tuple[dict, dict, dict] | None:
    """``(tensors, optimizer state dict, state)`` of a complete checkpoint in ``folder``, or None."""
    folder = Path(folder)
    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        return None
    from safetensors import safe_open
    from safetensors.torch import load_file

    state = json.loads((folder / STATE).read_text())
    with safe_open(str(folder / TENSORS), framework="pt") as handle:
        if (handle.metadata() or {}).get(_TOKEN) != state.pop(_TOKEN, None):
            return None  # the two files are of different checkpoints (a crash between the writes)
    everything = load_file(str(folder / TENSORS), device=str(device))
    tensors = {name: value for name, value in everything.items() if not name.startswith(f"{_OPTIMIZER}/")}
    optimizer = optimizer_state(everything, state.pop("slots"), state.pop("param_groups"))
    return tensors, optimizer, state


def remove_training_checkpoint(folder: Path) -> None:
    for name in (STATE, TENSORS):
        (Path(folder) / name).unlink(missing_ok=True)
