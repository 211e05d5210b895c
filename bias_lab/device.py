"""Device and dtype selection: CUDA, then MPS, then CPU."""

from __future__ import annotations

import torch

from .errors import BiasLabError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device must be available."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise BiasLabError(f"unknown device {device!r}: use one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")
    if kind == "cuda" and not torch.cuda.is_available():
        raise BiasLabError(f"device {device!r} requested but CUDA is not available here: use 'auto' or 'cpu'")
    if kind == "mps" and not _mps_available():
        raise BiasLabError(f"device {device!r} requested but MPS is not available here: use 'auto' or 'cpu'")
    return torch.device(name)


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """Parse a dtype name; half precision is refused on CPU, where it is slow and lossy."""
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        key = str(dtype).strip().lower()
        if key not in DTYPES:
            raise BiasLabError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
        resolved = DTYPES[key]
    if resolved == torch.float16 and device.type == "cpu":
        raise BiasLabError("dtype 'float16' needs a GPU: use 'float32' or 'bfloat16' on CPU")
    return resolved


def device_description(device: torch.device | None = None) -> dict:
    """Facts about a device for the CLI's ``info`` and the app's sidebar."""
    device = device or resolve_device("auto")
    facts = {"device": str(device), "name": "CPU", "total_memory_bytes": None, "free_memory_bytes": None}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        facts.update(name=torch.cuda.get_device_name(index), total_memory_bytes=int(total), free_memory_bytes=int(free))
    elif device.type == "mps":
        facts["name"] = "Apple MPS"
    return facts


def available_bytes(device: torch.device) -> int:
    """Memory a computation may plan to use: 60 % of the free GPU memory, or on a CPU 30 % of the
    available RAM (at most 8 GiB)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    try:
        with open("/proc/meminfo") as handle:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in handle}
        return int(min(info["MemAvailable"] * 0.3, 8 * 2**30))
    except (OSError, KeyError, ValueError):
        return 2 * 2**30


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()
