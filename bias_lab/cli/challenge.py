"""``bias-lab challenge``: challenge-set accuracy of a classifier and of each mask on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import BiasLabError
from ..progress import TqdmProgress
from .common import check_table_file, positive, run_folder

EXAMPLES = """\
examples:
  bias-lab challenge --model my-mnli-model --mask hans=runs/mask-hans neg=runs/mask-negation --sets mnli hans mnli-negation --out runs/challenge
  bias-lab challenge --model my-qqp-model --mask runs/mask-qqp --sets paws --data paws=paws_qqp/dev_and_test.tsv --out runs/challenge-paws
  bias-lab challenge --average runs/challenge-seed1 runs/challenge-seed2 runs/challenge-seed3 --out average.csv
"""
DEFAULT_SETS = ("mnli", "hans", "mnli-negation")


def register(subparsers) -> None:
    from ..finetune.challenge import SETS

    parser = subparsers.add_parser(
        "challenge", help="challenge-set accuracy of a classifier and each mask on it, on and off (creates a run)",
        description="Accuracy on challenge sets (MNLI matched/mismatched, HANS, the MNLI negation subset, PAWS-QQP, "
                    "FEVER-Symmetric) of a classifier as it is, with each mask switched on, and switched off again "
                    "(the same numbers as the classifier). The classifier's labels are read from its config "
                    "(id2label). Writes RUN/challenge.parquet: one row per (model or mask, state, set, split) with "
                    "accuracy in [0, 1]; prints which mask is best per set. --average RUN… averages runs of several "
                    "seeds into a table.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="the fine-tuned sequence classifier (hub id or local folder)")
    parser.add_argument("--mask", nargs="+", default=[], metavar="[NAME=]MASK",
                        help="masks learned on it (`masks train` runs or mask files), optionally named (NAME=MASK; "
                             "name them alike across seeds to average the runs)")
    parser.add_argument("--sets", nargs="+", metavar="SET",
                        help=f"challenge sets among {', '.join(SETS)} (default: {' '.join(DEFAULT_SETS)}, and every "
                             "set given --data)")
    parser.add_argument("--data", nargs="+", default=[], metavar="SET=PATH",
                        help="a set's local file: mnli / mnli-negation a folder of validation_matched.jsonl and "
                             "validation_mismatched.jsonl; hans a JSONL (premise, hypothesis, label, heuristic); paws "
                             "PAWS-QQP's dev_and_test.tsv; fever-symmetric its JSONL (v0.1 or v0.2)")
    parser.add_argument("--limit", type=int, help="the first N examples of each set (of each MNLI dev set)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--no-switch-off", action="store_true",
                        help="do not score each mask switched off again (saves one pass per mask and set)")
    parser.add_argument("--average", nargs="+", metavar="RUN",
                        help="instead: average these challenge runs (folders or ids; e.g. one per seed) per name, "
                             "state, set and split into the table --out FILE")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--out", type=Path, required=True, metavar="DIR|FILE",
                        help="run folder (re-running into it resumes); with --average a table (.csv or .parquet)")
    parser.set_defaults(handler=challenge_command)


def set_files(values: list[str]) -> dict[str, str]:
    """``SET=PATH`` arguments → {set: path}, refusing an unknown set or a missing '='."""
    from ..finetune.challenge import challenge_set

    found = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not separator or not name or not path:
            raise BiasLabError(f"--data {value!r}: write SET=PATH, e.g. paws=dev_and_test.tsv")
        challenge_set(name)
        found[name] = path
    return found


def challenge_command(args) -> int:
    if args.average:
        return average_command(args)
    from ..finetune.challenge_run import accuracy_table, best_per_set, run_challenge
    from ..models import load_model
    from .common import require_kind
    from .glue import named_masks

    if not args.model:
        raise BiasLabError("give --model CLASSIFIER (the fine-tuned classifier to score), or --average RUN…")
    positive(args, "limit", "batch_size", "max_length")
    data = set_files(args.data)
    sets = list(dict.fromkeys(args.sets or [*DEFAULT_SETS, *data]))
    from ..finetune.challenge import challenge_set

    for name in sets:
        challenge_set(name)
    paths, names = named_masks(args.mask)
    loaded = load_model(args.model, kind="auto", device=args.device, dtype=args.dtype)
    require_kind(loaded, ("classifier",), "bias-lab challenge", "give a fine-tuned sequence classifier (e.g. an MNLI "
                                                                "model) whose config names its labels")
    with TqdmProgress("set × mask") as bar:
        result = run_challenge(args.model, paths, sets, args.out, data=data, names=names, limit=args.limit,
                               max_length=args.max_length, batch_size=args.batch_size,
                               switch_off=not args.no_switch_off, loaded=loaded, progress=bar)
    print(accuracy_table(result.table).round(4).to_string(index=False))
    best = best_per_set(result.table)
    print("best per set: " + ", ".join(f"{row.set} {row.best} ({row.accuracy:.3f})" for row in best.itertuples()))
    print(f"→ {result.folder}")
    return 0


def average_command(args) -> int:
    from ..finetune.challenge_run import ChallengeResult, average_runs
    from ..tables import write_table

    check_table_file(args.out)
    results = [ChallengeResult.load(run_folder(value)) for value in args.average]
    table = average_runs(results)
    write_table(table, args.out)
    print(table.round(4).to_string(index=False))
    print(f"→ {args.out}")
    return 0
