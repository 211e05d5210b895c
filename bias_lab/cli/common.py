"""Arguments and output helpers shared by subcommands."""

from __future__ import annotations

import json
import sys

from ..models import default_model


def add_model_arguments(parser) -> None:
    parser.add_argument("--model", default=None,
                        help="hub id or local folder (default: $BIAS_LAB_MODEL or bert-base-uncased)")
    parser.add_argument("--kind", default="auto", choices=("auto", "masked", "causal", "encoder", "classifier"))
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own code to run")


def model_from_args(args):
    from ..models import load_model

    return load_model(args.model or default_model(), kind=args.kind, device=args.device, dtype=args.dtype,
                      trust_remote_code=args.trust_remote_code)


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def require_kind(loaded, kinds, use: str, instead: str = "") -> None:
    """Refuse a model of the wrong kind right after loading it — before any run is created, so a
    wrong-kind attempt leaves no failed run behind — in one line saying what would work."""
    from ..errors import BiasLabError
    from ..heads.metrics import KIND_NAMES, kinds_text

    if loaded.kind in kinds:
        return
    raise BiasLabError(f"{use} needs {kinds_text(kinds)}; {loaded.source!r} is loaded as "
                       f"{KIND_NAMES.get(loaded.kind, repr(loaded.kind))}" + (f": {instead}" if instead else ""))
