"""Shared by the benchmarks: the BERT-base-shaped random model, the machine line, and the checks that
the fast path computes what the baseline does (a benchmark that fails them exits non-zero)."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
SHARED_VOCAB = SHARED / "models" / "all-MiniLM-L6-v2" / "vocab.txt"


def bert_base_folder(folder: Path) -> Path:
    """A BERT-base-shaped model with random weights (12 × 768, FFN 3072, 30522 vocabulary), built once."""
    from bias_lab.tiny import _wordpiece_vocab, build_tiny_model

    if (folder / "config.json").is_file():
        return folder
    vocab = SHARED_VOCAB
    if not vocab.is_file():  # our own words padded with unused slots to BERT's vocabulary size
        folder.mkdir(parents=True, exist_ok=True)
        words = _wordpiece_vocab()
        vocab = folder.parent / "vocab.txt"
        vocab.write_text("\n".join(words + [f"[unused{i}]" for i in range(30522 - len(words))]) + "\n")
    return build_tiny_model("bert", folder, layers=12, hidden=768, heads=12, ffn=3072, vocab_file=vocab)


def bench_parser(doc: str):
    """The arguments every benchmark takes: --device and --model-dir (where the model is built once)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model-dir", type=Path, help="where to build/keep the BERT-base-shaped model")
    return parser


def load_bench_model(args):
    import tempfile

    from bias_lab.models import load_model

    folder = args.model_dir or Path(tempfile.mkdtemp()) / "bert-base-random"
    return load_model(bert_base_folder(folder), device=args.device)


def machine_line(device) -> str:
    from bias_lab.device import device_description

    return (f"machine: {platform.machine()}, {torch.get_num_threads()} threads; device: "
            f"{device_description(device)['name']}; torch {torch.__version__}")


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _as_array(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def check_close(name: str, column: str, fast, baseline, rtol: float, atol: float = 0.0, scale=None) -> float:
    """Exit the benchmark (SystemExit, one line naming the variant, the column and the worst
    difference) unless ``|fast − baseline| ≤ atol + rtol · scale`` for every element; ``scale`` is
    ``|baseline|`` unless given (e.g. each layer's largest score, for values near zero), broadcast to
    the values' shape. NaN must meet NaN and ±inf the same inf. Returns the worst difference relative
    to the scale (0 where all are equal), for the benchmark's table."""
    got, want = _as_array(fast), _as_array(baseline)
    if got.shape != want.shape:
        raise SystemExit(f"CHECK FAILED: {name}: {column}: shape {got.shape}, the baseline's {want.shape}")
    size = np.abs(want) if scale is None else np.broadcast_to(np.abs(_as_array(scale)), want.shape)
    with np.errstate(invalid="ignore"):
        same = (got == want) | (np.isnan(got) & np.isnan(want))  # equal infinities and NaN pairs
        difference = np.where(same, 0.0, np.abs(got - want))  # NaN where only one side is NaN
        allowed = atol + rtol * size
        bad = ~same & ~(difference <= allowed)
    if bad.any():
        with np.errstate(all="ignore"):
            excess = np.where(bad, np.nan_to_num(difference / np.where(allowed > 0, allowed, 1e-300), nan=np.inf), -1.0)
        at = np.unravel_index(int(np.argmax(excess)), want.shape)
        at = tuple(int(i) for i in at)
        where = f" at {at if len(at) > 1 else at[0]}" if want.ndim else ""
        raise SystemExit(
            f"CHECK FAILED: {name}: {column}: worst difference from the baseline "
            f"{'NaN on one side' if np.isnan(difference[at]) else format(difference[at], '.3g')}{where} "
            f"(fast {got[at]:.9g}, baseline {want[at]:.9g}; allowed {allowed[at]:.3g} = {atol:g} + {rtol:g}·scale; "
            f"{int(bad.sum())} of {bad.size} values outside)")
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(difference > 0, difference / np.where(size > 0, size, np.inf), 0.0)
    return float(relative.max()) if relative.size else 0.0


def check_equal(name: str, column: str, fast, baseline) -> None:
    """Exit the benchmark unless two sequences (ids, counts, keys) are identical, element by element."""
    fast, baseline = list(fast), list(baseline)
    if len(fast) != len(baseline):
        raise SystemExit(f"CHECK FAILED: {name}: {column}: {len(fast)} values, the baseline's {len(baseline)}")
    for index, (got, want) in enumerate(zip(fast, baseline)):
        if got != want:
            raise SystemExit(f"CHECK FAILED: {name}: {column}: first difference from the baseline at {index} "
                             f"(fast {got!r}, baseline {want!r})")
