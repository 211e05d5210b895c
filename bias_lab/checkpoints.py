"""Training checkpoints without pickle, shared by every training loop (mask training, distillation,
fine-tuning).

A checkpoint is two files in the run folder: ``checkpoint.safetensors`` (every tensor: weights or
scores, the optimizers' moments, anything else a loop keeps) and ``checkpoint.json`` (step, history,
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


# --- the two files ------------------------------------------------------------------------------

def write_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], state: dict) -> None:
    """``tensors`` and the JSON-able ``state``, sealed with one token."""
    token = secrets.token_hex(8)
    write_safetensors_atomic(Path(folder) / TENSORS, tensors, metadata={_TOKEN: token})
    write_json_atomic(Path(folder) / STATE, {**state, _TOKEN: token})


def read_checkpoint(folder: Path, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict] | None:
    """``(tensors, state)`` of a complete checkpoint in ``folder``, or None (missing, or the two files
    are of different checkpoints)."""
    folder = Path(folder)
    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        return None
    from safetensors import safe_open
    from safetensors.torch import load_file

    state = json.loads((folder / STATE).read_text())
    with safe_open(str(folder / TENSORS), framework="pt") as handle:
        if (handle.metadata() or {}).get(_TOKEN) != state.pop(_TOKEN, None):
            return None  # a crash between the two writes
    return load_file(str(folder / TENSORS), device=str(device)), state


def remove_training_checkpoint(folder: Path) -> None:
    for name in (STATE, TENSORS):
        (Path(folder) / name).unlink(missing_ok=True)


# --- an optimizer as named tensors --------------------------------------------------------------

def optimizer_tensors(state_dict: dict, prefix: str = _OPTIMIZER) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's ``state_dict()`` as tensors named ``prefix/slot/key`` plus what JSON holds of it
    (the slot layout and the parameter groups)."""
    tensors, slots = {}, {}
    for index, state in state_dict["state"].items():
        slots[str(index)] = sorted(state)
        for key, value in state.items():
            tensors[f"{prefix}/{index}/{key}"] = torch.as_tensor(value).detach().cpu()
    return tensors, {"slots": slots, "param_groups": state_dict["param_groups"]}


def optimizer_state(tensors: dict[str, torch.Tensor], layout: dict, prefix: str = _OPTIMIZER) -> dict:
    """The inverse of :func:`optimizer_tensors`: a ``state_dict`` for ``optimizer.load_state_dict``."""
    state = {int(index): {key: tensors[f"{prefix}/{index}/{key}"] for key in keys}
             for index, keys in layout["slots"].items()}
    for slot in state.values():  # Adam keeps its step count on the CPU
        if "step" in slot:
            slot["step"] = slot["step"].cpu()
    return {"state": state, "param_groups": layout["param_groups"]}


# --- one optimizer and named tensors (mask training, distillation) ------------------------------

def save_training_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], optimizer: dict, state: dict) -> None:
    """Write ``tensors`` (names not starting with 'optimizer/'), the optimizer's state dict and the
    JSON-able ``state`` (step, history, …)."""
    moments, layout = optimizer_tensors(optimizer)
    # clone: tied weights share storage, which safetensors refuses
    named = {name: value.detach().cpu().clone() for name, value in tensors.items()}
    write_checkpoint(folder, {**named, **moments}, {**state, **layout})


def load_training_checkpoint(folder: Path, device: torch.device | str) -> tuple[dict, dict, dict] | None:
    """``(tensors, optimizer state dict, state)`` of a complete checkpoint in ``folder``, or None."""
    found = read_checkpoint(folder, device)
    if found is None:
        return None
    everything, state = found
    tensors = {name: value for name, value in everything.items() if not name.startswith(f"{_OPTIMIZER}/")}
    layout = {"slots": state.pop("slots"), "param_groups": state.pop("param_groups")}
    return tensors, optimizer_state(everything, layout), state
