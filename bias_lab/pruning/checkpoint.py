"""A mask-training checkpoint without pickle: tensors (scores, Adam's moments, the objective's
means) in ``checkpoint.safetensors``, everything else (step, history, optimizer settings) in
``checkpoint.json``. The JSON is written last: it marks a complete checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..store import write_json_atomic, write_safetensors_atomic

TENSORS = "checkpoint.safetensors"
STATE = "checkpoint.json"


def save_checkpoint(folder: Path, *, step: int, scores: dict, optimizer: dict, history: list[dict],
                    means: torch.Tensor | None, seconds: float) -> None:
    tensors = {f"scores/{name}": value.detach().cpu() for name, value in scores.items()}
    slots = {}
    for index, state in optimizer["state"].items():
        slots[str(index)] = sorted(state)
        for key, value in state.items():
            tensors[f"optimizer/{index}/{key}"] = torch.as_tensor(value).detach().cpu()
    if means is not None:
        tensors["means"] = means.detach().cpu()
    write_safetensors_atomic(folder / TENSORS, tensors)
    write_json_atomic(folder / STATE, {"step": step, "history": history, "seconds": seconds, "slots": slots,
                                       "param_groups": optimizer["param_groups"], "has_means": means is not None})


def load_checkpoint(folder: Path, device: torch.device) -> dict | None:
    """The saved state as ``{step, scores, optimizer, history, means, seconds}``, or None."""
    if not (folder / STATE).is_file() or not (folder / TENSORS).is_file():
        return None
    from safetensors.torch import load_file

    state = json.loads((folder / STATE).read_text())
    tensors = load_file(str(folder / TENSORS), device=str(device))
    scores = {name[len("scores/"):]: value for name, value in tensors.items() if name.startswith("scores/")}
    optimizer_state = {int(index): {key: tensors[f"optimizer/{index}/{key}"] for key in keys}
                       for index, keys in state["slots"].items()}
    for slot in optimizer_state.values():  # Adam keeps its step count on the CPU
        if "step" in slot:
            slot["step"] = slot["step"].cpu()
    return {"step": state["step"], "history": state["history"], "seconds": state["seconds"], "scores": scores,
            "optimizer": {"state": optimizer_state, "param_groups": state["param_groups"]},
            "means": tensors["means"] if state["has_means"] else None}


def remove_checkpoint(folder: Path) -> None:
    for name in (STATE, TENSORS):
        (folder / name).unlink(missing_ok=True)
