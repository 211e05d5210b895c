"""A fine-tuning checkpoint without pickle: the trained tensors (model weights, scores), the
optimizers' moments and the random-number state in ``checkpoint.safetensors``; the step, the
history and the optimizers' settings in ``checkpoint.json``. Both carry the same random token, so a
crash between the two writes leaves files that disagree and count as no checkpoint. Resuming from it
continues the very run that was interrupted (same batches, same dropout)."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import torch

from ..store import write_json_atomic, write_safetensors_atomic

TENSORS = "checkpoint.safetensors"
STATE = "checkpoint.json"


def _optimizer_tensors(prefix: str, state: dict, tensors: dict) -> dict:
    slots = {}
    for index, values in state["state"].items():
        slots[str(index)] = sorted(values)
        for key, value in values.items():
            tensors[f"{prefix}/{index}/{key}"] = torch.as_tensor(value).detach().cpu()
    return {"slots": slots, "param_groups": state["param_groups"]}


def _optimizer_state(prefix: str, saved: dict, tensors: dict) -> dict:
    state = {}
    for index, keys in saved["slots"].items():
        state[int(index)] = {key: tensors[f"{prefix}/{index}/{key}"] for key in keys}
        if "step" in state[int(index)]:  # Adam keeps its step count on the CPU
            state[int(index)]["step"] = state[int(index)]["step"].cpu()
    return {"state": state, "param_groups": saved["param_groups"]}


def save_checkpoint(folder: Path, *, step: int, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], history: list[dict], seconds: float) -> None:
    """Save the trained ``modules`` (their parameters), ``optimizers`` and the RNG state after ``step`` steps."""
    tensors = {}
    for name, module in modules.items():
        for key, value in module.named_parameters():
            tensors[f"{name}/{key}"] = value.detach().cpu().contiguous()
    optimizer_meta = {name: _optimizer_tensors(f"optimizer:{name}", optimizer.state_dict(), tensors)
                      for name, optimizer in optimizers.items()}
    tensors["rng/cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    token = secrets.token_hex(8)
    write_safetensors_atomic(folder / TENSORS, tensors, metadata={"token": token})
    write_json_atomic(folder / STATE, {"step": step, "history": history, "seconds": seconds, "token": token,
                                       "modules": sorted(modules), "optimizers": optimizer_meta})


def load_checkpoint(folder: Path, *, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer]) -> dict | None:
    """Restore a checkpoint into ``modules`` and ``optimizers`` (and the RNG state); return
    ``{step, history, seconds}``, or None when there is no complete checkpoint."""
    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        return None
    from safetensors import safe_open
    from safetensors.torch import load_file

    state = json.loads((folder / STATE).read_text())
    with safe_open(str(folder / TENSORS), framework="pt") as handle:
        if (handle.metadata() or {}).get("token") != state.get("token"):
            return None  # the two files are of different checkpoints (a crash between the writes)
    if sorted(modules) != state["modules"] or sorted(optimizers) != sorted(state["optimizers"]):
        return None  # a checkpoint of another kind of training (e.g. without scores): start again
    tensors = load_file(str(folder / TENSORS))
    with torch.no_grad():
        for name, module in modules.items():
            for key, parameter in module.named_parameters():
                parameter.copy_(tensors[f"{name}/{key}"].to(parameter.device, parameter.dtype))
    for name, optimizer in optimizers.items():
        restored = _optimizer_state(f"optimizer:{name}", state["optimizers"][name], tensors)
        optimizer.load_state_dict(restored)
    torch.set_rng_state(tensors["rng/cpu"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    return {"step": state["step"], "history": state["history"], "seconds": state["seconds"]}


def remove_checkpoint(folder: Path) -> None:
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
