"""Arguments and output helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..models import default_model

# How `metrics_for` names the metric choices in its messages: the CLI's flags.
METRIC_LABELS = {"perf": "--perf", "perf_data": "--perf-data", "bias": "--bias", "bias_data": "--bias-data"}


def add_actions(parser: argparse.ArgumentParser):
    """The actions of a command group (``bias-lab heads score``, …). Without an action the group
    exits 2 with one line naming its actions."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", title="actions", parser_class=type(parser))

    def missing_action(args) -> int:
        names = ", ".join(actions.choices)
        parser.error(f"`{parser.prog}` needs an action: {names}")

    parser.set_defaults(handler=missing_action)
    return actions


def add_model_arguments(parser) -> None:
    parser.add_argument("--model", default=None,
                        help="hub id or local folder (default: $BIAS_LAB_MODEL or bert-base-uncased)")
    parser.add_argument("--kind", default="auto", choices=("auto", "masked", "causal", "encoder", "classifier"))
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the checkpoint's own code to run")


def add_generation_arguments(parser) -> None:
    """The options of every command that generates text (toxicity, toxicity-gap)."""
    group = parser.add_argument_group("generation (toxicity, toxicity-gap)")
    group.add_argument("--classifier", metavar="ID_OR_PATH",
                       help="toxicity classifier: hub id or local folder (default unitary/unbiased-toxic-roberta, "
                            "FASP's; also unitary/toxic-bert, facebook/roberta-hate-speech-dynabench-r4-target)")
    group.add_argument("--label", help="the classifier's toxicity label (default: chosen by name)")
    group.add_argument("--max-new-tokens", type=int, default=40, help="tokens generated per continuation (40)")
    group.add_argument("--max-prompt-tokens", type=int, default=22, help="prompts are cut to this many tokens (22)")
    group.add_argument("--samples", type=int, default=1, help="continuations per prompt (k; 1)")
    group.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                       help="generate with each seed and average the figures (FASP: 1 2 3; default: --seed)")
    group.add_argument("--top-k", type=int, default=50, help="sample from the k most likely tokens (50; 0 = off)")
    group.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (1 = off)")
    group.add_argument("--temperature", type=float, default=1.0)
    group.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    group.add_argument("--continuation-only", action="store_true",
                       help="score the continuation alone (default: prompt + continuation, as FASP)")


def generation_options(args) -> dict:
    """The generation and classifier options of a benchmark that generates."""
    positive(args, "max_new_tokens", "max_prompt_tokens", "samples")
    return {"classifier": args.classifier, "label": args.label, "max_new_tokens": args.max_new_tokens,
            "max_prompt_tokens": args.max_prompt_tokens, "samples": args.samples, "seed": args.seed,
            "seeds": args.seeds, "top_k": args.top_k, "top_p": args.top_p, "temperature": args.temperature,
            "do_sample": not args.greedy, "include_prompt": not args.continuation_only}


def model_from_args(args):
    from ..models import load_model

    return load_model(args.model or default_model(), kind=args.kind, device=args.device, dtype=args.dtype,
                      trust_remote_code=args.trust_remote_code)


def positive(args, *names: str) -> None:
    """Refuse counts below 1, naming the flag (``--batch-size 0 must be at least 1``)."""
    from ..errors import BiasLabError

    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise BiasLabError(f"--{name.replace('_', '-')} {value} must be at least 1")


def run_folder(value: str | Path) -> Path:
    """A run given as its folder or as its run id (what `bias-lab runs list` shows); anything else
    is returned as given, for the result class to say what the folder lacks."""
    from ..errors import RunStoreError
    from ..store import RunStore

    value = Path(value)
    if value.is_dir():
        return value
    try:
        return RunStore().get(str(value)).artifact_dir
    except RunStoreError:
        return value


def check_table_file(path: Path | None) -> None:
    """Refuse an output table that is neither .csv nor .parquet before anything is computed."""
    if path is not None:
        from ..tables import check_table_path

        check_table_path(path)


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
    from ..metrics import kinds_text
    from ..models import KIND_NAMES

    if loaded.kind in kinds:
        return
    raise BiasLabError(f"{use} needs {kinds_text(kinds)}; {loaded.source!r} is loaded as "
                       f"{KIND_NAMES.get(loaded.kind, repr(loaded.kind))}" + (f": {instead}" if instead else ""))
