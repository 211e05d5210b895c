"""Shared by the benchmarks: the BERT-base-shaped random model and the machine line."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

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
